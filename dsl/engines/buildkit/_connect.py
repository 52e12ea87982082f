"""Connections to a BuildKit, all behind one :class:`Builder`, chosen by URL.

=============================  ============================================================
``docker`` / ``docker://``      dockerd's embedded BuildKit (``$DOCKER_HOST`` or the default
``docker://unix:///x.sock``     socket) via ``POST /grpc``; sessions via ``POST /session``
``unix:///run/buildkitd.sock``  a standalone buildkitd on a unix socket
``tcp://host:1234``             a standalone buildkitd over TCP (TLS with ``TlsFiles``)
``docker-container://NAME``     buildkitd inside container NAME, through ``buildctl dial-stdio``
``kube-pod://NAME?namespace=NS  a Pod of the in-cluster builder NAME (``dsl builder create``),
&context=C``                    through ``buildctl dial-stdio`` over the Kubernetes exec API
=============================  ============================================================

Resolution order for the address: ``--builder``, ``$BUILDKIT_HOST``, the current context,
then ``docker``.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dsl.engines.buildkit._hijack import UnixForwarder, docker_host_from_env, open_upgraded
from dsl.errors import EngineUnavailable, UsageError

_CONNECT_TIMEOUT = 10.0
_GRPC_OPTIONS = [
    ("grpc.max_receive_message_length", 64 << 20),
    ("grpc.max_send_message_length", 64 << 20),
    ("grpc.enable_retries", 0),
]


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """Client TLS material for ``tcp://`` builders (paths; any may be None)."""

    ca: str | None = None
    cert: str | None = None
    key: str | None = None


@dataclass(frozen=True, slots=True)
class BuilderAddress:
    """A parsed builder URL."""

    url: str  # as the user should see it
    scheme: str  # docker | unix | tcp | docker-container | kube-pod
    docker_host: str | None = None  # the Docker engine (docker, docker-container)
    target: str | None = None  # grpc target (unix, tcp), container name or kube-pod builder name
    namespace: str = ""  # kube-pod: "" = the kube context's
    kube_context: str = ""  # kube-pod: "" = the kubeconfig's current one

    @property
    def is_dockerd(self) -> bool:
        """True for dockerd's embedded BuildKit (``moby`` exporter, v0.8 on Docker 20.10)."""
        return self.scheme == "docker"

    @property
    def remedy(self) -> str:
        """How to start or reach this builder, for error hints."""
        if self.scheme == "docker":
            return (
                f"start dockerd (expected at {self.docker_host}) or set DOCKER_HOST; "
                "or pick another builder with --builder / `dsl context use`"
            )
        if self.scheme == "kube-pod":
            return f"create it with `dsl builder create {self.target} --kubernetes`, or check `dsl builder ls`"
        if self.scheme == "docker-container":
            return (
                f"create it with `docker run -d --name {self.target} --privileged moby/buildkit:latest`"
                f" (on the engine at {self.docker_host})"
            )
        addr = self.url if self.scheme == "tcp" else self.url.removeprefix("unix://")
        return f"start buildkitd listening on {addr} (`buildkitd --addr {self.url}`), or pick another builder with --builder"


def parse_builder_url(url: str) -> BuilderAddress:
    """Parse a builder address.

    Raises:
        UsageError: an unknown scheme or a malformed address.
    """
    if url in ("docker", "docker://"):
        host = _docker_engine(docker_host_from_env(), "DOCKER_HOST")
        return BuilderAddress(url=f"docker://{host}", scheme="docker", docker_host=host)
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise UsageError(f"invalid builder address {url!r}", hint=_ADDRESS_HINT)
    if scheme == "docker":
        return BuilderAddress(url=url, scheme="docker", docker_host=_docker_engine(rest, "builder address"))
    if scheme == "unix" and rest:
        return BuilderAddress(url=url, scheme="unix", target=f"unix:{rest}")
    if scheme == "tcp" and rest:
        return BuilderAddress(url=url, scheme="tcp", target=rest.rstrip("/"))
    if scheme == "docker-container" and rest and "/" not in rest:
        host = _docker_engine(docker_host_from_env(), "DOCKER_HOST")
        return BuilderAddress(url=url, scheme="docker-container", docker_host=host, target=rest)
    if scheme == "kube-pod":
        return parse_kube_pod_url(url)
    raise UsageError(f"invalid builder address {url!r}", hint=_ADDRESS_HINT)


def _docker_engine(host: str, origin: str) -> str:
    """``host`` when it is an address a Docker engine can be reached at (what ``_hijack`` dials).

    Checked while parsing, so a mistyped ``DOCKER_HOST`` is bad input (exit 2) reported before
    any work, not an engine failure found halfway through a build.

    Raises:
        UsageError: a scheme other than unix, tcp, http or https.
    """
    scheme, sep, rest = host.partition("://")
    if sep and rest and scheme in ("unix", "tcp", "http", "https"):
        return host
    raise UsageError(f"unsupported Docker host address {host!r} ({origin})",
                     hint="use unix:///path/to/docker.sock or tcp://host:port")


_ADDRESS_HINT = (
    "use docker, docker://unix:///path/docker.sock, unix:///path/buildkitd.sock, "
    "tcp://host:port, docker-container://NAME or kube-pod://NAME?namespace=NS&context=C"
)
_KUBE_POD_NAME = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"  # a DNS label: the builder's StatefulSet name


def parse_kube_pod_url(url: str) -> BuilderAddress:
    """``kube-pod://NAME[?namespace=NS][&context=C]``: an in-cluster builder.

    Raises:
        UsageError: no name, a name that is not a DNS label, or an unknown query key.
    """
    import re
    from urllib.parse import parse_qs, urlsplit

    parts = urlsplit(url)
    name = parts.netloc
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - {"namespace", "context"})
    if not re.fullmatch(_KUBE_POD_NAME, name) or parts.path not in ("", "/") or unknown:
        raise UsageError(f"invalid builder address {url!r}" + (f" (unknown key {unknown[0]!r})" if unknown else ""),
                         hint="use kube-pod://NAME?namespace=NS&context=C (both keys optional)")
    return BuilderAddress(url=url, scheme="kube-pod", target=name, namespace=(query.get("namespace") or [""])[-1],
                          kube_context=(query.get("context") or [""])[-1])


def resolve_builder_url(explicit: str | None = None) -> tuple[str, str]:
    """Which builder to use, and why: ``(url, origin)``.

    Order: ``explicit`` (``--builder``), ``$BUILDKIT_HOST``, the current context, ``docker``.
    """
    if explicit:
        return explicit, "--builder"
    if os.environ.get("BUILDKIT_HOST"):
        return os.environ["BUILDKIT_HOST"], "BUILDKIT_HOST"
    from dsl.contexts import current_context

    ctx = current_context()
    if ctx is not None:
        return ctx.builder, f"context {ctx.name}"
    return "docker", "default"


class Builder:
    """A connected BuildKit: one gRPC channel to ``Control`` and ``LLBBridge``.

    Create with :func:`connect`; close with :meth:`close` (or use as a context manager).
    """

    def __init__(self, address: BuilderAddress, channel: Any, closers: list[Callable[[], None]]) -> None:
        self.address = address
        self.channel = channel
        self._closers = closers

    @property
    def url(self) -> str:
        """The address as the user should see it."""
        return self.address.url

    @property
    def is_dockerd(self) -> bool:
        """True for dockerd's embedded BuildKit."""
        return self.address.is_dockerd

    @property
    def docker_host(self) -> str | None:
        """The Docker engine behind this builder, if any (image store, push, load)."""
        return self.address.docker_host

    def open_session_socket(self, headers: list[tuple[str, str]], *, timeout: float = _CONNECT_TIMEOUT) -> socket.socket:
        """dockerd only: a hijacked ``POST /session`` socket (we then serve HTTP/2 on it).

        Standalone buildkitd takes sessions on ``Control.Session`` over :attr:`channel` instead.
        """
        if not self.is_dockerd or self.docker_host is None:
            raise TypeError("POST /session exists only on dockerd; use Control.Session")
        return open_upgraded(self.docker_host, "/session", headers, timeout=timeout)

    def unary(self, method: str, response_type: Any) -> Any:
        """A unary-unary callable for ``/<service>/<method>`` answering ``response_type``."""
        return self.channel.unary_unary(
            method,
            request_serializer=_serialize,
            response_deserializer=response_type.FromString,
        )

    def stream(self, method: str, response_type: Any) -> Any:
        """A unary-stream callable for ``/<service>/<method>`` answering ``response_type``."""
        return self.channel.unary_stream(
            method,
            request_serializer=_serialize,
            response_deserializer=response_type.FromString,
        )

    def close(self) -> None:
        """Close the channel and any forwarder behind it."""
        self.channel.close()
        for close in reversed(self._closers):
            close()
        self._closers.clear()

    def __enter__(self) -> Builder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _serialize(message: Any) -> bytes:
    return message.SerializeToString()


def connect(url: str | None = None, *, tls: TlsFiles | None = None, timeout: float = _CONNECT_TIMEOUT,
            affinity: str = "") -> Builder:
    """Connect to the builder at ``url`` (resolved as in :func:`resolve_builder_url`).

    ``affinity`` (the environment being built) picks the replica of a ``kube-pod://`` builder:
    the same environment goes to the same Pod, and so finds its cache.

    The dockerd and docker-container transports open their first upstream connection here,
    so a builder that is down fails now, with one line naming it and how to start it.

    Raises:
        UsageError: a malformed address or TLS options on a non-TCP builder.
        EngineUnavailable: the builder cannot be reached.
    """
    import grpc

    address = parse_builder_url(url or resolve_builder_url()[0])
    if tls and (tls.ca or tls.cert or tls.key) and address.scheme != "tcp":
        raise UsageError("--tls-ca/--tls-cert/--tls-key apply only to tcp:// builders")
    if address.scheme == "docker":
        assert address.docker_host is not None
        host = address.docker_host
        try:
            first = open_upgraded(host, "/grpc", [], timeout=timeout)
        except EngineUnavailable as exc:
            raise EngineUnavailable(f"cannot reach the builder at {address.url}: {_reason(exc)}", hint=address.remedy) from exc
        forwarder = _forwarder(first, lambda: open_upgraded(host, "/grpc", [], timeout=timeout))
        return Builder(address, grpc.insecure_channel(forwarder.target, options=_GRPC_OPTIONS), [forwarder.close])
    if address.scheme == "docker-container":
        from dsl.engines.buildkit._container import dial_stdio_opener

        opener = dial_stdio_opener(address, timeout=timeout)
        forwarder = _forwarder(opener(), opener)
        return Builder(address, grpc.insecure_channel(forwarder.target, options=_GRPC_OPTIONS), [forwarder.close])
    if address.scheme == "kube-pod":
        return _connect_kube_pod(address, affinity)
    if address.scheme == "unix":
        path = address.target.removeprefix("unix:") if address.target else ""
        if not os.path.exists(path):
            raise EngineUnavailable(f"cannot reach the builder at {address.url}: no such socket", hint=address.remedy)
        return Builder(address, grpc.insecure_channel(address.target, options=_GRPC_OPTIONS), [])
    assert address.target is not None
    if tls and (tls.ca or tls.cert):
        creds = grpc.ssl_channel_credentials(
            root_certificates=_read(tls.ca), private_key=_read(tls.key), certificate_chain=_read(tls.cert)
        )
        return Builder(address, grpc.secure_channel(address.target, creds, options=_GRPC_OPTIONS), [])
    return Builder(address, grpc.insecure_channel(address.target, options=_GRPC_OPTIONS), [])


def _connect_kube_pod(address: BuilderAddress, affinity: str) -> Builder:
    """``kube-pod://``: one exec of ``buildctl dial-stdio`` per gRPC connection, as for
    ``docker-container://``; the first is opened (and checked) now."""
    import grpc

    from dsl.engines.kube._builder import dial_stdio_opener
    from dsl.engines.kube._client import Kube

    assert address.target is not None
    kube = Kube(address.kube_context or None, address.namespace or None)
    with contextlib.ExitStack() as on_failure:  # the client goes unless the builder takes it
        on_failure.callback(kube.close)
        opener = dial_stdio_opener(kube, address.target, affinity or address.target)
        forwarder = _forwarder(opener(), opener)
        on_failure.pop_all()
    channel = grpc.insecure_channel(forwarder.target, options=_GRPC_OPTIONS)
    return Builder(address, channel, [kube.close, forwarder.close])


def _reason(exc: EngineUnavailable) -> str:
    return exc.message.rsplit(": ", 1)[-1]


def _read(path: str | None) -> bytes | None:
    if not path:
        return None
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise UsageError(f"cannot read TLS file {path}: {exc.strerror}") from exc


def _forwarder(first: socket.socket, opener: Callable[[], socket.socket]) -> UnixForwarder:
    """A forwarder whose first connection reuses ``first`` (already proven to work)."""
    spare = [first]

    def upstream() -> socket.socket:
        return spare.pop() if spare else opener()

    forwarder = UnixForwarder(upstream)
    close = forwarder.close

    def close_all() -> None:
        close()
        while spare:
            spare.pop().close()

    forwarder.close = close_all  # type: ignore[method-assign]
    return forwarder
