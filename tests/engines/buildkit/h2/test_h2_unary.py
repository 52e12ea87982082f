"""Unary calls, metadata and status codes as a grpcio client (the daemon's side) sees them."""

from __future__ import annotations

import os

import grpc
import pytest

from dsl.engines.buildkit.protos import health_pb2
from tests.engines.buildkit.h2._harness import drain, echo_unary, raw_stream, raw_unary

HEALTH = "/grpc.health.v1.Health/Check"
ECHO = "/test.Echo/Unary"
SERVING = health_pb2.HealthCheckResponse.SERVING


def health_handler(seen: list) -> grpc.RpcMethodHandler:
    def check(request, context):
        seen.append((request.service, list(context.invocation_metadata())))
        return health_pb2.HealthCheckResponse(status=SERVING)

    return grpc.unary_unary_rpc_method_handler(
        check, request_deserializer=health_pb2.HealthCheckRequest.FromString,
        response_serializer=health_pb2.HealthCheckResponse.SerializeToString)


def health_stub(served):
    return served.unary(HEALTH,
                        request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
                        response_deserializer=health_pb2.HealthCheckResponse.FromString)


def test_health_check_round_trips_protobuf_messages(serve):
    seen: list = []
    served = serve({HEALTH: health_handler(seen)})
    check = health_stub(served)

    # service="" serialises to an empty message: a 0-byte request must still reach the handler
    assert check(health_pb2.HealthCheckRequest(), timeout=5).status == SERVING
    assert check(health_pb2.HealthCheckRequest(service="moby.buildkit"), timeout=5).status == SERVING
    assert [service for service, _ in seen] == ["", "moby.buildkit"]


def test_metadata_reaches_the_handler_in_order_without_pseudo_headers(serve):
    seen: list = []
    served = serve({HEALTH: health_handler(seen)})
    sent = [("dir-name", "context"),
            ("include-patterns", "src/**/*.py"),
            ("include-patterns", "docs/ read me.md"),
            ("followpaths", "a,b;c=d")]
    health_stub(served)(health_pb2.HealthCheckRequest(), metadata=sent, timeout=5)

    [(_, metadata)] = seen
    pairs = [(str(k), str(v)) for k, v in metadata]
    assert [v for k, v in pairs if k == "dir-name"] == ["context"]
    assert [v for k, v in pairs if k == "include-patterns"] == ["src/**/*.py", "docs/ read me.md"]
    assert [v for k, v in pairs if k == "followpaths"] == ["a,b;c=d"]
    assert not [k for k, _ in pairs if k.startswith(":")], pairs
    assert all(k == k.lower() for k, _ in pairs), pairs


def test_header_compression_state_survives_many_calls(serve):
    # Values change per call and are large enough to evict entries from the 4 KiB HPACK
    # dynamic table; a decoder that loses or mis-tracks its table hands the handler the
    # wrong values (or fails the connection) after a few calls.
    seen: list = []
    served = serve({HEALTH: health_handler(seen)})
    check = health_stub(served)
    for i in range(150):
        metadata = [("dir-name", f"dir-{i % 7}"), ("x-big", f"{i:04d}" + "v" * (1500 + i * 13))]
        check(health_pb2.HealthCheckRequest(service=f"s{i}"), metadata=metadata, timeout=5)
    assert len(seen) == 150
    for i, (service, metadata) in enumerate(seen):
        got = {k: v for k, v in metadata if k in ("dir-name", "x-big")}
        assert service == f"s{i}"
        assert got == {"dir-name": f"dir-{i % 7}", "x-big": f"{i:04d}" + "v" * (1500 + i * 13)}


def test_raw_bytes_unary_echo_including_empty_and_large(serve):
    served = serve({ECHO: raw_unary(echo_unary)})
    echo = served.unary(ECHO)
    big = bytes(range(256)) * 1024  # 256 KiB: several DATA frames, more than a 64 KiB window
    assert echo(b"", timeout=5) == b""
    assert echo(b"hello", timeout=5) == b"hello"
    assert echo(big, timeout=10) == big


ABORT_DETAILS = [
    "Zugriff verweigert: «geheim» — 100% sicher ✓ (literal %41 and a lone %)",
    "registry.example: no credentials\nhint: run `docker login registry.example`",
]


@pytest.mark.parametrize("details", ABORT_DETAILS, ids=["non-ascii-percent", "two-lines"])
def test_unary_abort_reaches_the_client_with_exact_code_and_details(serve, details):
    def deny(request, context):
        context.abort(grpc.StatusCode.PERMISSION_DENIED, details)

    served = serve({ECHO: raw_unary(deny)})
    with pytest.raises(grpc.RpcError) as info:
        served.unary(ECHO)(b"x", timeout=5)
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert info.value.details() == details


@pytest.mark.parametrize("details", ABORT_DETAILS, ids=["non-ascii-percent", "two-lines"])
def test_stream_abort_after_some_messages_keeps_them_and_the_status(serve, details):
    def fail_midway(requests, context):
        yield b"one"
        yield b"two"
        context.abort(grpc.StatusCode.NOT_FOUND, details)

    served = serve({ECHO: raw_stream(fail_midway)})
    got, error = drain(served.stream(ECHO)(iter([b"go"]), timeout=5))
    assert got == [b"one", b"two"]
    assert error is not None and error.code() == grpc.StatusCode.NOT_FOUND
    assert error.details() == details


def test_unknown_method_is_unimplemented_and_the_connection_keeps_serving(serve):
    seen: list = []
    served = serve({HEALTH: health_handler(seen)})
    with pytest.raises(grpc.RpcError) as info:
        served.unary("/moby.filesync.v1.Auth/FetchToken")(b"", timeout=5)
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
    with pytest.raises(grpc.RpcError) as info:
        list(served.stream("/moby.filesync.v1.FileSend/DiffCopy")(iter([b"x"]), timeout=5))
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert health_stub(served)(health_pb2.HealthCheckRequest(), timeout=5).status == SERVING


def test_handler_exception_is_unknown_and_the_connection_keeps_serving(serve):
    def broken(request, context):
        raise ValueError("handler bug")

    def broken_stream(requests, context):
        yield b"partial"
        raise RuntimeError("stream handler bug")

    seen: list = []
    served = serve({ECHO: raw_unary(broken), "/test.Echo/Stream": raw_stream(broken_stream),
                    HEALTH: health_handler(seen)})
    with pytest.raises(grpc.RpcError) as info:
        served.unary(ECHO)(b"x", timeout=5)
    assert info.value.code() == grpc.StatusCode.UNKNOWN
    got, error = drain(served.stream("/test.Echo/Stream")(iter([b"x"]), timeout=5))
    assert got == [b"partial"]
    assert error is not None and error.code() == grpc.StatusCode.UNKNOWN
    assert health_stub(served)(health_pb2.HealthCheckRequest(), timeout=5).status == SERVING


def test_large_metadata_reaches_the_handler(serve):
    # A FileSync request carries every include/exclude pattern as a metadata value.
    seen: list = []
    served = serve({HEALTH: health_handler(seen)})
    patterns = [f"src/module_{i:04d}/**/*.{'py' if i % 2 else 'pyi'}" for i in range(3000)]
    metadata = [("dir-name", "context")] + [("include-patterns", p) for p in patterns]
    health_stub(served)(health_pb2.HealthCheckRequest(), metadata=metadata, timeout=10)
    [(_, got)] = seen
    assert [v for k, v in got if k == "include-patterns"] == patterns


def test_long_error_details_reach_the_client(serve):
    # A ~60 KB status message (a list of missing files): larger than a default frame, and
    # than grpcio's default metadata limit, which the daemon's Go client does not have.
    # (Splitting it for a 16 KiB-frame client is test_h2_frames'.)
    details = "missing files: " + " ".join(f"ü{i:05x}{os.urandom(4).hex()}" for i in range(4000))

    def deny(request, context):
        context.abort(grpc.StatusCode.FAILED_PRECONDITION, details)

    served = serve({ECHO: raw_unary(deny)},
                   options=(("grpc.max_metadata_size", 1 << 20),
                            ("grpc.absolute_max_metadata_size", 1 << 20)))
    with pytest.raises(grpc.RpcError) as info:
        served.unary(ECHO)(b"x", timeout=5)
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert info.value.details() == details
