"""``dsl logs`` on Kubernetes: the environment container's log (``pods/log``), then each daemon's
log file, read inside the container by exec (the entrypoint writes them there, as on Docker);
``follow`` interleaves them as they grow."""

from __future__ import annotations

from collections.abc import Iterator

from dsl.engines.kube._client import Kube, KubeStatus, object_path
from dsl.engines.kube._streams import CONTAINER, exec_output
from dsl.engines.runner import follow_daemon_logs_script, interleave_logs
from dsl.errors import EngineError

# Where the entrypoint writes daemon logs: /var/log/dsl, or its state dir when that is not
# writable ("$HOME" is the container's).
_LOG_DIRS = '/var/log/dsl "$HOME/.dsl/logs"'


def container_logs(kube: Kube, pod: str, *, running: bool, follow: bool, tail: int) -> Iterator[tuple[str, bytes]]:
    """``(source, data)``: ``entrypoint`` first, then one per daemon (``follow``: as they come).

    Raises:
        KubeStatus: the API server refused the log (RBAC on ``pods/log``, no such Pod).
    """
    path = object_path("Pod", kube.namespace, pod) + "/log"
    query = {"container": CONTAINER, **({"tailLines": str(tail)} if tail else {})}
    if not follow:
        yield "entrypoint", kube.get_bytes(path, query)
        if running:
            yield from _daemon_logs(kube, pod, tail)
        return
    yield from _follow(kube, pod, path, query, running, tail)


def _daemon_logs(kube: Kube, pod: str, tail: int) -> Iterator[tuple[str, bytes]]:
    lines = f"-n {tail}" if tail else "-n +1"
    script = (f'for d in {_LOG_DIRS}; do [ -d "$d" ] || continue; cd "$d" || exit 0; '
              f"for f in *.log; do [ -e \"$f\" ] && printf '==> %s <==\\n' \"$f\" && tail {lines} -- \"$f\"; done; "
              "exit 0; done")
    data = b"".join(exec_output(kube, pod, ["sh", "-c", script]))
    name, chunk = "", b""
    for line in data.splitlines(keepends=True):
        if line.startswith(b"==> ") and line.rstrip().endswith(b" <=="):
            if name:
                yield name, chunk
            name, chunk = line.rstrip()[4:-4].decode(errors="replace").removesuffix(".log"), b""
        elif name:
            chunk += line
    if name:
        yield name, chunk


def _follow(kube: Kube, pod: str, path: str, query: dict[str, str], running: bool,
            tail: int) -> Iterator[tuple[str, bytes]]:
    def entrypoint() -> Iterator[bytes]:
        return kube.stream_text(path, {**query, "follow": "true"})

    def daemons() -> Iterator[bytes]:
        return exec_output(kube, pod, ["sh", "-c", follow_daemon_logs_script(_LOG_DIRS, tail)])

    from urllib3.exceptions import HTTPError
    from websocket import WebSocketException

    return interleave_logs(entrypoint, daemons if running else None,
                           errors=(KubeStatus, EngineError, HTTPError, OSError, WebSocketException),
                           describe=lambda exc: exc.message if isinstance(exc, KubeStatus | EngineError) else str(exc))
