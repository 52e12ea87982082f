"""The runner interface: what ``dsl up`` and friends ask of an engine that runs environments.

A runner applies the objects the compilers made (the Docker create body; Kubernetes manifests
later) and never builds objects of its own: it fills the objects' run-time placeholders
(``${DSL_...}``), adds the identity and ownership labels of :mod:`dsl.identity`, and reports
what runs. Every runner implements :class:`Runner`; the CLI uses nothing else.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from dsl.errors import EngineError, UsageError
from dsl.identity import Claim, Identity

_PLACEHOLDER = re.compile(r"\$\{(DSL_[A-Z0-9_]+)\}")


class RunConflict(EngineError):
    """Another ``dsl up`` applied a configuration at least as new; this one backs off."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A container port and where it is reachable (``host_port`` 0: not published now)."""

    name: str
    container_port: int
    host: str = ""
    host_port: int = 0


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """What a runner knows of an image before running it."""

    ref: str
    id: str
    user: tuple[int, int] | None  # numeric uid:gid the image runs as, when it says
    labels: Mapping[str, str] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)  # the image config's Env
    known: bool = True  # False: a registry image the runner cannot inspect (labels, env unknown)


@dataclass(frozen=True, slots=True)
class EnvState:
    """One environment as the engine sees it (all of it read from the object's labels)."""

    id: str
    name: str
    instance: str
    project: str
    project_dir: str
    status: str  # running | stopped | created | restarting | paused | removing | dead
    image: str
    image_id: str
    config_hash: str
    claim: Claim
    ssh_user: str
    endpoints: tuple[Endpoint, ...]
    labels: Mapping[str, str] = field(default_factory=dict)
    object_id: str = ""  # the engine's own id of the object (Docker: the container id; Kubernetes: the Pod)
    where: str = ""  # Kubernetes: the namespace
    kind: str = ""  # Kubernetes: the workload kind (Pod, StatefulSet, Deployment)

    @property
    def running(self) -> bool:
        return self.status == "running"

    def endpoint(self, name: str) -> Endpoint | None:
        return next((e for e in self.endpoints if e.name == name), None)


@dataclass(frozen=True, slots=True)
class UpRequest:
    """Apply ``spec`` as environment ``identity``.

    Attributes:
        identity: who the environment is.
        spec: the compiled object (Docker: the create body), placeholders unfilled.
        values: the run-time value of each placeholder name (``DSL_AUTHORIZED_KEYS``, ...).
        config_hash: identifies spec + image + values that matter; equal means "unchanged".
        claim: the generation this configuration is, who applies it and when.
        ssh_user: the user SSH logs in as ("" for an environment without SSH).
        labels: more labels for the caller's own bookkeeping (what ``dsl ls`` compares).
        timeout: seconds a runner that waits for readiness itself (Kubernetes) may wait.
    """

    identity: Identity
    spec: Any
    values: Mapping[str, str]
    config_hash: str
    claim: Claim
    ssh_user: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 60.0


@dataclass(frozen=True, slots=True)
class UpResult:
    """``action`` is ``created``, ``recreated``, ``started`` or ``unchanged``."""

    action: str
    state: EnvState
    replaced: Claim | None = None


@dataclass(frozen=True, slots=True)
class DownResult:
    """What ``down`` removed."""

    id: str
    removed_container: bool
    volumes: tuple[str, ...] = ()
    kept_volumes: tuple[str, ...] = ()
    image: str = ""


class Runner(Protocol):
    """An engine that runs environments (Docker, Kubernetes)."""

    address: str
    target: str  # what the CLI compiles for it: "docker" (the create body) or "k8s" (manifests)
    ready_on_up: bool  # `up` itself waits until the environment is ready

    def proxy_args(self) -> tuple[str, ...]:
        """Options that make ``dsl ssh --stdio`` (an ssh ProxyCommand) reach this runner again."""

    def image(self, ref: str) -> ImageInfo:
        """Inspect an image (raises ``UsageError`` when there is none of that name)."""

    def get(self, env_id: str) -> EnvState | None:
        """The environment with this id, or None."""

    def generation(self, env_id: str) -> int:
        """The highest generation the environment's objects carry (0: none); a new ``up``
        applies the next one. Kubernetes counts the PVCs and Secrets ``down`` kept."""

    def list(self, all_namespaces: bool = False) -> list[EnvState]:
        """Every environment on the engine (Kubernetes: in its namespace, or all), sorted by id."""

    def up(self, request: UpRequest) -> UpResult:
        """Create, start, recreate or leave the environment; raises ``RunConflict``.

        A runner whose ``ready_on_up`` is true returns only when the environment is ready (or
        raises why it cannot be); the CLI then skips its own SSH login wait."""

    def wait_stopped_reason(self, env_id: str, container: str) -> str | None:
        """None while ``container`` is the running environment ``env_id``; else why not."""

    def down(self, env_id: str, *, purge: bool) -> DownResult:
        """Remove the environment (``purge``: its own volumes and image too)."""

    def exec(self, env_id: str, argv: list[str], *, tty: bool, stdin: bool = True) -> int:
        """Run ``argv`` in the environment as its user, attached (``stdin``: forward ours);
        returns the command's exit status."""

    def capture(self, env_id: str, argv: list[str]) -> tuple[int, bytes]:
        """Run ``argv`` in the running environment without input; its exit status and stdout
        (``dsl gc`` reads the activity record this way)."""

    def logs(self, env_id: str, *, follow: bool, tail: int) -> Iterator[tuple[str, bytes]]:
        """``(source, line)`` pairs: the entrypoint's output, then each daemon's log."""

    def ssh_address(self, state: EnvState) -> tuple[str, int] | None:
        """A direct TCP address of the environment's sshd, when the engine publishes one."""

    def open_stream(self, env_id: str) -> socket.socket:
        """A byte stream to the environment's sshd (``dsl ssh --stdio``)."""

    def forward_ports(self, state: EnvState) -> AbstractContextManager[EnvState] | None:
        """None when the ports are published already (Docker); else a context that forwards
        them to 127.0.0.1 while it lasts, yielding the state with the local endpoints."""

    def close(self) -> None:
        """Release the connection."""


def placeholders(spec: Any) -> set[str]:
    """Names of the run-time placeholders (``${DSL_NAME}``) anywhere in ``spec``."""
    found: set[str] = set()
    _walk(spec, lambda text: found.update(_PLACEHOLDER.findall(text)) or text)
    return found


def fill_placeholders(spec: Any, values: Mapping[str, str]) -> Any:
    """A copy of ``spec`` with every placeholder replaced by its value.

    Raises:
        UsageError: a placeholder has no value (named, so the user knows what to provide).
    """
    missing = sorted(placeholders(spec) - set(values))
    if missing:
        raise UsageError(
            f"cannot start the environment: no value for {', '.join('${' + m + '}' for m in missing)}",
            hint="; ".join(_HOW_TO_FILL.get(m, f"set {m} in the environment") for m in missing),
        )
    return _walk(spec, lambda text: _PLACEHOLDER.sub(lambda m: values[m.group(1)], text))


_HOW_TO_FILL = {
    "DSL_JUPYTER_TOKEN": "set DSL_JUPYTER_TOKEN or pass --jupyter-token",
}


def _walk(value: Any, fn: Any) -> Any:
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, dict):
        return {k: _walk(v, fn) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_walk(v, fn) for v in value)
    return value


def forward_input(fd: int, sock: socket.socket) -> None:
    """``fd`` → ``sock`` until EOF, then half-close so the remote reader sees the end.

    Meant for a thread, not a selector: stdin may be a regular file or /dev/null, which epoll
    refuses.
    """
    import os

    try:
        while True:
            data = os.read(fd, 65536)
            if not data:
                break
            sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass  # the remote side went away first: nothing left to feed


def relay_stdio(sock: socket.socket) -> None:
    """stdin → ``sock`` and ``sock`` → stdout as raw bytes until the remote end closes (the SSH
    byte stream of ``dsl ssh --stdio``)."""
    import os
    import threading

    sock.settimeout(None)
    threading.Thread(target=forward_input, args=(0, sock), daemon=True).start()
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return
            view = memoryview(data)
            while view:
                view = view[os.write(1, view):]
    finally:
        sock.close()


KUBERNETES_SCHEMES = ("k8s", "kubernetes")


def follow_daemon_logs_script(log_dirs: str, tail: int) -> str:
    """The ``sh -c`` script that follows every daemon log in the first of ``log_dirs`` that
    exists (``tail -F``'s ``==> NAME <==`` headers say which daemon each line is from)."""
    return (f'for d in {log_dirs}; do [ -d "$d" ] && cd "$d" && break; done; set -- *.log; '
            f'[ -e "$1" ] || exec sleep infinity; exec tail -v -n {tail or 10} -F -- "$@"')


def interleave_logs(entrypoint: Callable[[], Iterator[bytes]], daemons: Callable[[], Iterator[bytes]] | None, *,
                    errors: tuple[type[Exception], ...],
                    describe: Callable[[Exception], str]) -> Iterator[tuple[str, bytes]]:
    """``dsl logs -f``: ``(source, data)`` from the entrypoint's log stream and, when given, the
    output of :func:`follow_daemon_logs_script`, as each arrives; ends with the entrypoint's
    stream (an error of the engine's ``errors`` in it is shown as source ``error``, described by
    ``describe``; one in the daemons' stream only ends that stream)."""
    import queue
    import threading

    lines: queue.Queue[tuple[str, bytes] | None] = queue.Queue()

    def read_entrypoint() -> None:
        try:
            for chunk in entrypoint():
                lines.put(("entrypoint", chunk))
        except errors as exc:  # shown, then the stream ends
            lines.put(("error", f"{describe(exc)}\n".encode()))
        finally:
            lines.put(None)

    def read_daemons(stream: Callable[[], Iterator[bytes]]) -> None:
        source, buffer = "daemon", b""
        try:
            for chunk in stream():
                buffer += chunk
                *complete, buffer = buffer.split(b"\n")
                for line in complete:
                    if line.startswith(b"==> ") and line.endswith(b" <=="):
                        source = line[4:-4].decode(errors="replace").rsplit("/", 1)[-1].removesuffix(".log")
                    elif line:
                        lines.put((source, line + b"\n"))
        except errors:  # no daemons, or no exec rights: the entrypoint's log goes on
            pass

    threading.Thread(target=read_entrypoint, daemon=True).start()
    if daemons is not None:
        threading.Thread(target=read_daemons, args=(daemons,), daemon=True).start()
    while (item := lines.get()) is not None:
        yield item


def open_runner(address: str | None = None, *, target: str | None = None, kube_context: str | None = None,
                namespace: str | None = None) -> Runner:
    """The runner for ``address`` (default: the current context's runner, else ``docker``).

    Args:
        address: a runner address (``docker``, ``unix://…``, ``tcp://…``, ``k8s``,
            ``kubernetes://KUBECONTEXT``); None: the current context's.
        target: ``docker`` or ``k8s`` (``--target``): that kind of runner, the context's
            address when it is of that kind.
        kube_context, namespace: Kubernetes only; override the context's.

    Raises:
        UsageError: an address no runner handles, or Kubernetes options for Docker.
    """
    context = None
    if address is None:
        from dsl.contexts import current_context

        context = current_context()
        address = context.runner if context is not None else "docker"
        if target is not None and _kind(address) != target:
            address = "k8s" if target == "k8s" else "docker"
    kind = _kind(address)
    if kind == "docker":
        if kube_context or namespace:
            raise UsageError("--kube-context and --namespace are for Kubernetes", hint="add --target k8s")
        from dsl.engines.docker import DockerRunner

        return DockerRunner(address)
    if kind == "k8s":
        from dsl.engines.kube import KubeRunner

        if context is not None and _kind(context.runner) == "k8s":
            kube_context = kube_context or context.kube_context or None
            namespace = namespace or context.namespace or None
        return KubeRunner(address, context=kube_context, namespace=namespace)
    raise UsageError(f"runner {address!r}: no runner handles it",
                     hint="use docker, a Docker host (unix://, tcp://), k8s or kubernetes://KUBECONTEXT")


def _kind(address: str) -> str:
    scheme = address.split("://", 1)[0] if "://" in address else address
    if scheme in ("docker", "unix", "tcp"):
        return "docker"
    return "k8s" if scheme in KUBERNETES_SCHEMES else scheme
