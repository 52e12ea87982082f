"""Byte streams through the API server: port-forward (``dsl ssh --stdio``, ``dsl ports``) and
exec (``dsl exec``), over the WebSocket protocols the ``kubernetes`` client speaks.

No local port is opened for SSH: ``port_stream`` hands back the client's in-process socket, which
``relay_stdio`` pipes to ssh's ProxyCommand. ``dsl ports`` listens on 127.0.0.1 only, and opens
one port-forward per accepted connection to the environment's *current* Pod, so a recreated
Pod is followed without restarting the command.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

from dsl.engines.kube._client import Kube, KubeStatus
from dsl.engines.runner import EnvState
from dsl.errors import EngineError

CONTAINER = "environment"  # compiler.k8s.CONTAINER_NAME


def _core(kube: Kube) -> Any:
    from kubernetes import client

    return client.CoreV1Api(kube.api)


def port_stream(kube: Kube, pod: str, port: int) -> Any:
    """A socket-like stream to ``port`` of Pod ``pod`` (through the API server and the kubelet).

    Raises:
        KubeStatus: the API server refused the port-forward (RBAC, no such Pod), or no answer.
    """
    from kubernetes.client.exceptions import ApiException
    from kubernetes.stream import portforward

    try:
        forward = portforward(_core(kube).connect_get_namespaced_pod_portforward, pod, kube.namespace,
                              ports=str(port))
    except ApiException as exc:
        raise KubeStatus(exc.status or 0, str(exc.reason or ""), f"port-forward to {pod}:{port}: {exc.reason}") from exc
    sock = forward.socket(port)
    sock._forward = forward  # noqa: SLF001 - keeps the proxy thread's owner alive with the socket
    return sock


def _open_exec(kube: Kube, pod: str, argv: list[str], *, stdin: bool = False, stderr: bool = False,
               tty: bool = False) -> Any:
    """The exec WebSocket of ``argv`` in the Pod's environment container (binary channels).

    Raises:
        KubeStatus: the API server refused the exec (RBAC ``create pods/exec``, no such Pod).
    """
    from kubernetes.client.exceptions import ApiException
    from kubernetes.stream import stream

    try:
        return stream(_core(kube).connect_get_namespaced_pod_exec, pod, kube.namespace, container=CONTAINER,
                      command=argv, stdin=stdin, stdout=True, stderr=stderr, tty=tty, _preload_content=False,
                      binary=True)
    except ApiException as exc:
        raise KubeStatus(exc.status or 0, str(exc.reason or ""), f"exec in {pod}: {exc.reason}") from exc


def run_exec(kube: Kube, pod: str, argv: list[str], *, tty: bool, stdin: bool) -> int:
    """Run ``argv`` in the Pod's environment container, attached; its exit status."""
    ws = _open_exec(kube, pod, argv, stdin=stdin or tty, stderr=not tty, tty=tty)
    if (stdin or tty) and sys.stdin is not None:
        threading.Thread(target=_feed, args=(ws, sys.stdin.fileno()), daemon=True).start()
    out, err = sys.stdout.buffer, sys.stderr.buffer
    while ws.is_open():
        ws.update(timeout=1)
        for channel, target in ((1, out), (2, err)):
            if ws.peek_channel(channel):
                target.write(ws.read_channel(channel))
                target.flush()
    for channel, target in ((1, out), (2, err)):
        data = ws.read_channel(channel)
        if data:
            target.write(data)
            target.flush()
    code = ws.returncode
    if code is None:
        raise EngineError(f"the command in {pod} did not report an exit status")
    return int(code)


def exec_output(kube: Kube, pod: str, argv: list[str]) -> Iterator[bytes]:
    """``argv``'s stdout in the Pod's environment container, chunk by chunk as it comes."""
    ws = _open_exec(kube, pod, argv)
    try:
        while ws.is_open():
            ws.update(timeout=1)
            if ws.peek_channel(1):
                yield ws.read_channel(1)
        rest = ws.read_channel(1)
        if rest:
            yield rest
    finally:
        ws.close()


def exec_capture(kube: Kube, pod: str, argv: list[str]) -> tuple[int, bytes]:
    """Run ``argv`` in the Pod's environment container without input; its exit status and stdout.

    Raises:
        KubeStatus: the API server refused the exec (RBAC ``create pods/exec``, no such Pod).
        EngineError: the stream ended without an exit status.
    """
    ws = _open_exec(kube, pod, argv)
    chunks = []
    try:
        while ws.is_open():
            ws.update(timeout=1)
            if ws.peek_channel(1):
                chunks.append(ws.read_channel(1))
        chunks.append(ws.read_channel(1) or b"")
        status = ws.read_channel(3)
    finally:
        ws.close()
    return _exit_status(pod, status), b"".join(chunks)


def _exit_status(pod: str, status: bytes | str) -> int:
    """The exit status the exec's error channel reports (a ``Status``: ``Success``, or a
    ``Failure`` whose ``ExitCode`` cause holds it; a failure without one is a command that
    could not start, 127 as a shell says)."""
    import json

    try:
        report = json.loads(status) if status else None
    except ValueError:
        report = None
    if not isinstance(report, dict):
        raise EngineError(f"the command in {pod} did not report an exit status")
    if report.get("status") == "Success":
        return 0
    for cause in (report.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode" and str(cause.get("message", "")).isdigit():
            return int(cause["message"])
    return 127


def _feed(ws: Any, fd: int) -> None:
    from websocket import WebSocketException

    try:
        while True:
            data = os.read(fd, 65536)
            if not data:
                break
            ws.write_stdin(data)
        ws.close_channel(0)  # v5: the command sees EOF (v4 has no way to say it)
    except (OSError, WebSocketException):  # the command ended first: nothing left to feed
        pass


@dataclasses.dataclass
class _Listener:
    name: str
    container_port: int
    server: socket.socket

    @property
    def host_port(self) -> int:
        return int(self.server.getsockname()[1])


def _listen(port: int) -> socket.socket:
    """127.0.0.1:``port`` when it is free, else a port the kernel picks."""
    for wanted in (port, 0):
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            server.bind(("127.0.0.1", wanted))
        except OSError:
            server.close()
            continue
        server.listen(16)
        return server
    raise EngineError(f"cannot listen on 127.0.0.1 for port {port}")


@contextlib.contextmanager
def forwarding(kube: Kube, state: EnvState, current_pod: Callable[[], str]) -> Iterator[EnvState]:
    """Forward the environment's ports but SSH (which ``ssh <env>.dsl`` reaches) from
    127.0.0.1, while the block runs; yields the state with the local endpoints."""
    listeners = [_Listener(e.name, e.container_port, _listen(e.container_port))
                 for e in state.endpoints if e.name != "ssh"]
    stop = threading.Event()
    for listener in listeners:
        threading.Thread(target=_accept, args=(kube, listener, current_pod, stop), daemon=True).start()
    endpoints = tuple(dataclasses.replace(e, host="127.0.0.1", host_port=next(
        (lst.host_port for lst in listeners if lst.container_port == e.container_port), 0)) for e in state.endpoints)
    try:
        yield dataclasses.replace(state, endpoints=endpoints)
    finally:
        stop.set()
        for listener in listeners:
            listener.server.close()


def _accept(kube: Kube, listener: _Listener, current_pod: Callable[[], str], stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            conn, _ = listener.server.accept()
        except OSError:
            return
        threading.Thread(target=_serve, args=(kube, conn, listener.container_port, current_pod), daemon=True).start()


def _serve(kube: Kube, conn: socket.socket, port: int, current_pod: Callable[[], str]) -> None:
    from websocket import WebSocketException

    try:
        remote = port_stream(kube, current_pod(), port)
    except (KubeStatus, EngineError, OSError, WebSocketException) as exc:  # reported; other connections go on
        sys.stderr.write(f"port {port}: cannot forward: {exc}\n")
        conn.close()
        return
    threading.Thread(target=_copy, args=(conn, remote), daemon=True).start()
    _copy(remote, conn)


def _copy(source: Any, target: Any) -> None:
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            target.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, target):
            with contextlib.suppress(OSError):
                sock.close()
