"""A port-forward session: per port, a connection dialled inside the Pod's network namespace,
relayed over the data and error channels of a WebSocket (see ``streams`` for the protocol)."""

from __future__ import annotations

import ctypes
import os
import socket
import struct
import threading
from typing import Any

from . import websocket

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def dial_in_netns(pid: int, port: int) -> socket.socket:
    """``localhost:port`` dialled from inside the network namespace of process ``pid`` (in a
    thread of its own: setns changes only the calling thread, and the socket keeps the
    namespace it was made in)."""
    result: dict[str, Any] = {}

    def dial() -> None:
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            target = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
        except OSError as exc:
            os.close(own)
            result["error"] = exc
            return
        try:
            if _libc.setns(target, CLONE_NEWNET) != 0:
                result["error"] = OSError(ctypes.get_errno(), "setns into the Pod's network namespace failed")
                return
            try:
                result["socket"] = socket.create_connection(("127.0.0.1", port), timeout=5)
            except OSError as exc:
                result["error"] = exc
            finally:
                _libc.setns(own, CLONE_NEWNET)
        finally:
            os.close(target)
            os.close(own)

    thread = threading.Thread(target=dial, name="fake-kube-netns-dial")
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    sock = result["socket"]
    sock.settimeout(None)
    return sock


class PortForwardSession:
    def __init__(self, pid: int, pod_name: str, uid: str, ports: list[int], ws: websocket.WebSocket) -> None:
        self.pid, self.pod_name, self.uid, self.ports, self.ws = pid, pod_name, uid, ports, ws
        self.remotes: dict[int, socket.socket] = {}
        self._open = len(ports)
        self._lock = threading.Lock()

    def run(self) -> None:
        pumps = []
        try:
            for index, port in enumerate(self.ports):
                prefix = struct.pack("<H", port)
                self.ws.send(2 * index, prefix)
                self.ws.send(2 * index + 1, prefix)
            for index, port in enumerate(self.ports):
                try:
                    self.remotes[index] = dial_in_netns(self.pid, port)
                except OSError as exc:
                    message = (f"error forwarding port {port} to pod {self.pod_name}, uid {self.uid}: failed to connect "
                               f"to localhost:{port} inside the Pod's network namespace: dial tcp4 127.0.0.1:{port}: "
                               f"connect: {os.strerror(exc.errno).lower() if exc.errno else exc}")  # Go's wording
                    self.ws.send(2 * index + 1, message.encode())
                    self._closed()
                    continue
                pump = threading.Thread(target=self._to_client, args=(index,), daemon=True, name=f"fake-kube-pf-{port}")
                pump.start()
                pumps.append(pump)
            if self._open:
                self._from_client()
        except ConnectionError:
            pass
        finally:
            for remote in self.remotes.values():
                try:  # shutdown first: a plain close, with the pump thread in recv, sends no FIN
                    remote.shutdown(socket.SHUT_RDWR)  # and the Pod would never see the client go
                except OSError:
                    pass
                try:
                    remote.close()
                except OSError:
                    pass

    def _closed(self) -> None:
        with self._lock:
            self._open -= 1
            if self._open <= 0:
                self.ws.close()

    def _to_client(self, index: int) -> None:
        remote = self.remotes[index]
        try:
            while data := remote.recv(65536):
                self.ws.send(2 * index, data)
        except (OSError, ConnectionError):
            pass
        self._closed()

    def _from_client(self) -> None:
        while True:
            message = self.ws.receive()
            if message is None:
                return
            channel, data = message
            if channel % 2 or channel // 2 not in self.remotes:
                continue
            try:
                self.remotes[channel // 2].sendall(data)
            except OSError:
                continue
