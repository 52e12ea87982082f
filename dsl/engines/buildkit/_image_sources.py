"""The images a build reads besides its base, and what each one was while the build ran.

``io.copy(image=...)``, the micromamba helper and a ``$DSL_RUNTIME_BASE`` tag are
``docker-image://`` sources of the LLB like the base, and a tag of any of them can name other
content tomorrow. The build learns nothing about them from the builder (only the base's
config is resolved through the gateway), so their state is taken on both sides of the solve:
:class:`ImageStates` looks them up in a thread while the build runs, and the build record
keeps them only if the same lookup after the build gives the same answers. The fast path
then checks each one as it checks the base (``_uptodate.image_change``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

from dsl.engines.buildkit._uptodate import image_state

IMAGE_SCHEME = "docker-image://"


def image_sources(definition: bytes, *, besides: str) -> tuple[str, ...]:
    """Every image reference the LLB ``definition`` reads, sorted, without ``besides`` (the base)."""
    from compiler.llb.protos import ops_pb2 as pb

    refs = set()
    for blob in getattr(pb.Definition.FromString(definition), "def"):  # `def` is a Python keyword
        op = pb.Op.FromString(blob)
        if op.WhichOneof("op") == "source" and op.source.identifier.startswith(IMAGE_SCHEME):
            refs.add(op.source.identifier[len(IMAGE_SCHEME):])
    refs.discard(besides)
    return tuple(sorted(refs))


def image_states(refs: Iterable[str], docker_host: str, ca_bundle: str | None) -> dict[str, dict[str, str] | None]:
    """``ref → {"ref", "id"}`` (in dockerd's store), ``{"ref", "digest"}`` (its registry's answer)
    or None (cannot be verified)."""
    return {ref: image_state(ref, docker_host, ca_bundle) for ref in refs}


class ImageStates:
    """:func:`image_states` of ``refs`` looked up in a background thread (off the build's path).

    Args:
        refs: the references, e.g. from :func:`image_sources`.
        docker_host: the Docker engine the build runs in.
        ca_bundle: an extra CA bundle for HTTPS registries.
    """

    def __init__(self, refs: Iterable[str], docker_host: str, ca_bundle: str | None) -> None:
        self.refs = tuple(refs)
        self._states: dict[str, dict[str, str] | None] | None = None
        self._args = (docker_host, ca_bundle)
        self._thread = threading.Thread(target=self._run, name="dsl-image-states", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self._states = image_states(self.refs, *self._args)

    def result(self) -> Mapping[str, Any] | None:
        """The states, or None when the lookup did not finish (treated as "cannot verify")."""
        self._thread.join(timeout=30)
        return None if self._thread.is_alive() or self._states is None else dict(self._states)
