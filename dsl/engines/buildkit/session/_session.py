"""A BuildKit session: what the client serves to the daemon during a build.

The daemon reaches back to the client for build-context files (FileSync), registry
credentials (Auth), secrets, and exports (FileSend). It does so as a gRPC *client* over a
connection the client opened: a hijacked ``POST /session`` on dockerd, served directly, or a
``Control.Session`` byte stream on buildkitd, tunnelled to one end of a socket pair. Either way
the session's gRPC server is ours (``_h2.py``; the method table is ``_server.py``'s).
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import grpc

from dsl.engines.buildkit._hijack import open_upgraded
from dsl.engines.buildkit.protos import auth_pb2, filesync_pb2, health_pb2, secrets_pb2
from dsl.engines.buildkit.session import _server as srv
from dsl.engines.buildkit.session._auth import DockerCredentials
from dsl.engines.buildkit.session._filesend import DirectoryExport, FileExport
from dsl.engines.buildkit.session._filesync import FileSyncService, SyncedDir, Transfer
from dsl.engines.buildkit.session._h2 import GrpcConnection
from dsl.engines.buildkit.session._patterns import PatternSet, read_ignore_file
from dsl.errors import EngineError, UsageError

CONTEXT = "context"
CONTROL_SESSION = "/moby.buildkit.v1.Control/Session"
_HEADER = "X-Docker-Expose-Session-"
_CHUNK = 64 * 1024

LocalDir = SyncedDir | tuple[str, tuple[str, ...] | list[str], tuple[str, ...] | list[str]]


class Session:
    """The session a build runs with; a context manager (``close`` on exit).

    Args:
        context_dir: the build context, served as ``local://context``; its ``.dslignore``
            (else ``.dockerignore``) is applied.
        local_dirs: more directories, name → ``SyncedDir`` or ``(path, include, exclude)``.
        secrets: secret id → host file, for ``RUN --mount=type=secret``.
        docker_config_dir: where ``config.json`` is (default ``$DOCKER_CONFIG`` or
            ``~/.docker``), for registry credentials.
        exporter_sink: a :class:`DirectoryExport` (``local`` exporter) or :class:`FileExport`
            (``tar``/``oci``) receiving the result.
        name: shown by the daemon in its logs.

    Raises:
        UsageError: a directory or secret file does not exist, or an ignore pattern is invalid.

    Attributes:
        id: random; goes in ``SolveRequest.Session``, never in LLB (so it can't bust the cache).
        shared_key: stable per context directory and machine, so the daemon diffs this sync
            against the previous one and only changed files are sent.
        methods: the gRPC methods offered (the daemon only calls these).
    """

    def __init__(
        self,
        *,
        context_dir: str | os.PathLike[str] | None = None,
        local_dirs: Mapping[str, LocalDir] | None = None,
        secrets: Mapping[str, str | os.PathLike[str]] | None = None,
        docker_config_dir: str | None = None,
        exporter_sink: DirectoryExport | FileExport | None = None,
        name: str = "envdsl",
    ) -> None:
        self.id = uuid.uuid4().hex
        self.name = name
        dirs: dict[str, SyncedDir] = {}
        if context_dir is not None:
            path = _existing_dir(context_dir, "build context")
            dirs[CONTEXT] = SyncedDir(path, excludes=tuple(read_ignore_file(path)))
        for dir_name, spec in (local_dirs or {}).items():
            dirs[dir_name] = _synced_dir(dir_name, spec)
        self.shared_key = _shared_key(dirs[CONTEXT].path if CONTEXT in dirs else "")
        self.secrets = {sid: _existing_file(p, f"secret {sid!r}") for sid, p in (secrets or {}).items()}
        self.exporter_sink = exporter_sink
        self.filesync = FileSyncService(dirs)
        self._table = self._method_table(DockerCredentials(docker_config_dir))
        self.methods: tuple[str, ...] = tuple(sorted(self._table))
        self._conn: GrpcConnection | None = None
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._call: grpc.Future | None = None

    def _method_table(self, credentials: DockerCredentials) -> dict[str, grpc.RpcMethodHandler]:
        table = {
            srv.HEALTH_CHECK: srv.unary(srv.health_check, health_pb2.HealthCheckRequest,
                                        health_pb2.HealthCheckResponse),
            srv.AUTH_CREDENTIALS: srv.unary(srv.RegistryAuth(credentials).credentials,
                                            auth_pb2.CredentialsRequest,
                                            auth_pb2.CredentialsResponse),
        }
        if self.filesync.dirs:
            table[srv.FILESYNC_DIFFCOPY] = srv.packet_stream(self.filesync.diff_copy)
        if self.secrets:
            table[srv.SECRETS_GET] = srv.unary(srv.SecretFiles(self.secrets).get_secret,
                                               secrets_pb2.GetSecretRequest,
                                               secrets_pb2.GetSecretResponse)
        if self.exporter_sink is not None:
            table[srv.FILESEND_DIFFCOPY] = srv.raw_stream(self.exporter_sink.receive)
        return table

    @property
    def transfers(self) -> dict[str, Transfer]:
        """Per synced directory: syncs, files announced, files and bytes sent so far."""
        return self.filesync.transfers

    def headers(self) -> list[tuple[str, str]]:
        """The session description: HTTP headers for ``/session`` (lowercase them for gRPC)."""
        out = [(_HEADER + "Uuid", self.id), (_HEADER + "Name", self.name),
               (_HEADER + "Sharedkey", self.shared_key)]
        out += [(_HEADER + "Grpc-Method", method) for method in self.methods]
        return out

    def attach_docker(self, docker_host: str, *, timeout: float = 10.0) -> None:
        """Open the session on a Docker engine (``POST /session``) and start serving.

        Args:
            docker_host: the engine address (``unix://…`` or ``tcp://…``).
            timeout: seconds for connecting and for the upgrade answer.

        Raises:
            EngineUnavailable, EngineError: the engine cannot be reached or refused.
        """
        self._attach_socket(open_upgraded(docker_host, "/session", self.headers(), timeout=timeout))

    def attach(self, builder: Any) -> None:
        """Open the session on a connected ``Builder`` the way it takes sessions: ``POST
        /session`` on dockerd, ``Control.Session`` on a standalone buildkitd.

        Args:
            builder: a ``dsl.engines.buildkit`` Builder (``is_dockerd``,
                ``open_session_socket``, ``channel``).
        """
        if builder.is_dockerd:
            self._attach_socket(builder.open_session_socket(self.headers()))
        else:
            self.attach_control(builder.channel)

    def _attach_socket(self, upstream: socket.socket) -> None:
        self._sockets.append(upstream)
        self._serve(upstream)

    def attach_control(self, channel: grpc.Channel) -> None:
        """Open the session as a ``Control.Session`` stream (standalone buildkitd, or dockerd's
        ``/grpc``): HTTP/2 bytes travel in ``BytesMessage.data`` both ways.

        Args:
            channel: a channel to the daemon's Control service.
        """
        ours, local = socket.socketpair()
        self._sockets += [ours, local]
        self._serve(ours)
        call = channel.stream_stream(
            CONTROL_SESSION,
            request_serializer=filesync_pb2.BytesMessage.SerializeToString,
            response_deserializer=filesync_pb2.BytesMessage.FromString,
        )
        metadata = [(key.lower(), value) for key, value in self.headers()]
        responses = call(_read_frames(local), metadata=metadata)
        self._call = responses
        pump = threading.Thread(target=_write_frames, args=(responses, local), daemon=True,
                                name="dsl-session-tunnel")
        pump.start()
        self._threads.append(pump)

    def _serve(self, sock: socket.socket) -> None:
        if self._conn is not None:
            raise EngineError("this session is already attached")
        self._conn = GrpcConnection(sock, self._table).start()

    def close(self) -> None:
        """End the session: say GOAWAY, drop the connection, wait for the serving threads."""
        if self._call is not None:
            self._call.cancel()
        if self._conn is not None:
            self._conn.close()
        for sock in self._sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        for thread in self._threads:
            thread.join(5)
        self._sockets, self._threads, self._call, self._conn = [], [], None, None

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read_frames(local: socket.socket) -> Iterator[filesync_pb2.BytesMessage]:
    """What the local server writes, as tunnel messages (ends when the socket closes)."""
    while True:
        try:
            data = local.recv(_CHUNK)
        except OSError:
            return
        if not data:
            return
        yield filesync_pb2.BytesMessage(data=data)


def _write_frames(responses: Iterator[filesync_pb2.BytesMessage], local: socket.socket) -> None:
    """What the daemon sends, into the local server; closes the socket when the stream ends."""
    try:
        for message in responses:
            local.sendall(message.data)
    except (grpc.RpcError, OSError):
        pass  # the daemon or close() ended the stream
    finally:
        try:
            local.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _synced_dir(name: str, spec: LocalDir) -> SyncedDir:
    if isinstance(spec, SyncedDir):
        path, includes, excludes = spec.path, spec.includes, spec.excludes
    else:
        path, includes, excludes = spec
    for patterns in (includes, excludes):
        PatternSet(patterns)  # raises UsageError on a malformed pattern, before the build
    return SyncedDir(_existing_dir(path, f"local directory {name!r}"), tuple(includes),
                     tuple(excludes))


def _existing_dir(path: str | os.PathLike[str], what: str) -> str:
    full = os.path.abspath(path)
    if not os.path.isdir(full):
        raise UsageError(f"{what} {os.fspath(path)!r} is not a directory")
    return full


def _existing_file(path: str | os.PathLike[str], what: str) -> str:
    full = os.path.abspath(path)
    if not os.path.isfile(full):
        raise UsageError(f"{what}: file {os.fspath(path)!r} does not exist")
    return full


def _shared_key(context_dir: str) -> str:
    """Stable for a context directory on this machine; reveals neither path nor machine."""
    try:
        with open("/etc/machine-id", encoding="ascii") as fh:
            machine = fh.read().strip()
    except OSError:
        machine = socket.gethostname()
    return hashlib.sha256(f"{machine}\0{os.path.realpath(context_dir)}".encode()).hexdigest()
