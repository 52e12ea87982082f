"""What grpcio's client never does, done by hand on a raw socket: a header block split over
CONTINUATION frames, padding and priority fields, padded DATA (a Go client may send these);
a client with the default 16 KiB frame size and small flow-control windows (grpcio always
offers 4 MiB), which the server must respect exactly or the client fails the connection."""

from __future__ import annotations

import os
import socket
import struct

import grpc
import hpack
import pytest

from dsl.engines.buildkit.session._h2 import GrpcConnection
from tests.engines.buildkit.h2._harness import (
    assert_no_session_threads,
    echo_unary,
    raw_unary,
)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, SETTINGS, PING, WINDOW_UPDATE, CONTINUATION = 0x0, 0x1, 0x4, 0x6, 0x8, 0x9
ACK = END_STREAM = 0x1
END_HEADERS, PADDED, PRIORITY = 0x4, 0x8, 0x20


def frame(kind: int, flags: int, sid: int, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", sid) + payload


def read_frame(sock: socket.socket) -> tuple[int, int, int, bytes]:
    head = _read_exactly(sock, 9)
    length = int.from_bytes(head[:3], "big")
    return head[3], head[4], int.from_bytes(head[5:], "big") & 0x7FFFFFFF, _read_exactly(sock, length)


def _read_exactly(sock: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        got = sock.recv(n - len(out))
        assert got, "the server closed the connection"
        out += got
    return out


def test_continuation_padding_and_priority_are_read_through():
    client, server = socket.socketpair()
    client.settimeout(5)
    conn = GrpcConnection(server, {"/test.Echo/Unary": raw_unary(echo_unary)}).start()
    try:
        block = hpack.Encoder().encode([
            (":method", "POST"), (":scheme", "http"), (":path", "/test.Echo/Unary"),
            (":authority", "localhost"), ("content-type", "application/grpc"), ("te", "trailers"),
            ("dir-name", "x" * 300)])
        first, rest = block[:20], block[20:]
        pad = 7
        headers = bytes([pad]) + struct.pack(">IB", 0, 15) + first + b"\0" * pad
        message = b"\0" + struct.pack(">I", 5) + b"hello"
        client.sendall(
            PREFACE + frame(SETTINGS, 0, 0, b"")
            + frame(HEADERS, PADDED | PRIORITY, 1, headers)
            + frame(CONTINUATION, 0, 1, rest[:10])
            + frame(CONTINUATION, END_HEADERS, 1, rest[10:])
            + frame(DATA, PADDED, 1, bytes([3]) + message[:4] + b"\0" * 3)
            + frame(DATA, PADDED | END_STREAM, 1, bytes([0]) + message[4:]))

        decoder, fields, body = hpack.Decoder(), [], b""
        while True:
            kind, flags, sid, payload = read_frame(client)
            if sid != 1:
                continue
            if kind == HEADERS:
                assert flags & END_HEADERS  # our blocks are small: no CONTINUATION back
                fields += decoder.decode(payload)
                if flags & END_STREAM:
                    break
            elif kind == DATA:
                body += payload
        assert ("grpc-status", "0") in fields, fields
        assert body == message
    finally:
        client.close()
        conn.close()
        server.close()
    assert_no_session_threads()


REQUEST = [(":method", "POST"), (":scheme", "http"), (":path", "/test.Echo/Unary"),
           (":authority", "localhost"), ("content-type", "application/grpc"), ("te", "trailers")]


class RawClient:
    """An HTTP/2 client of one unary echo call, reading frames as they come."""

    def __init__(self, settings: dict[int, int], table=None) -> None:
        self.sock, server = socket.socketpair()
        self.sock.settimeout(5)
        table = table or {"/test.Echo/Unary": raw_unary(echo_unary)}
        self.conn = GrpcConnection(server, table).start()
        self._server = server
        payload = b"".join(struct.pack(">HI", k, v) for k, v in settings.items())
        self.sock.sendall(PREFACE + frame(SETTINGS, 0, 0, payload))
        self.decoder = hpack.Decoder()
        self.data_frames: list[int] = []  # the size of each DATA frame on stream 1
        self.body, self.trailers, self.ended = b"", [], False
        self.header_frames: list[int] = []  # the type of each header-block frame on stream 1

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def call(self, message: bytes) -> None:
        body = b"\0" + struct.pack(">I", len(message)) + message
        self.send(frame(HEADERS, END_HEADERS, 1, hpack.Encoder().encode(REQUEST))
                  + b"".join(frame(DATA, 0, 1, body[i:i + 16384]) for i in range(0, len(body), 16384))
                  + frame(DATA, END_STREAM, 1, b""))

    def window_update(self, sid: int, increment: int) -> None:
        self.send(frame(WINDOW_UPDATE, 0, sid, struct.pack(">I", increment)))

    def read_for(self, seconds: float) -> None:
        """Read frames until the call ends or ``seconds`` pass without a frame."""
        self.sock.settimeout(seconds)
        try:
            while not self.ended:
                kind, flags, sid, payload = read_frame(self.sock)
                assert len(payload) <= 16384, f"a {len(payload)}-byte frame (type {kind})"
                if sid != 1:
                    continue
                if kind == DATA:
                    self.data_frames.append(len(payload))
                    self.body += payload
                elif kind == HEADERS:
                    block, end_stream = payload, flags & END_STREAM
                    self.header_frames.append(kind)
                    while not flags & END_HEADERS:  # CONTINUATIONs of this block come next
                        kind, flags, _, payload = read_frame(self.sock)
                        assert kind == CONTINUATION and len(payload) <= 16384
                        self.header_frames.append(kind)
                        block += payload
                    fields = self.decoder.decode(block)
                    if end_stream:
                        self.trailers, self.ended = fields, True
        except TimeoutError:
            pass

    def close(self) -> None:
        self.sock.close()
        self.conn.close()
        self._server.close()
        assert_no_session_threads()


def test_data_frames_respect_the_clients_default_frame_size():
    client = RawClient({0x4: 1 << 20})  # a 1 MiB stream window; max frame size left at 16 KiB
    try:
        message = bytes(range(256)) * 200  # 51,200 bytes
        client.window_update(0, 1 << 20)
        client.call(message)
        client.read_for(5)
        assert client.ended and ("grpc-status", "0") in client.trailers
        assert client.body[5:] == message
        assert max(client.data_frames) <= 16384
    finally:
        client.close()


def test_long_trailers_are_split_into_continuation_frames():
    details = "missing: " + " ".join(f"{i:05x}{os.urandom(6).hex()}" for i in range(3000))

    def deny(request, context):
        context.abort(grpc.StatusCode.FAILED_PRECONDITION, details)

    client = RawClient({}, {"/test.Echo/Unary": raw_unary(deny)})
    try:
        client.call(b"x")
        client.read_for(5)
        assert client.ended
        assert client.header_frames[0] == HEADERS and CONTINUATION in client.header_frames
        assert ("grpc-status", "9") in client.trailers
        assert ("grpc-message", details) in client.trailers  # nothing in it needs %-escaping
    finally:
        client.close()


@pytest.mark.parametrize("settings, widen_first, stuck_at, widen_then", [
    ({0x4: 1000}, 0, 1000, 1),  # each stream may receive 1,000 bytes until updated
    ({0x4: 1 << 20}, None, 65_535, 0),  # streams may take 1 MiB; the connection only 65,535
], ids=["stream window", "connection window"])
def test_sending_stops_at_a_window_until_it_is_updated(settings, widen_first, stuck_at, widen_then):
    client = RawClient(settings)
    try:
        message = b"w" * 100_000
        if widen_first is not None:
            client.window_update(widen_first, 1 << 20)
        client.call(message)
        client.read_for(0.5)
        assert len(client.body) == stuck_at and not client.ended
        client.window_update(widen_then, 1 << 20)
        client.read_for(5)
        assert client.ended and client.body[5:] == message
    finally:
        client.close()


def test_a_ping_is_answered_with_its_own_payload():
    # Keepalive: a Go client that pings an idle connection and gets no ACK closes it.
    client = RawClient({})
    try:
        client.send(frame(PING, 0, 0, b"k33pal1v"))
        while True:
            kind, flags, sid, payload = read_frame(client.sock)
            if kind == PING:
                break
        assert (flags & ACK, sid, payload) == (ACK, 0, b"k33pal1v")
    finally:
        client.close()
