"""HTTP for the fake API server: a threaded server on 127.0.0.1, a route table that each
concern's module fills (discovery, OpenAPI, REST resources; streams later), and the
request/response plumbing.

A route is a method set, a path regex and a handler ``handler(request, match)`` returning a
``Response`` (JSON body), a ``Stream`` (chunked: JSON lines for watches, text for logs) or an
``Upgrade`` (a WebSocket session: exec, port-forward). Handlers raise ``ApiError`` for
failures; the server turns it into the ``Status`` body and code. ``Request.query`` keeps the
last value of each parameter; ``Request.params`` keeps them all (exec's repeated ``command``).
"""

from __future__ import annotations

import dataclasses
import http.server
import json
import re
import socket
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

from . import websocket
from .status import ApiError, method_not_allowed, page_not_found


@dataclasses.dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: Any  # email.message.Message: case-insensitive .get()
    body: bytes
    stopping: threading.Event
    params: dict[str, list[str]] = dataclasses.field(default_factory=dict)

    @property
    def content_type(self) -> str:
        return (self.headers.get("Content-Type") or "").split(";")[0].strip()

    def flag(self, name: str) -> bool:
        return self.query.get(name, "").lower() in ("true", "1")


@dataclasses.dataclass
class Response:
    body: Any
    code: int = 200
    headers: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Stream:
    """A chunked response: each item of ``chunks`` is sent as one chunk as soon as it is ready."""

    chunks: Iterator[bytes]
    content_type: str = "application/json"


@dataclasses.dataclass
class Upgrade:
    """A WebSocket endpoint: the subprotocols it takes and the session run once upgraded.

    ``session(ws)`` runs in the connection's thread and returns when the stream is over; the
    connection is closed after it."""

    protocols: tuple[websocket.ChannelProtocol, ...]
    session: Callable[[websocket.WebSocket], None]


@dataclasses.dataclass
class RawResponse:
    """A non-JSON reply (a kubelet error passed through the API server's proxy)."""

    body: bytes
    code: int
    content_type: str = "text/plain; charset=utf-8"


Handler = Callable[[Request, "re.Match[str]"], "Response | Stream | Upgrade | RawResponse"]


class Router:
    def __init__(self) -> None:
        self._routes: list[tuple[frozenset[str], re.Pattern[str], Handler]] = []

    def add(self, methods: str, pattern: str, handler: Handler) -> None:
        """Register ``handler`` for the space-separated ``methods`` on paths matching ``pattern``."""
        self._routes.append((frozenset(methods.split()), re.compile(pattern + r"\Z"), handler))

    def dispatch(self, request: Request) -> Response | Stream | Upgrade | RawResponse:
        path_matched = False
        for methods, pattern, handler in self._routes:
            match = pattern.match(request.path)
            if match is None:
                continue
            path_matched = True
            if request.method in methods:
                return handler(request, match)
        raise method_not_allowed() if path_matched else page_not_found()


def _handler_class(router: Router, stopping: threading.Event, log: list[str], open_sockets: set[Any]) -> type:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive and chunked encoding, as kubectl expects

        def setup(self) -> None:
            super().setup()
            open_sockets.add(self.connection)

        def finish(self) -> None:
            open_sockets.discard(self.connection)
            super().finish()

        def _serve(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            params = urllib.parse.parse_qs(url.query, keep_blank_values=True)
            query = {k: v[-1] for k, v in params.items()}
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            request = Request(self.command, url.path, query, self.headers, body, stopping, params)
            log.append(f"{self.command} {self.path}")
            try:
                result = router.dispatch(request)
            except ApiError as exc:
                result = Response(exc.status(), exc.code)
            if isinstance(result, Stream):
                self._stream(result)
            elif isinstance(result, Upgrade):
                self._upgrade(result)
            elif isinstance(result, RawResponse):
                self._raw(result)
            else:
                self._reply(result)

        def _raw(self, response: RawResponse) -> None:
            self.send_response(response.code)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            self.wfile.write(response.body)

        def _upgrade(self, upgrade: Upgrade) -> None:
            if not websocket.is_upgrade(self.headers):
                # a plain request to a streaming endpoint: real servers want SPDY or WebSocket
                self._reply(Response(ApiError(400, "BadRequest", "Upgrade request required").status(), 400))
                return
            try:
                protocol = websocket.negotiate(self.headers, upgrade.protocols)
            except websocket.HandshakeError as exc:
                self._raw(RawResponse(str(exc).encode(), exc.code))
                self.close_connection = True
                return
            self.send_response(101, "Switching Protocols")
            self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade")
            self.send_header("Sec-WebSocket-Accept", websocket.accept_key(self.headers["Sec-WebSocket-Key"]))
            if protocol.name:
                self.send_header("Sec-WebSocket-Protocol", protocol.name)
            self.end_headers()
            self.wfile.flush()
            ws = websocket.WebSocket(self.connection, self.rfile, protocol)
            try:
                upgrade.session(ws)
            finally:
                ws.close()
                self.close_connection = True

        def _reply(self, response: Response) -> None:
            body = response.body
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(response.code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _stream(self, stream: Stream) -> None:
            self.send_response(200)
            self.send_header("Content-Type", stream.content_type)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                for chunk in stream.chunks:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass
            finally:
                close = getattr(stream.chunks, "close", None)
                if close is not None:  # a generator: its cleanup (docker log streams) runs now
                    close()
            self.close_connection = True

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read .requests
            pass

    return Handler


class HttpServer:
    """The listening socket and its serving thread (127.0.0.1 only, an ephemeral port)."""

    def __init__(self, router: Router) -> None:
        self.stopping = threading.Event()
        self.requests: list[str] = []
        self._sockets: set[Any] = set()
        handler = _handler_class(router, self.stopping, self.requests, self._sockets)
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-kube-apiserver", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        for sock in list(self._sockets):  # idle keep-alive connections: end their threads too
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(timeout=5)
