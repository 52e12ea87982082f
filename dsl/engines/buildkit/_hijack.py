"""Raw sockets to the Docker Engine API: the HTTP/1.1 upgrade ("hijack") and a byte pump.

dockerd serves BuildKit's gRPC services behind ``POST /grpc`` and takes client sessions on
``POST /session``; both answer ``101 Switching Protocols`` and then speak HTTP/2 on the raw
connection. dockerd ignores anything it buffered before the hijack, and on ``/grpc`` it starts
HTTP/2 (its SETTINGS frame) right after the 101, so the response headers are read exactly —
never a byte past them — and the socket is handed over with the HTTP/2 bytes still unread.

grpcio cannot run over a socket we own, so :class:`UnixForwarder` listens on a private unix
socket and, per accepted connection, opens a fresh upgraded connection and pumps bytes both
ways; grpcio then dials ``unix:<path>`` as if the daemon were local.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import tempfile
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from dsl.errors import EngineError, EngineUnavailable, UsageError

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
_MAX_HEADER_BYTES = 64 * 1024
_START_HINT = "start dockerd (or Docker Desktop), or point DOCKER_HOST at a running engine"


def docker_host_from_env() -> str:
    """The Docker engine address the user chose: ``$DOCKER_HOST`` or the default socket."""
    return os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST


def connect_docker(docker_host: str, *, timeout: float) -> socket.socket:
    """Open a plain (or TLS, per ``DOCKER_TLS_VERIFY``/``DOCKER_CERT_PATH``) stream to dockerd.

    Args:
        docker_host: ``unix:///path`` or ``tcp://host:port`` (``http://`` is accepted too).
        timeout: seconds allowed for connecting.

    Returns:
        A connected socket with ``timeout`` set.

    Raises:
        EngineUnavailable: the engine cannot be reached; the message names the address.
        UsageError: the address has an unsupported scheme.
    """
    url = urlsplit(docker_host)
    try:
        if url.scheme == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(url.path)
            return sock
        if url.scheme in ("tcp", "http", "https"):
            port = url.port or (2376 if _tls_wanted(url.scheme) else 2375)
            sock = socket.create_connection((url.hostname or "localhost", port), timeout=timeout)
            if _tls_wanted(url.scheme):
                sock = _tls_context().wrap_socket(sock, server_hostname=url.hostname)
            return sock
    except FileNotFoundError as exc:
        raise EngineUnavailable(
            f"cannot reach the Docker engine at {docker_host}: no such socket", hint=_START_HINT
        ) from exc
    except OSError as exc:  # ssl.SSLError is an OSError too
        reason = exc.strerror or str(exc)
        raise EngineUnavailable(
            f"cannot reach the Docker engine at {docker_host}: {reason}", hint=_START_HINT
        ) from exc
    raise UsageError(  # the user's input (DOCKER_HOST), like a bad --builder: exit 2
        f"unsupported Docker host address {docker_host!r}",
        hint="use unix:///path/to/docker.sock or tcp://host:port",
    )


def _tls_wanted(scheme: str) -> bool:
    return scheme == "https" or os.environ.get("DOCKER_TLS_VERIFY", "") not in ("", "0")


def _tls_context() -> Any:
    import ssl  # only a TLS engine pays for it (~5 ms of start-up)

    cert_path = os.environ.get("DOCKER_CERT_PATH") or os.path.expanduser("~/.docker")
    ctx = ssl.create_default_context(cafile=os.path.join(cert_path, "ca.pem"))
    ctx.load_cert_chain(os.path.join(cert_path, "cert.pem"), os.path.join(cert_path, "key.pem"))
    return ctx


def open_upgraded(
    docker_host: str,
    path: str,
    headers: list[tuple[str, str]],
    *,
    timeout: float,
    upgrade: str = "h2c",
    body: bytes = b"",
) -> socket.socket:
    """``POST path`` with ``Upgrade: h2c`` and return the hijacked socket after the 101.

    Args:
        docker_host: the engine address (see :func:`connect_docker`).
        path: the API path, e.g. ``/grpc`` or ``/session``.
        headers: extra request headers; a name may repeat (session methods do).
        timeout: seconds for connecting and for the response headers.
        upgrade: the ``Upgrade`` protocol (``h2c`` for BuildKit, ``tcp`` for exec attach).
        body: an optional JSON request body (exec start).

    Returns:
        A blocking socket positioned at the first byte after the response headers.

    Raises:
        EngineUnavailable: the engine cannot be reached, or closed the connection.
        EngineError: the engine answered something other than ``101 Switching Protocols``.
    """
    sock = connect_docker(docker_host, timeout=timeout)
    try:
        lines = [
            f"POST {path} HTTP/1.1",
            "Host: docker",
            "Connection: Upgrade",
            f"Upgrade: {upgrade}",
            f"Content-Length: {len(body)}",
        ]
        if body:
            lines.append("Content-Type: application/json")
        lines += [f"{name}: {value}" for name, value in headers]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        head = _read_head(sock)
        status_line, _, rest = head.partition("\r\n")
        parts = status_line.split(" ", 2)
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        if status != 101:
            detail = _read_error_body(sock, rest)
            raise EngineError(
                f"Docker engine at {docker_host} refused {path}: HTTP {status} {detail}".rstrip(),
                hint="the engine may be too old or have BuildKit disabled (needs API >= 1.31)",
            )
        sock.settimeout(None)
        return sock
    except socket.timeout as exc:
        sock.close()
        raise EngineUnavailable(
            f"the Docker engine at {docker_host} did not answer {path} within {timeout:g}s",
            hint=_START_HINT,
        ) from exc
    except OSError as exc:
        sock.close()
        raise EngineUnavailable(
            f"lost the connection to the Docker engine at {docker_host}: {exc}", hint=_START_HINT
        ) from exc
    except BaseException:
        sock.close()
        raise


def _read_head(sock: socket.socket) -> str:
    """Read exactly the response status line and headers, leaving what follows unread."""
    buf = b""
    ssl = sys.modules.get("ssl")  # never imported: the socket cannot be a TLS one
    peek_ok = ssl is None or not isinstance(sock, ssl.SSLSocket)
    while b"\r\n\r\n" not in buf:
        if len(buf) > _MAX_HEADER_BYTES:
            raise OSError("response headers too large")
        if peek_ok:
            # Peek, then consume only up to the end of the headers.
            chunk = sock.recv(4096, socket.MSG_PEEK)
            if not chunk:
                raise OSError("connection closed before the response headers")
            seen = buf + chunk
            end = seen.find(b"\r\n\r\n")
            take = len(chunk) if end < 0 else end + 4 - len(buf)
            buf += _recv_exactly(sock, take)
        else:
            # TLS: one byte at a time; the rest stays decrypted in the SSL object.
            byte = sock.recv(1)
            if not byte:
                raise OSError("connection closed before the response headers")
            buf += byte
    return buf.decode("latin-1")


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise OSError("connection closed while reading the response headers")
        out += chunk
    return out


def _read_error_body(sock: socket.socket, header_text: str) -> str:
    """Best effort: the JSON ``message`` (or text) of an error response."""
    length = 0
    for line in header_text.split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length" and value.strip().isdigit():
            length = int(value.strip())
    if not length:
        return ""
    try:
        raw = _recv_exactly(sock, min(length, 8192)).decode("utf-8", "replace")
    except OSError:
        return ""
    import json

    try:
        return str(json.loads(raw).get("message", raw)).strip()
    except (ValueError, AttributeError):
        return raw.strip()


def bridge(
    a: socket.socket, b: socket.socket, *, decode_b: Callable[[bytes], bytes] | None = None
) -> threading.Thread:
    """Pump bytes between two sockets until either side ends, then close both.

    Args:
        a: one connected socket.
        b: the other.
        decode_b: optional transform of the bytes read from ``b`` before they go to ``a``
            (e.g. demultiplexing a Docker exec stream).

    Returns:
        The (daemon) thread pumping ``b → a``; ``a → b`` runs on a second daemon thread.
        Join the returned thread to wait until the bridge has closed.
    """
    done = threading.Event()

    def close_both() -> None:
        if done.is_set():
            return
        done.set()
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def pump(src: socket.socket, dst: socket.socket, decode: Callable[[bytes], bytes] | None) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if decode is not None:
                    data = decode(data)
                if data:
                    dst.sendall(data)
        except OSError:
            pass
        finally:
            close_both()

    threading.Thread(target=pump, args=(a, b, None), daemon=True, name="bridge-a-b").start()
    back = threading.Thread(target=pump, args=(b, a, decode_b), daemon=True, name="bridge-b-a")
    back.start()
    return back


class UnixForwarder:
    """A private unix socket whose every connection is bridged to a freshly opened upstream.

    ``open_upstream`` is called once per accepted connection (on the accepting thread) and
    returns the socket to bridge to, e.g. ``lambda: open_upgraded(host, "/grpc", [], ...)``.
    Use as a context manager, or call :meth:`close`; the socket lives in a private temporary
    directory that is removed on close.
    """

    def __init__(self, open_upstream: Callable[[], socket.socket]) -> None:
        self._open_upstream = open_upstream
        self._dir = tempfile.mkdtemp(prefix="dsl-bk-")
        self.path = os.path.join(self._dir, "s")
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(self.path)
        self._listener.listen(16)
        self._closed = False
        self.last_error: BaseException | None = None
        self._thread = threading.Thread(target=self._accept_loop, daemon=True, name="forwarder")
        self._thread.start()

    @property
    def target(self) -> str:
        """The grpcio target string for this forwarder."""
        return f"unix:{self.path}"

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = self._open_upstream()
            except Exception as exc:  # noqa: BLE001 - the gRPC client sees a dropped connection
                # grpcio only reports UNAVAILABLE; keep the real reason for the caller's error.
                self.last_error = exc
                conn.close()
                continue
            bridge(conn, upstream)

    def close(self) -> None:
        """Stop accepting and remove the socket directory (open bridges end with their peers)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> UnixForwarder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
