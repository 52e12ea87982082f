"""An exec session: a Docker exec in the Pod's container, relayed over the channels of a
Kubernetes channel WebSocket (see ``streams`` for the protocol)."""

from __future__ import annotations

import json
import socket
import struct
import threading
from typing import Any

from . import websocket

STDIN, STDOUT, STDERR, ERROR, RESIZE = range(5)


class ExecSession:
    """One exec: a Docker exec whose streams are relayed over the channels."""

    def __init__(self, kubelet: Any, container_id: str, command: list[str], stdin: bool, stdout: bool,
                 stderr: bool, tty: bool, ws: websocket.WebSocket) -> None:
        self.kubelet, self.container_id, self.command = kubelet, container_id, command
        self.stdin, self.stdout, self.stderr, self.tty, self.ws = stdin, stdout, stderr, tty, ws
        self._seen_output = False
        self._held: bytes | None = None

    def run(self) -> None:
        client = self.kubelet.new_docker_client()
        try:
            exec_id = client.exec_create(self.container_id, self.command, stdin=self.stdin, stdout=self.stdout,
                                         stderr=self.stderr, tty=self.tty)["Id"]
            sock = client.exec_start(exec_id, socket=True, tty=self.tty)
            raw = getattr(sock, "_sock", sock)
            self.ws.send(STDOUT if self.stdout else STDERR if self.stderr else ERROR, b"")
            threading.Thread(target=self._from_client, args=(client, exec_id, raw), daemon=True,
                             name="fake-kube-exec-stdin").start()
            self._to_client(raw)
            code = client.exec_inspect(exec_id).get("ExitCode")
            if self._held is not None and code in (126, 127):
                status = _start_failure(exec_id, self._held.decode(errors="replace").strip())
            else:
                if self._held is not None:
                    self.ws.send(STDOUT, self._held)
                status = _exit_status(code, self.command)
            self.ws.send(ERROR, json.dumps(status).encode())
        except ConnectionError:
            pass
        finally:
            client.close()

    def _from_client(self, client: Any, exec_id: str, raw: socket.socket) -> None:
        while True:
            message = self.ws.receive()
            if message is None:
                break
            channel, data = message
            try:
                if channel == STDIN and self.stdin:
                    raw.sendall(data)
                elif channel == RESIZE and self.tty:
                    size = json.loads(data)
                    client.exec_resize(exec_id, height=size.get("Height", size.get("height")),
                                       width=size.get("Width", size.get("width")))
                elif channel == websocket.STREAM_CLOSE and data[:1] == bytes([STDIN]):
                    raw.shutdown(socket.SHUT_WR)
            except (OSError, ValueError):
                break
        if self.stdin and not self.ws.closed:
            try:  # the client went away: the command's stdin ends, as with a real kubelet
                raw.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def _output(self, channel: int, data: bytes) -> None:
        # Docker reports an exec that could not start (no such executable) as output and exit
        # code 126/127; a real runtime fails the exec instead: hold such a first message back.
        if not self._seen_output and data.startswith(b"OCI runtime exec failed"):
            self._held = data
        elif self._held is not None:
            self.ws.send(STDOUT, self._held)
            self._held = None
            self.ws.send(channel, data)
        else:
            self.ws.send(channel, data)
        self._seen_output = True

    def _to_client(self, raw: socket.socket) -> None:
        if self.tty:
            while data := raw.recv(65536):
                self._output(STDOUT, data)
            return
        buffer = b""
        while True:
            data = raw.recv(65536)
            if not data:
                return
            buffer += data
            while len(buffer) >= 8:  # Docker's multiplexed frames: type, 0, 0, 0, size (big-endian)
                kind, size = buffer[0], struct.unpack(">I", buffer[4:8])[0]
                if len(buffer) < 8 + size:
                    break
                payload, buffer = buffer[8:8 + size], buffer[8 + size:]
                self._output(STDERR if kind == 2 else STDOUT, payload)


def _exit_status(code: int | None, command: list[str]) -> dict[str, Any]:
    """The v4 error channel's last word (the kubelet's remotecommand wording)."""
    if not code:
        return {"metadata": {}, "status": "Success"}
    return {"metadata": {}, "status": "Failure",
            "message": f"command terminated with non-zero exit code: error executing command [{' '.join(command)}], exit code {code}",
            "reason": "NonZeroExitCode", "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}


def _start_failure(exec_id: str, detail: str) -> dict[str, Any]:
    """An InternalError Status, as the kubelet sends when the runtime cannot start the command
    (its only cause has no exit code: ``ws_client.returncode`` cannot parse it)."""
    error = f'error executing command in container: failed to exec in container: failed to start exec "{exec_id}": {detail}'
    return {"metadata": {}, "status": "Failure", "message": f"Internal error occurred: {error}",
            "reason": "InternalError", "details": {"causes": [{"message": error}]}, "code": 500}
