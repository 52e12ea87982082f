"""Many streams on the one connection: concurrent calls are all answered correctly, and a
stream that is slow (in its handler, or because its reader stalls) does not hold up others."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc

from tests.engines.buildkit.h2._harness import (
    Pulled,
    drain,
    echo_stream,
    echo_unary,
    raw_stream,
    raw_unary,
)

UNARY = "/test.Echo/Unary"
STREAM = "/test.Echo/Stream"
SLOW = "/test.Slow/Wait"
BULK = "/test.Bulk/Produce"


def test_16_concurrent_mixed_calls_are_all_answered_correctly(serve):
    served = serve({UNARY: raw_unary(echo_unary), STREAM: raw_stream(echo_stream)})
    unary, stream = served.unary(UNARY), served.stream(STREAM)
    start = threading.Barrier(16)

    def one_call(n: int) -> bool:
        start.wait(5)
        for _ in range(5):
            if n % 2:
                payload = bytes([n]) * (1000 * n + 17)
                if unary(payload, timeout=20) != payload:
                    return False
            else:
                sent = [b"%d:%d:" % (n, i) + os.urandom(i * 97 % 40_000) for i in range(60)]
                if list(stream(iter(sent), timeout=20)) != sent:
                    return False
        return True

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(one_call, range(16), timeout=40))
    assert results == [True] * 16


def test_a_slow_handler_does_not_block_another_stream(serve):
    release, entered = threading.Event(), threading.Event()

    def slow(request, context):
        entered.set()
        release.wait(10)
        return b"slow-done"

    served = serve({SLOW: raw_unary(slow), UNARY: raw_unary(echo_unary)})
    pending = served.unary(SLOW).future(b"", timeout=15)
    try:
        assert entered.wait(5)
        started = time.monotonic()
        assert served.unary(UNARY)(b"quick", timeout=5) == b"quick"
        assert time.monotonic() - started < 2
    finally:
        release.set()
    assert pending.result(timeout=5) == b"slow-done"


def test_a_stalled_reader_does_not_block_another_streams_transfer(serve):
    # One stream's client stops reading, so the server's sends on it wait for a window that
    # does not come; the writer and the connection window must keep serving the other.
    blob = os.urandom(8 * 1024 * 1024)

    def produce(requests, context):
        next(requests)
        for at in range(0, len(blob), 64 * 1024):
            yield blob[at:at + 64 * 1024]

    served = serve({BULK: raw_stream(produce)})
    bulk = served.stream(BULK)
    stalled = bulk(iter([b"go"]), timeout=20)
    try:
        assert len(next(stalled)) == 64 * 1024  # started, then nobody reads it for a while
        time.sleep(0.5)  # let its windows fill
        started = time.monotonic()
        digest = hashlib.sha256()
        for message in bulk(iter([b"go"]), timeout=10):
            digest.update(message)
        assert digest.digest() == hashlib.sha256(blob).digest()
        assert time.monotonic() - started < 8
    finally:
        stalled.cancel()


def test_stalled_uploads_do_not_hold_up_another_streams_requests(serve):
    # Exports to a slow disk: the FileSend handlers stop reading, and the daemon keeps sending
    # until each stream's window is used up. Meanwhile the daemon's Health/Check (every
    # second) must still get its request through, or the daemon drops the session. So stalled
    # streams may use up their own windows, but not the connection's (a few stream windows).
    release = threading.Event()

    def slow_sink(requests, context):
        release.wait(20)
        yield b"%d" % sum(len(m) for m in requests)

    served = serve({STREAM: raw_stream(slow_sink), UNARY: raw_unary(echo_unary)})
    counters, uploads = [], []
    for _ in range(6):
        pulled = Pulled()
        upload = (b"u" * (64 * 1024) for _ in range(320))  # 20 MiB each, more than a window
        uploads.append(served.stream(STREAM)(pulled.counting(upload), timeout=30))
        counters.append(pulled)
    try:
        for pulled in counters:
            pulled.wait_stalled()  # each upload has filled the windows it may fill
        assert served.unary(UNARY)(b"health", timeout=3) == b"health"
    finally:
        release.set()
    assert [list(u) for u in uploads] == [[b"%d" % (320 * 64 * 1024)]] * 6


def test_requests_a_handler_never_read_do_not_use_up_the_connection(serve):
    # A handler that ends early (an abort on the first bad packet) leaves requests the client
    # had already sent unread; their share of the connection window must come back, or after
    # a few such calls nothing can be sent on the connection at all.
    pulled = Pulled()

    def stop_early(requests, context):
        next(requests)
        pulled.wait_stalled()  # the client has sent all it may by now, unread
        context.abort(grpc.StatusCode.ABORTED, "bad packet")
        yield b"unreachable"

    served = serve({STREAM: raw_stream(stop_early), UNARY: raw_unary(echo_unary)})
    for _ in range(5):  # each leaves at least a stream window unread: more than the connection's
        upload = (b"x" * (64 * 1024) for _ in range(400))  # 25 MiB
        error = drain(served.stream(STREAM)(pulled.counting(upload), timeout=10))[1]
        assert error is not None and error.code() == grpc.StatusCode.ABORTED
    assert served.unary(UNARY)(b"still served", timeout=3) == b"still served"
