"""Bidi streams: order, large messages beyond every window and frame size, empty messages,
a slow reader, and the DiffCopy pattern (read to the client's FIN, then answer)."""

from __future__ import annotations

import hashlib
import os
import queue
import threading
import time

import grpc

from dsl.engines.buildkit.protos import fsutil_types_pb2
from tests.engines.buildkit.h2._harness import Pulled, echo_stream, raw_stream

ECHO = "/test.Echo/Stream"
UNLIMITED = (("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1))


def test_bidi_echo_of_20000_small_messages_keeps_their_order(serve):
    served = serve({ECHO: raw_stream(echo_stream)})
    sent = [b"%d" % i for i in range(20_000)]
    assert list(served.stream(ECHO)(iter(sent), timeout=30)) == sent


def test_bidi_5_mib_messages_both_ways(serve):
    # 5 MiB is more than the initial 64 KiB windows and any frame size; four of them (20 MiB)
    # are more than the 16 MiB the server grants up front, per stream and per connection:
    # both sides must split messages and refill windows for this to complete.
    def digest_and_mirror(requests, context):
        for message in requests:
            yield hashlib.sha256(message).digest()
            yield message[::-1]

    served = serve({ECHO: raw_stream(digest_and_mirror)}, options=UNLIMITED)
    sent = [os.urandom(5 * 1024 * 1024 + extra) for extra in (0, 3, 1, 7)]
    got = list(served.stream(ECHO)(iter(sent), timeout=30))
    assert len(got) == 2 * len(sent)
    for i, message in enumerate(sent):
        assert got[2 * i] == hashlib.sha256(message).digest()
        assert got[2 * i + 1] == message[::-1]


def test_empty_messages_are_messages(serve):
    served = serve({ECHO: raw_stream(echo_stream)})
    sent = [b"", b"x", b"", b"", b"yz", b""]
    assert list(served.stream(ECHO)(iter(sent), timeout=5)) == sent


def test_protobuf_packets_both_ways(serve):
    packet = fsutil_types_pb2.Packet

    def ack_each(requests, context):
        for p in requests:
            yield packet(type=p.type, ID=p.ID + 1, data=p.data.upper())

    handler = grpc.stream_stream_rpc_method_handler(
        ack_each, request_deserializer=packet.FromString,
        response_serializer=packet.SerializeToString)
    served = serve({ECHO: handler})
    call = served.stream(ECHO, request_serializer=packet.SerializeToString,
                         response_deserializer=packet.FromString)
    sent = [packet(type=packet.PACKET_DATA, ID=i, data=b"file-%d" % i) for i in range(50)]
    got = list(call(iter(sent), timeout=10))
    assert [(p.type, p.ID, p.data) for p in got] == \
        [(packet.PACKET_DATA, i + 1, b"FILE-%d" % i) for i in range(50)]


def test_50_mb_to_a_slow_reader_arrives_intact(serve):
    # The session's exports and file transfers stream 64 KiB chunks; a reader that stalls
    # (the daemon busy writing to disk) fills every window, and the sender must wait for
    # WINDOW_UPDATEs, not drop or reorder data, and not deadlock.
    blob = os.urandom(50 * 1000 * 1000)
    chunk = 64 * 1024

    def produce(requests, context):
        next(requests)
        for at in range(0, len(blob), chunk):
            yield blob[at:at + chunk]

    served = serve({ECHO: raw_stream(produce)})
    digest, size = hashlib.sha256(), 0
    for i, message in enumerate(served.stream(ECHO)(iter([b"go"]), timeout=60)):
        if i < 5:
            time.sleep(0.3)
        digest.update(message)
        size += len(message)
    assert size == len(blob)
    assert digest.digest() == hashlib.sha256(blob).digest()


def test_request_iterator_ends_at_the_clients_half_close_and_the_handler_answers_after(serve):
    # FileSend/FileSync DiffCopy: the handler reads until the client's FIN (END_STREAM),
    # then answers. The iterator must not end early (before FIN) nor hang after it, and the
    # server must still be able to send once the client has stopped sending.
    received_three = threading.Event()

    def read_to_fin_then_answer(requests, context):
        got = []
        for message in requests:
            got.append(message)
            if len(got) == 3:
                received_three.set()
        yield b"fin-ack:" + b",".join(got)
        yield b"after-fin"

    served = serve({ECHO: raw_stream(read_to_fin_then_answer)})
    outgoing: queue.Queue[bytes | None] = queue.Queue()

    def requests():
        while (message := outgoing.get()) is not None:
            yield message

    responses = served.stream(ECHO)(requests(), timeout=10)
    for message in (b"a", b"b", b"c"):
        outgoing.put(message)
    assert received_three.wait(5)
    got: queue.Queue = queue.Queue()
    reader = threading.Thread(target=lambda: got.put(list(responses)), daemon=True)
    reader.start()
    time.sleep(0.3)
    assert got.empty(), "the handler's request iterator ended before the client's FIN"
    outgoing.put(None)  # the client half-closes
    assert got.get(timeout=5) == [b"fin-ack:a,b,c", b"after-fin"]
    assert responses.code() == grpc.StatusCode.OK


def test_a_handler_that_reads_slowly_holds_the_sender_back(serve):
    # FileSend: the daemon streams an export and the handler writes it to disk. If the disk is
    # slower than the socket, flow control must make the sender wait instead of the session
    # buffering the whole export in memory: the windows are refilled as the handler consumes.
    # (Against grpcio's own server this client gets ~4 MiB ahead.)
    chunk, total = 64 * 1024, 1600  # 100 MiB
    release = threading.Event()
    digest_in, digest_out = hashlib.sha256(), hashlib.sha256()

    def slow_sink(requests, context):
        release.wait(20)
        size = 0
        for message in requests:
            digest_in.update(message)
            size += len(message)
        yield b"%d" % size

    def upload():
        for i in range(total):
            message = i.to_bytes(4, "big") * (chunk // 4)
            digest_out.update(message)
            yield message

    served = serve({ECHO: raw_stream(slow_sink)})
    pulled = Pulled()
    responses = served.stream(ECHO)(pulled.counting(upload()), timeout=40)
    pulled.wait_stalled(quiet=0.5)  # the handler consumes nothing meanwhile
    ahead_mib = pulled.count * chunk / 2**20
    release.set()
    assert list(responses) == [b"%d" % (total * chunk)]
    assert digest_in.digest() == digest_out.digest()
    assert ahead_mib < 48, f"{ahead_mib:.0f} MiB was sent to a handler that had read none of it"
