"""Harness for the session's own HTTP/2 gRPC server: a real grpcio *client* talks to one
``GrpcConnection`` over a unix socket, the way the daemon talks to the session over the
hijacked ``/session`` connection. Nothing here needs an engine."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator

import grpc

from dsl.engines.buildkit.session._h2 import GrpcConnection

THREAD_PREFIX = "dsl-session-h2"


def session_threads() -> list[threading.Thread]:
    """The server's threads still alive (reader, writer, per-stream handlers)."""
    return [t for t in threading.enumerate() if t.name.startswith(THREAD_PREFIX) and t.is_alive()]


def raw_unary(fn: Callable) -> grpc.RpcMethodHandler:
    """A unary handler on undecoded bytes."""
    return grpc.unary_unary_rpc_method_handler(fn)


def raw_stream(fn: Callable) -> grpc.RpcMethodHandler:
    """A bidi handler on undecoded bytes."""
    return grpc.stream_stream_rpc_method_handler(fn)


def drain(responses) -> tuple[list, grpc.RpcError | None]:
    """The messages of a response stream up to its end, and the error that ended it (if)."""
    got = []
    try:
        for message in responses:
            got.append(message)  # noqa: PERF402 - the messages before the error are the point
    except grpc.RpcError as exc:
        return got, exc
    return got, None


class Pulled:
    """How many requests a grpcio client has taken from its iterator: it takes the next one
    only once the last is on its way, so the count stops growing when flow control holds it."""

    def __init__(self) -> None:
        self.count = 0

    def counting(self, messages: Iterator[bytes]) -> Iterator[bytes]:
        for message in messages:
            self.count += 1
            yield message

    def wait_stalled(self, quiet: float = 0.3, timeout: float = 5) -> None:
        """Return once the count has not changed for ``quiet`` seconds (or at ``timeout``)."""
        deadline = time.monotonic() + timeout
        last = -1
        while self.count != last and time.monotonic() < deadline:
            last = self.count
            time.sleep(quiet)


def echo_unary(request: bytes, context) -> bytes:
    return request


def echo_stream(requests: Iterator[bytes], context) -> Iterator[bytes]:
    yield from requests


class Served:
    """One ``GrpcConnection`` behind a unix socket, and a grpcio channel dialling it.

    The listener accepts a single connection and then closes, so a client that loses the
    connection sees UNAVAILABLE instead of silently getting a second server.
    """

    def __init__(self, table: dict[str, grpc.RpcMethodHandler],
                 options: tuple[tuple[str, object], ...] = ()) -> None:
        self.table = table
        self._dir = tempfile.mkdtemp(prefix="h2t-")  # short: unix socket paths max ~107 bytes
        self.path = os.path.join(self._dir, "s")
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(self.path)
        self._listener.listen(1)
        self._listener.settimeout(0.1)
        self._stop = threading.Event()
        self._accepted = threading.Event()
        self._conn: GrpcConnection | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._accept, name="h2test-accept", daemon=True)
        self._thread.start()
        self.channel = grpc.insecure_channel(f"unix:{self.path}", options=list(options))

    def _accept(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    sock, _ = self._listener.accept()
                except TimeoutError:
                    continue
                sock.settimeout(None)
                self._conn = GrpcConnection(sock, self.table).start()
                return
        except Exception as exc:  # noqa: BLE001 - re-raised by connection(), in the test
            self._error = exc
        finally:
            self._listener.close()
            self._accepted.set()

    def connection(self, timeout: float = 5) -> GrpcConnection:
        """The server side, once the client has connected (call after a first RPC)."""
        assert self._accepted.wait(timeout), "the grpcio client never connected"
        if self._error is not None:
            raise self._error
        assert self._conn is not None
        return self._conn

    def unary(self, method: str, **kw) -> grpc.UnaryUnaryMultiCallable:
        return self.channel.unary_unary(method, **kw)

    def stream(self, method: str, **kw) -> grpc.StreamStreamMultiCallable:
        return self.channel.stream_stream(method, **kw)

    def close(self) -> float:
        """Close client and server; returns how long ``GrpcConnection.close`` took."""
        self.channel.close()
        self._stop.set()
        self._thread.join(5)
        took = 0.0
        if self._conn is not None:
            start = time.monotonic()
            self._conn.close()
            took = time.monotonic() - start
        shutil.rmtree(self._dir, ignore_errors=True)
        return took


def assert_no_session_threads() -> None:
    """None of the server's threads outlives its close (a 2 s grace for their last lines)."""
    deadline = time.monotonic() + 2
    while session_threads() and time.monotonic() < deadline:
        time.sleep(0.02)
    left = session_threads()
    assert not left, f"threads left running after close: {[t.name for t in left]}"
