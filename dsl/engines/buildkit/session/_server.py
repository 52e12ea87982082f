"""The session's gRPC methods: their paths and grpcio method handlers.

BuildKit dials the session as a gRPC client; ``_h2.GrpcConnection`` serves these handlers on
the session's connection. Methods are served under their real paths by generic handlers,
because the message protos live in a private package (see the protos).
"""

from __future__ import annotations

from collections.abc import Callable

import grpc

from dsl.engines.buildkit.protos import auth_pb2, fsutil_types_pb2, health_pb2, secrets_pb2
from dsl.engines.buildkit.session._auth import DockerCredentials
from dsl.errors import EngineError

HEALTH_CHECK = "/grpc.health.v1.Health/Check"
FILESYNC_DIFFCOPY = "/moby.filesync.v1.FileSync/DiffCopy"
FILESEND_DIFFCOPY = "/moby.filesync.v1.FileSend/DiffCopy"
AUTH_CREDENTIALS = "/moby.filesync.v1.Auth/Credentials"
SECRETS_GET = "/moby.buildkit.secrets.v1.Secrets/GetSecret"


def health_check(request: health_pb2.HealthCheckRequest,
                 context: grpc.ServicerContext) -> health_pb2.HealthCheckResponse:
    """``Health/Check``: the daemon drops the session if this stops answering (1 s period)."""
    return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


class SecretFiles:
    """``Secrets/GetSecret``: serves only the declared secret files, read when asked.

    Args:
        files: secret id → host file path.
    """

    def __init__(self, files: dict[str, str]) -> None:
        self.files = files

    def get_secret(self, request: secrets_pb2.GetSecretRequest,
                   context: grpc.ServicerContext) -> secrets_pb2.GetSecretResponse:
        path = self.files.get(request.ID)
        if path is None:
            context.abort(grpc.StatusCode.NOT_FOUND,
                          f"secret {request.ID!r} is not provided by this build")
        try:
            with open(path, "rb") as fh:
                return secrets_pb2.GetSecretResponse(data=fh.read())
        except OSError as exc:
            context.abort(grpc.StatusCode.NOT_FOUND,
                          f"secret {request.ID!r}: cannot read its file: {exc.strerror or exc}")


class RegistryAuth:
    """``Auth/Credentials`` from the user's Docker config. ``FetchToken`` and the token
    authority methods are not offered, so the daemon fetches tokens itself with these
    credentials (BuildKit treats their absence as "not implemented", which is supported)."""

    def __init__(self, resolver: DockerCredentials) -> None:
        self.resolver = resolver

    def credentials(self, request: auth_pb2.CredentialsRequest,
                    context: grpc.ServicerContext) -> auth_pb2.CredentialsResponse:
        try:
            found = self.resolver.lookup(request.Host)
        except EngineError as exc:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, exc.format())
        return auth_pb2.CredentialsResponse(Username=found.username, Secret=found.secret)


def unary(fn: Callable, request_type: type, response_type: type) -> grpc.RpcMethodHandler:
    """A unary handler with protobuf (de)serialisation."""
    return grpc.unary_unary_rpc_method_handler(
        fn, request_deserializer=request_type.FromString,
        response_serializer=response_type.SerializeToString)


def packet_stream(fn: Callable) -> grpc.RpcMethodHandler:
    """A bidi handler streaming fsutil packets both ways."""
    return grpc.stream_stream_rpc_method_handler(
        fn, request_deserializer=fsutil_types_pb2.Packet.FromString,
        response_serializer=fsutil_types_pb2.Packet.SerializeToString)


def raw_stream(fn: Callable) -> grpc.RpcMethodHandler:
    """A bidi handler seeing undecoded message bytes (FileSend carries two message types)."""
    return grpc.stream_stream_rpc_method_handler(fn)
