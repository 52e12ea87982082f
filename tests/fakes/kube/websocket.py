"""WebSocket (RFC 6455, server side) and the Kubernetes channel protocols on top of it.

What the API server's streaming endpoints (exec, attach, port-forward) speak, as
``k8s.io/apimachinery/pkg/util/httpstream/wsstream`` does: the handshake answers
``Sec-WebSocket-Accept`` and picks the FIRST subprotocol of the client's list that the
endpoint supports (none supported: 403, as golang.org/x/net/websocket answers a failed
handshake); every message carries one channel byte then the data. ``*.channel.k8s.io`` are
binary frames with the raw channel byte; ``*.base64.channel.k8s.io`` are text frames with the
channel as an ASCII digit and base64 data. ``v5.channel.k8s.io`` adds the client's half-close:
a message ``[255, channel]`` closes that channel's input. Client frames must be masked; pings
are answered; fragmented messages are joined; the server closes with status 1000.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import socket
import struct
import threading
from typing import Any, BinaryIO

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
STREAM_CLOSE = 255  # v5: the client closes one channel


@dataclasses.dataclass(frozen=True, slots=True)
class ChannelProtocol:
    name: str
    base64: bool = False
    half_close: bool = False


V4 = ChannelProtocol("v4.channel.k8s.io")
V4_BASE64 = ChannelProtocol("v4.base64.channel.k8s.io", base64=True)
V5 = ChannelProtocol("v5.channel.k8s.io", half_close=True)
BARE = ChannelProtocol("")  # no Sec-WebSocket-Protocol: the original channel protocol


class HandshakeError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def is_upgrade(headers: Any) -> bool:
    return (headers.get("Upgrade") or "").lower() == "websocket" and \
        "upgrade" in (headers.get("Connection") or "").lower()


def negotiate(headers: Any, supported: tuple[ChannelProtocol, ...]) -> ChannelProtocol:
    """The protocol wsstream picks: the client's first offer that is supported."""
    if headers.get("Sec-WebSocket-Version") != "13" or not headers.get("Sec-WebSocket-Key"):
        raise HandshakeError(400, "missing or bad Sec-WebSocket-Key/Sec-WebSocket-Version")
    offered = [p.strip() for p in (headers.get("Sec-WebSocket-Protocol") or "").split(",") if p.strip()] or [""]
    by_name = {p.name: p for p in supported}
    for name in offered:
        if name in by_name:
            return by_name[name]
    raise HandshakeError(403, f"requested protocol(s) are not supported: {offered}; supports {list(by_name)}")


class WebSocket:
    """One upgraded connection: ``receive()`` from one thread, ``send``/``close`` from any."""

    def __init__(self, sock: socket.socket, reader: BinaryIO, protocol: ChannelProtocol) -> None:
        self.sock, self._reader, self.protocol = sock, reader, protocol
        self._send_lock = threading.Lock()
        self.closed = False

    # --- frames ---------------------------------------------------------------------------

    def _read_exact(self, count: int) -> bytes:
        data = self._reader.read(count)
        if data is None or len(data) < count:
            raise ConnectionError("the client went away")
        return data

    def _frame(self) -> tuple[bool, int, bytes]:
        first, second = self._read_exact(2)
        length = second & 0x7F
        if length == 126:
            length = struct.unpack("!H", self._read_exact(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", self._read_exact(8))[0]
        if not second & 0x80:
            self.close(1002)  # RFC 6455 5.1: a server must close on an unmasked client frame
            raise ConnectionError("unmasked client frame")
        mask = self._read_exact(4)
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(self._read_exact(length))) if length < 4096 \
            else _unmask(self._read_exact(length), mask)
        return bool(first & 0x80), first & 0x0F, payload

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        header = bytes([0x80 | opcode])
        if len(payload) < 126:
            header += bytes([len(payload)])
        elif len(payload) < 1 << 16:
            header += bytes([126]) + struct.pack("!H", len(payload))
        else:
            header += bytes([127]) + struct.pack("!Q", len(payload))
        with self._send_lock:
            if self.closed:
                raise ConnectionError("websocket closed")
            self.sock.sendall(header + payload)

    def receive(self) -> tuple[int, bytes] | None:
        """The next data message as ``(channel, data)``; ``None`` when the client closed.

        A v5 half-close comes back as ``(STREAM_CLOSE, bytes([channel]))``."""
        message, opcode = b"", None
        while True:
            try:
                final, op, payload = self._frame()
            except (ConnectionError, OSError, ValueError):
                return None
            if op == PING:
                self._control(PONG, payload)
                continue
            if op == PONG:
                continue
            if op == CLOSE:
                self.close(struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1000)
                return None
            if op != CONTINUATION:
                opcode = op
            message += payload
            if not final:
                continue
            if not message:
                message, opcode = b"", None
                continue
            if self.protocol.base64 and opcode == TEXT:
                return message[0] - ord("0"), base64.b64decode(message[1:])
            return message[0], message[1:]

    def _control(self, opcode: int, payload: bytes) -> None:
        try:
            self._send_frame(opcode, payload)
        except (ConnectionError, OSError):
            pass

    def send(self, channel: int, data: bytes) -> None:
        """One message on ``channel`` (raises ConnectionError once the socket is gone)."""
        try:
            if self.protocol.base64:
                self._send_frame(TEXT, bytes([ord("0") + channel]) + base64.b64encode(data))
            else:
                self._send_frame(BINARY, bytes([channel]) + data)
        except OSError as exc:
            raise ConnectionError(str(exc)) from exc

    def close(self, code: int = 1000) -> None:
        """Send the close frame (once) and end the connection."""
        with self._send_lock:
            if self.closed:
                return
            try:
                self.sock.sendall(bytes([0x80 | CLOSE, 2]) + struct.pack("!H", code))
            except OSError:
                pass
            self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _unmask(data: bytes, mask: bytes) -> bytes:
    key = int.from_bytes((mask * (len(data) // 4 + 1))[:len(data)], "big")
    return (int.from_bytes(data, "big") ^ key).to_bytes(len(data), "big")
