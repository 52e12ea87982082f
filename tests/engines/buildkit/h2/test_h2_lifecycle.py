"""Ends of calls and of the connection: client cancels, the client going away, and the
server closing under an open call. None of these may hang, and handlers get to clean up."""

from __future__ import annotations

import threading
import time

import grpc
import pytest

from tests.engines.buildkit.h2._harness import (
    assert_no_session_threads,
    echo_unary,
    raw_stream,
    raw_unary,
)

UNARY = "/test.Echo/Unary"
PRODUCE = "/test.Endless/Produce"
CONSUME = "/test.Endless/Consume"


def endless_producer(cleaned: threading.Event):
    def produce(requests, context):
        try:
            i = 0
            while True:
                yield b"%08d" % i + b"." * 4096
                i += 1
        finally:
            cleaned.set()

    return raw_stream(produce)


def endless_consumer(cleaned: threading.Event, ended: threading.Event, got: list):
    def consume(requests, context):
        try:
            for message in requests:  # the client never half-closes
                got.append(message)  # noqa: PERF402 - the test watches it grow
            ended.set()
            yield b"unreachable for a cancelled call"
        finally:
            cleaned.set()

    return raw_stream(consume)


def test_cancel_of_a_producing_stream_closes_the_handler_generator(serve):
    cleaned = threading.Event()
    served = serve({PRODUCE: endless_producer(cleaned), UNARY: raw_unary(echo_unary)})
    call = served.stream(PRODUCE)(iter([b"go"]), timeout=20)
    for _ in range(10):
        next(call)
    time.sleep(0.3)  # the unread rest fills the windows: the generator waits to send
    call.cancel()
    assert cleaned.wait(5), "the handler generator's finally did not run after the cancel"
    assert served.unary(UNARY)(b"next", timeout=5) == b"next"


def test_cancel_while_the_handler_waits_for_requests_ends_its_request_iterator(serve):
    cleaned, ended, got = threading.Event(), threading.Event(), []
    served = serve({CONSUME: endless_consumer(cleaned, ended, got), UNARY: raw_unary(echo_unary)})
    client_stop = threading.Event()

    def requests():
        yield b"first"
        client_stop.wait(20)  # keeps the stream open, sending nothing more

    call = served.stream(CONSUME)(requests(), timeout=20)
    try:
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            time.sleep(0.01)
        assert got == [b"first"]
        call.cancel()
        assert ended.wait(5), "the handler's request iterator did not end on cancel"
        assert cleaned.wait(5)
    finally:
        client_stop.set()
    assert served.unary(UNARY)(b"next", timeout=5) == b"next"


def test_client_deadline_ends_the_handler_too(serve):
    cleaned = threading.Event()
    served = serve({PRODUCE: endless_producer(cleaned)})
    call = served.stream(PRODUCE)(iter([b"go"]), timeout=1)
    with pytest.raises(grpc.RpcError) as info:
        for _ in call:
            time.sleep(0.05)
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert cleaned.wait(5)


def test_client_closing_its_channel_ends_the_connection(serve):
    served = serve({UNARY: raw_unary(echo_unary)})
    assert served.unary(UNARY)(b"hi", timeout=5) == b"hi"
    conn = served.connection()
    assert not conn.wait(0.2)
    served.channel.close()
    assert conn.wait(5), "the connection did not notice the client went away"
    assert_no_session_threads()  # they end with the connection, before anyone calls close()


@pytest.mark.parametrize("method", [PRODUCE, CONSUME])
def test_server_close_under_an_open_call_fails_it_instead_of_hanging(serve, method):
    cleaned, ended, got = threading.Event(), threading.Event(), []
    served = serve({PRODUCE: endless_producer(cleaned),
                    CONSUME: endless_consumer(threading.Event(), ended, got)})
    client_stop = threading.Event()

    def requests():
        yield b"go"
        client_stop.wait(20)

    call = served.stream(method)(requests(), timeout=20)
    errors: list = []

    def read_all():
        try:
            for _ in call:
                time.sleep(0.01)
        except grpc.RpcError as exc:
            errors.append(exc)

    reader = threading.Thread(target=read_all, daemon=True)
    reader.start()
    try:
        time.sleep(0.5)
        conn = served.connection()
        started = time.monotonic()
        conn.close()
        assert time.monotonic() - started < 5.5
        assert conn.wait(0)
        reader.join(10)
        assert not reader.is_alive(), "the client call hung after the server closed"
        assert [e.code() for e in errors] in ([grpc.StatusCode.UNAVAILABLE],
                                              [grpc.StatusCode.CANCELLED])
    finally:
        client_stop.set()
        call.cancel()

