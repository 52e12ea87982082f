"""The session's gRPC server: the method table and a grpcio server on a private unix socket.

BuildKit dials the session as a gRPC client, so the session runs an ordinary ``grpc.server``;
the transport (a hijacked ``/session`` connection or a ``Control.Session`` stream) is bridged to
a client connection to that server's unix socket. Methods are served by generic handlers under
their real paths, because the message protos live in a private package (see the protos).
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import grpc

from dsl.engines.buildkit.protos import auth_pb2, fsutil_types_pb2, health_pb2, secrets_pb2
from dsl.engines.buildkit.session._auth import DockerCredentials
from dsl.errors import EngineError

HEALTH_CHECK = "/grpc.health.v1.Health/Check"
FILESYNC_DIFFCOPY = "/moby.filesync.v1.FileSync/DiffCopy"
FILESEND_DIFFCOPY = "/moby.filesync.v1.FileSend/DiffCopy"
AUTH_CREDENTIALS = "/moby.filesync.v1.Auth/Credentials"
SECRETS_GET = "/moby.buildkit.secrets.v1.Secrets/GetSecret"

_MAX_WORKERS = 32  # each open stream (a DiffCopy per directory, an export) holds a thread


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


class _Table(grpc.GenericRpcHandler):
    def __init__(self, table: dict[str, grpc.RpcMethodHandler]) -> None:
        self.table = table

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        return self.table.get(handler_call_details.method)


class UnixGrpcServer:
    """A grpcio server on a unix socket in a private temporary directory.

    Args:
        table: method path → handler; nothing else is served.
    """

    def __init__(self, table: dict[str, grpc.RpcMethodHandler]) -> None:
        self._dir = tempfile.mkdtemp(prefix="dsl-session-")
        self.path = os.path.join(self._dir, "grpc.sock")
        self._executor = ThreadPoolExecutor(_MAX_WORKERS, thread_name_prefix="dsl-session")
        self._server = grpc.server(self._executor, handlers=[_Table(table)])
        try:
            self._server.add_insecure_port(f"unix:{self.path}")
            self._server.start()
        except BaseException:
            self.stop()
            raise

    def connect(self) -> socket.socket:
        """A new raw connection to the server (one HTTP/2 client connection's worth)."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(self.path)
        return sock

    def stop(self) -> None:
        """Cancel running calls, stop the threads and remove the socket directory."""
        self._server.stop(grace=None).wait(5)
        self._executor.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(self._dir, ignore_errors=True)
