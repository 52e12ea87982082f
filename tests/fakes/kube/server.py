"""HTTP for the fake API server: a threaded server on 127.0.0.1, a route table that each
concern's module fills (discovery, OpenAPI, REST resources; streams later), and the
request/response plumbing.

A route is a method set, a path regex and a handler ``handler(request, match)`` returning a
``Response`` (JSON body) or a ``Stream`` (chunked JSON lines, for watches). Handlers raise
``ApiError`` for failures; the server turns it into the ``Status`` body and code.
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

from .status import ApiError, method_not_allowed, page_not_found


@dataclasses.dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: Any  # email.message.Message: case-insensitive .get()
    body: bytes
    stopping: threading.Event

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


Handler = Callable[[Request, "re.Match[str]"], "Response | Stream"]


class Router:
    def __init__(self) -> None:
        self._routes: list[tuple[frozenset[str], re.Pattern[str], Handler]] = []

    def add(self, methods: str, pattern: str, handler: Handler) -> None:
        """Register ``handler`` for the space-separated ``methods`` on paths matching ``pattern``."""
        self._routes.append((frozenset(methods.split()), re.compile(pattern + r"\Z"), handler))

    def dispatch(self, request: Request) -> Response | Stream:
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
            query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query, keep_blank_values=True).items()}
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            request = Request(self.command, url.path, query, self.headers, body, stopping)
            log.append(f"{self.command} {self.path}")
            try:
                result = router.dispatch(request)
            except ApiError as exc:
                result = Response(exc.status(), exc.code)
            if isinstance(result, Stream):
                self._stream(result)
            else:
                self._reply(result)

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
