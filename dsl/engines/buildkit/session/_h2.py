"""The session's gRPC server, spoken by us on the one HTTP/2 connection the session has.

BuildKit dials the session as a gRPC client over a connection the client opened. grpcio can
only serve sockets it accepted itself, so the session used to run a grpcio server on a unix
socket behind a byte pump; and grpcio's sync server sends each message in a completion-queue
round trip of its own, 50-100 us, waiting for one before the next. A build context of 4,000
files is ~13,700 FileSync messages: 0.7-1.4 s of a build that ``docker build`` (Go) finishes in
1.6 s (``bench/build.py``, context-big). Its asyncio server measured no faster. That is the
measured reason to serve gRPC ourselves: messages are framed into a queue that is sent in one
``sendmsg`` per batch (by a writer thread, or by a stream itself once it has used up a window
or queued much), so a burst costs microseconds per message and a syscall per batch. HPACK is
the ``hpack`` library's.

What is implemented is what a gRPC server needs of HTTP/2 (RFC 9113) and of gRPC's HTTP/2
protocol: the preface and SETTINGS (window size, frame size, header table size), PING, GOAWAY,
RST_STREAM, HEADERS with CONTINUATION and padding, flow control in both directions (the
peer's windows bound what we send; ours are credited as described at :meth:`_credit`), length-prefixed
messages (uncompressed: the session's clients never compress), trailers with ``grpc-status``
and a percent-encoded ``grpc-message``. Handlers are grpcio's own ``RpcMethodHandler`` objects
(unary-unary and stream-stream), each stream on a thread of its own, so the session's services
are the same code whichever server runs them.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import quote

import grpc
import hpack

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY_FLAG = 0x1, 0x1, 0x4, 0x8, 0x20
S_HEADER_TABLE_SIZE, S_MAX_CONCURRENT_STREAMS, S_INITIAL_WINDOW_SIZE, S_MAX_FRAME_SIZE = 0x1, 0x3, 0x4, 0x5
NO_ERROR, PROTOCOL_ERROR = 0x0, 0x1

_FRAME = struct.Struct(">IBI")  # 24-bit length in the top of the first word, then type, flags, stream
_DEFAULT_WINDOW = 65_535
_RECV_WINDOW = 4 * 1024 * 1024  # what we let the peer send ahead on one stream (of unread data)
_CONN_WINDOW = 16 * 1024 * 1024  # and on the connection (credited on arrival: see _credit)
_MAX_RECV_FRAME = 1 << 20
_MAX_MESSAGE = 64 * 1024 * 1024
_MAX_STREAMS = 100
_FLUSH_AT = 64  # queued buffers (about 0.5-1 MiB of DATA) a stream sends itself rather than wait
_GRPC_HEADERS = ((":status", "200"), ("content-type", "application/grpc"))


class ConnectionFailed(Exception):
    """The peer broke the protocol; the connection ends with GOAWAY(PROTOCOL_ERROR)."""


def frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return _FRAME.pack(len(payload) << 8 | kind, flags, stream) + payload


class _Aborted(Exception):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code, self.details = code, details


class _Context:
    """The part of ``grpc.ServicerContext`` the session's handlers use."""

    def __init__(self, stream: _Stream) -> None:
        self._stream = stream

    def invocation_metadata(self) -> list[tuple[str, str]]:
        return self._stream.metadata

    def abort(self, code: grpc.StatusCode, details: str) -> None:
        raise _Aborted(code, details)


class _Stream:
    def __init__(self, sid: int, method: str, metadata: list[tuple[str, str]], send_window: int) -> None:
        self.sid, self.method, self.metadata = sid, method, metadata
        self.send_window = send_window
        self.messages: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self.buffer = bytearray()  # DATA payload not yet a whole message
        self.unacked = 0  # bytes credited, not yet returned by a WINDOW_UPDATE
        self.queued = 0  # bytes of whole messages the handler has not taken yet
        self.deferred = 0  # bytes received while it was behind: credited once it catches up
        self.remote_closed = False  # END_STREAM seen
        self.reset = False  # RST_STREAM seen, or the connection ended
        self.headers_sent = False


class GrpcConnection:
    """Serve ``table``'s methods on the server side of the connected socket ``sock``.

    Args:
        sock: an HTTP/2 connection whose client has not yet sent its preface (or has: the
            bytes are read from the socket).
        table: method path (``/pkg.Service/Method``) → grpcio handler; nothing else is served.
    """

    def __init__(self, sock: socket.socket, table: Mapping[str, grpc.RpcMethodHandler]) -> None:
        self.sock = sock
        self.table = dict(table)
        self._decoder = hpack.Decoder()
        self._decoder.max_header_list_size = 1 << 20  # include patterns travel as headers
        self._encoder = hpack.Encoder()
        self._lock = threading.Condition()  # windows, streams, the encoder and the output
        self._out: list[bytes | memoryview] = []  # buffers to send, in order (gathered, not joined)
        # PING and WINDOW_UPDATE answers go ahead of queued DATA: the peer grows its windows
        # from how fast its PINGs come back (grpc-go's BDP estimate), and waits for our credit
        self._urgent: list[bytes] = []
        self._send_window = _DEFAULT_WINDOW  # the peer's connection window for us
        self._peer_initial = _DEFAULT_WINDOW
        self._peer_frame = 16_384
        self._conn_unacked = 0
        self._streams: dict[int, _Stream] = {}
        self._last_sid = 0
        self._closed = False
        self._ended = threading.Event()
        self._reader = threading.Thread(target=self._read_loop, daemon=True, name="dsl-session-h2-read")
        self._writer = threading.Thread(target=self._write_loop, daemon=True, name="dsl-session-h2-write")
        self._handlers: list[threading.Thread] = []
        self._send_lock = threading.Lock()  # one sender at a time: the writer, or a busy stream

    def start(self) -> GrpcConnection:
        self.sock.settimeout(None)  # idle between builds' calls is normal; the peer's end is EOF
        settings = b"".join(struct.pack(">HI", k, v) for k, v in (
            (S_MAX_CONCURRENT_STREAMS, _MAX_STREAMS), (S_INITIAL_WINDOW_SIZE, _RECV_WINDOW),
            (S_MAX_FRAME_SIZE, _MAX_RECV_FRAME)))
        self._queue(frame(SETTINGS, 0, 0, settings),
                    frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", _CONN_WINDOW - _DEFAULT_WINDOW)))
        self._reader.start()
        self._writer.start()
        return self

    def wait(self, timeout: float | None = None) -> bool:
        """True once the connection has ended (the peer went away, or :meth:`close`)."""
        return self._ended.wait(timeout)

    def close(self) -> None:
        """Say GOAWAY, end the connection and wait (up to 5 s) for our threads."""
        with self._lock:
            if not self._closed:
                self._out.append(frame(GOAWAY, 0, 0, struct.pack(">II", self._last_sid, NO_ERROR)))
                self._lock.notify_all()
        self._end()
        deadline = time.monotonic() + 5
        for thread in [self._reader, self._writer, *self._handlers]:  # streams end once reset
            if thread.ident is not None and thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))

    # -- the connection -------------------------------------------------------------------

    def _end(self) -> None:
        """No more frames either way: streams are reset, waiters woken, the socket shut."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for stream in self._streams.values():
                stream.reset = True
                stream.messages.put(None)
            self._lock.notify_all()
        # let the writer send what is queued (a GOAWAY) before the socket goes
        if self._writer.is_alive() and self._writer is not threading.current_thread():
            self._writer.join(2)
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self._ended.set()

    def _queue(self, *frames: bytes) -> None:
        with self._lock:
            self._out.extend(frames)
            self._lock.notify_all()

    def _queue_urgent(self, *frames: bytes) -> None:
        with self._lock:
            self._urgent.extend(frames)
            self._lock.notify_all()

    def _write_loop(self) -> None:
        """Send what the reader and the streams queue, whenever nobody else is sending it."""
        try:
            while True:
                with self._lock:
                    while not self._out and not self._urgent and not self._closed:
                        self._lock.wait()
                    if not self._out and not self._urgent:
                        return
                self._flush()
        except OSError:
            self._end()

    def _flush(self) -> None:
        """Send everything queued, in queue order (the send lock is taken before the swap)."""
        with self._send_lock:
            with self._lock:
                batch, self._out, self._urgent = [*self._urgent, *self._out], [], []
            if batch:
                _send_buffers(self.sock, batch)

    def _read_loop(self) -> None:
        reader = self.sock.makefile("rb", buffering=256 * 1024)
        try:
            if reader.read(len(PREFACE)) != PREFACE:
                raise ConnectionFailed("not an HTTP/2 client preface")
            while True:
                head = reader.read(9)
                if len(head) < 9:
                    return
                word, flags, sid = _FRAME.unpack(head)
                length, kind, sid = word >> 8, word & 0xFF, sid & 0x7FFFFFFF
                if length > _MAX_RECV_FRAME:
                    raise ConnectionFailed(f"a {length}-byte frame")
                payload = reader.read(length)
                if len(payload) < length:
                    return
                self._on_frame(kind, flags, sid, payload, reader)
        except ConnectionFailed:
            self._queue(frame(GOAWAY, 0, 0, struct.pack(">II", self._last_sid, PROTOCOL_ERROR)))
        except (OSError, ValueError):
            pass  # the socket went away, or close()
        finally:
            self._end()

    def _on_frame(self, kind: int, flags: int, sid: int, payload: bytes, reader: Any) -> None:
        if kind == DATA:
            self._on_data(sid, flags, payload)
        elif kind == HEADERS:
            block = _unpad(flags, payload)
            if flags & PRIORITY_FLAG:
                block = block[5:]
            more = not flags & END_HEADERS
            while more:  # CONTINUATION frames follow, and nothing else may
                head = reader.read(9)
                if len(head) < 9:
                    raise ConnectionFailed("the connection ended inside a header block")
                word, cont_flags, _ = _FRAME.unpack(head)
                if word & 0xFF != CONTINUATION:
                    raise ConnectionFailed("a header block interrupted")
                block += reader.read(word >> 8)
                more = not cont_flags & END_HEADERS
            self._on_headers(sid, flags, block)
        elif kind == SETTINGS:
            if not flags & ACK:
                self._on_settings(payload)
        elif kind == PING:
            if not flags & ACK:
                self._queue_urgent(frame(PING, ACK, 0, payload))
        elif kind == WINDOW_UPDATE:
            (increment,) = struct.unpack(">I", payload)
            with self._lock:
                if sid == 0:
                    self._send_window += increment & 0x7FFFFFFF
                elif sid in self._streams:
                    self._streams[sid].send_window += increment & 0x7FFFFFFF
                self._lock.notify_all()
        elif kind == RST_STREAM:
            with self._lock:
                stream = self._streams.get(sid)
                if stream is not None:
                    stream.reset = True
                    stream.messages.put(None)
                    self._lock.notify_all()
        elif kind == GOAWAY:
            pass  # the peer starts nothing new; what runs may finish, then it closes
        # PRIORITY, and frame types this side never receives or does not know, are ignored

    def _on_settings(self, payload: bytes) -> None:
        with self._lock:
            for i in range(0, len(payload) - len(payload) % 6, 6):
                key, value = struct.unpack_from(">HI", payload, i)
                if key == S_INITIAL_WINDOW_SIZE:
                    delta, self._peer_initial = value - self._peer_initial, value
                    for stream in self._streams.values():
                        stream.send_window += delta
                elif key == S_MAX_FRAME_SIZE:
                    self._peer_frame = value
                elif key == S_HEADER_TABLE_SIZE:
                    self._encoder.header_table_size = min(value, 4096)
            self._out.append(frame(SETTINGS, ACK, 0))
            self._lock.notify_all()

    def _on_headers(self, sid: int, flags: int, block: bytes) -> None:
        try:
            fields = self._decoder.decode(block)  # always: the table state depends on every block
        except hpack.HPACKError as exc:
            raise ConnectionFailed(f"undecodable headers: {exc}") from exc
        with self._lock:
            stream = self._streams.get(sid)
        if stream is not None:  # the request's trailers
            if flags & END_STREAM:
                self._remote_end(stream)
            return
        if sid <= self._last_sid or sid % 2 == 0:
            return  # a stream we have finished (or a malformed id): nothing to start
        self._last_sid = sid
        method = next((v for k, v in fields if k == ":path"), "")
        metadata = [(k, v) for k, v in fields if not k.startswith(":")]
        with self._lock:
            stream = _Stream(sid, method, metadata, self._peer_initial)
            self._streams[sid] = stream
        if flags & END_STREAM:
            self._remote_end(stream)
        handler = self.table.get(method)
        target = self._serve if handler is not None else self._unimplemented
        thread = threading.Thread(target=target, args=(stream, handler), daemon=True,
                                  name=f"dsl-session-h2-stream-{sid}")
        thread.start()
        self._handlers = [t for t in self._handlers if t.is_alive()] + [thread]

    def _remote_end(self, stream: _Stream) -> None:
        stream.remote_closed = True
        stream.messages.put(None)

    def _on_data(self, sid: int, flags: int, payload: bytes) -> None:
        self._credit(None, len(payload))  # the connection's window: as it arrives (see _credit)
        with self._lock:  # the stream's now, unless its handler is behind (see _credit)
            stream = self._streams.get(sid)
            if stream is None or stream.remote_closed:
                return
            if stream.queued < _RECV_WINDOW // 2:
                credit = len(payload) + stream.deferred
                stream.deferred = 0
            else:
                credit, stream.deferred = 0, stream.deferred + len(payload)
        self._credit(stream, credit)
        buf = stream.buffer
        buf += _unpad(flags, payload)
        while len(buf) >= 5:
            if buf[0]:
                raise ConnectionFailed("a compressed gRPC message (compression is not offered)")
            length = int.from_bytes(buf[1:5], "big")
            if length > _MAX_MESSAGE:
                raise ConnectionFailed(f"a {length}-byte gRPC message")
            if len(buf) < 5 + length:
                break
            with self._lock:
                stream.queued += 5 + length
            stream.messages.put(bytes(buf[5:5 + length]))
            del buf[:5 + length]
        if flags & END_STREAM:
            self._remote_end(stream)

    def _credit(self, stream: _Stream | None, size: int) -> None:
        """Give the peer back ``size`` bytes of window, in WINDOW_UPDATEs of half a window.

        The connection's window (``stream`` None) is credited as data arrives. A stream's is
        too while its handler keeps up (less than half a window of whole messages unread);
        beyond that, credit waits until the handler reads. So a handler that reads slowly (an
        export to a slow disk) holds back its own stream's sender, with a window or two of
        memory, while the other streams (the daemon's health checks) still get through; and
        a message bigger than the window still arrives.
        """
        if size <= 0:
            return
        with self._lock:
            if stream is None:
                self._conn_unacked += size
                if self._conn_unacked < _CONN_WINDOW // 2:
                    return
                update, self._conn_unacked = frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", self._conn_unacked)), 0
            else:
                if stream.remote_closed or stream.reset:
                    return
                stream.unacked += size
                if stream.unacked < _RECV_WINDOW // 2:
                    return
                update, stream.unacked = frame(WINDOW_UPDATE, 0, stream.sid, struct.pack(">I", stream.unacked)), 0
            self._urgent.append(update)
            self._lock.notify_all()

    # -- one stream -----------------------------------------------------------------------

    def _requests(self, stream: _Stream) -> Iterator[bytes]:
        while True:
            message = stream.messages.get()
            if message is None:
                stream.messages.put(None)  # later reads end too
                return
            with self._lock:
                stream.queued -= 5 + len(message)
                credit = stream.deferred if stream.queued < _RECV_WINDOW // 2 else 0
                stream.deferred -= credit
            self._credit(stream, credit)
            yield message

    def _serve(self, stream: _Stream, handler: grpc.RpcMethodHandler) -> None:
        context = _Context(stream)
        decode: Callable[[bytes], Any] = handler.request_deserializer or (lambda b: b)
        encode: Callable[[Any], bytes] = handler.response_serializer or (lambda m: m)
        code, details = grpc.StatusCode.OK, ""
        responses: Any = None
        try:
            requests = (decode(m) for m in self._requests(stream))
            if handler.unary_unary is not None:
                request = next(requests, None)
                if request is None:
                    raise _Aborted(grpc.StatusCode.INTERNAL, "no request message")
                self._send_message(stream, encode(handler.unary_unary(request, context)))
            elif handler.stream_stream is not None:
                responses = handler.stream_stream(requests, context)
                for response in responses:  # a reset stream ends this: _send_message raises
                    self._send_message(stream, encode(response))
            else:
                raise _Aborted(grpc.StatusCode.UNIMPLEMENTED, "only unary and bidi methods are served")
        except _Aborted as exc:
            code, details = exc.code, exc.details
        except _StreamGone:
            pass
        except Exception as exc:  # noqa: BLE001 - a handler's bug: the caller gets UNKNOWN, as from grpcio
            code, details = grpc.StatusCode.UNKNOWN, f"Exception calling application: {exc}"
        finally:
            if responses is not None and hasattr(responses, "close"):
                responses.close()  # a stream the peer reset: the generator's finally blocks run
        self._finish(stream, code, details)

    def _unimplemented(self, stream: _Stream, _handler: None) -> None:
        self._finish(stream, grpc.StatusCode.UNIMPLEMENTED, f"Method not found: {stream.method}")

    def _send_message(self, stream: _Stream, payload: bytes) -> None:
        """Queue one length-prefixed message as DATA frames, within the peer's windows.

        A stream that has used up a window sends the frames itself before it waits for the
        peer's WINDOW_UPDATE, as it does when much is queued: handing them to the writer thread
        would leave the socket idle until the GIL changes hands (up to 5 ms a window), and the
        peer grows its windows only as fast as data arrives.
        """
        prefix, data = b"\0" + len(payload).to_bytes(4, "big"), memoryview(payload)
        while True:
            with self._lock:
                while min(self._send_window, stream.send_window) <= 0:
                    if stream.reset or self._closed:
                        raise _StreamGone
                    self._lock.wait()
                if stream.reset or self._closed:
                    raise _StreamGone
                if not stream.headers_sent:
                    self._out.append(self._headers(stream.sid, _GRPC_HEADERS, 0))
                    stream.headers_sent = True
                while (prefix or data) and min(self._send_window, stream.send_window) > 0:
                    n = min(len(prefix) + len(data), self._peer_frame, self._send_window, stream.send_window)
                    if prefix:  # the first frame: the 5-byte prefix and the payload's start, copied
                        part = prefix[:n]
                        take = n - len(part)
                        self._out.append(frame(DATA, 0, stream.sid, part + data[:take]))
                        prefix, data = prefix[len(part):], data[take:]
                    else:  # the rest: a header, then a view of the payload (no copy)
                        self._out += (_FRAME.pack(n << 8 | DATA, 0, stream.sid), data[:n])
                        data = data[n:]
                    self._send_window -= n
                    stream.send_window -= n
                done = not (prefix or data)
                if done and len(self._out) < _FLUSH_AT:
                    self._lock.notify_all()  # the writer sends it
                    return
            try:
                self._flush()
            except OSError as exc:
                self._end()
                raise _StreamGone from exc
            if done:
                return

    def _finish(self, stream: _Stream, code: grpc.StatusCode, details: str) -> None:
        """Trailers (or a trailers-only answer), then forget the stream."""
        trailers: list[tuple[str, str]] = [] if stream.headers_sent else list(_GRPC_HEADERS)
        trailers.append(("grpc-status", str(code.value[0])))
        if details:
            trailers.append(("grpc-message", quote(details, safe=" !\"#$&'()*+,-./:;<=>?@[\\]^_`{|}~")))
        with self._lock:
            if not stream.reset and not self._closed:
                self._out.append(self._headers(stream.sid, trailers, END_STREAM))
                if not stream.remote_closed:  # the client still sends: tell it we are done
                    self._out.append(frame(RST_STREAM, 0, stream.sid, struct.pack(">I", NO_ERROR)))
                self._lock.notify_all()
            self._streams.pop(stream.sid, None)

    def _headers(self, sid: int, fields: Any, flags: int) -> bytes:
        """One header block, encoded (under the lock: the encoder's table follows frame order)."""
        block = self._encoder.encode(fields)
        frames, first = [], True
        while True:
            chunk, block = block[:self._peer_frame], block[self._peer_frame:]
            kind = HEADERS if first else CONTINUATION
            frames.append(frame(kind, (flags if first else 0) | (0 if block else END_HEADERS), sid, chunk))
            first = False
            if not block:
                return b"".join(frames)


class _StreamGone(Exception):
    """The peer reset the stream or the connection ended: stop sending."""


_IOV_MAX = 1024  # buffers per sendmsg (Linux's UIO_MAXIOV)


def _send_buffers(sock: socket.socket, buffers: list[bytes | memoryview]) -> None:
    """``sendall`` of the buffers' concatenation, without concatenating them."""
    i = 0
    while i < len(buffers):
        sent = sock.sendmsg(buffers[i:i + _IOV_MAX])
        while sent:
            size = len(buffers[i])
            if sent < size:
                buffers[i] = memoryview(buffers[i])[sent:]
                break
            sent -= size
            i += 1
        while i < len(buffers) and not len(buffers[i]):
            i += 1


def _unpad(flags: int, payload: bytes) -> bytes:
    if not flags & PADDED:
        return payload
    if not payload or payload[0] >= len(payload):
        raise ConnectionFailed("bad padding")
    return payload[1:len(payload) - payload[0]]
