"""The options that choose and reach a builder, shared by ``dsl build``, ``prune`` and ``du``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

_OPTIONS = (
    click.option("--builder", "-b", metavar="URL",
                 help="BuildKit to use: docker, docker://HOST, unix:///path/buildkitd.sock, tcp://HOST:PORT, "
                      "docker-container://NAME, kube-pod://NAME?namespace=NS&context=C (default: $BUILDKIT_HOST, "
                      "the current context, then docker)."),
    click.option("--tls-ca", type=click.Path(exists=True, dir_okay=False), help="tcp:// builder: CA certificate."),
    click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), help="tcp:// builder: client certificate."),
    click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), help="tcp:// builder: client key."),
)


def builder_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--builder`` and the ``--tls-*`` options to a command."""
    for option in reversed(_OPTIONS):
        fn = option(fn)
    return fn


def connect_from_options(builder: str | None, tls_ca: str | None, tls_cert: str | None, tls_key: str | None,
                         affinity: str = "") -> Any:
    """Connect to the builder the options (or their defaults) name (``affinity``: the
    environment built, which picks a ``kube-pod://`` builder's replica)."""
    from dsl.engines.buildkit import TlsFiles, connect, resolve_builder_url

    url, _origin = resolve_builder_url(builder)
    tls = TlsFiles(tls_ca, tls_cert, tls_key) if (tls_ca or tls_cert or tls_key) else None
    return connect(url, tls=tls, affinity=affinity)
