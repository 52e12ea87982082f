"""What the warm client's front and server agree on: where the socket is, and how they talk.

Imported by every ``dsl`` start, so it imports only what the interpreter has loaded anyway
(plus ``socket``, ``json`` and ``binascii``, ~5 ms together).

One request: a 4-byte big-endian length, then that many bytes of JSON (:func:`send_request`),
sent with the caller's stdin, stdout and stderr as ``SCM_RIGHTS``. The answers are JSON lines:
``{"pid": N}`` when the command starts, ``{"exit": CODE}`` when it ends, or ``{"refused":
REASON}`` instead of both (the caller then runs the command itself).
"""

from __future__ import annotations

import binascii
import json
import os
import socket
import stat
import sys

_HEADER = 4
MAX_REQUEST = 1 << 20  # an environment of a few KB; anything near this is not ours


def _package_dir() -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def search_path() -> list[str]:
    """The module search path without the entry of how we were started (the script's or the
    working directory), which differs between a caller and its server but not what it finds."""
    return list(sys.path) if sys.flags.safe_path else sys.path[1:]


def identity(path: list[str]) -> str:
    """What a server must share with its caller to run the caller's command: the interpreter,
    the ``dsl`` package it runs from, and the module search path."""
    return "\0".join((sys.executable, _package_dir(), *path))


def runtime_dir() -> str:
    """``$XDG_RUNTIME_DIR/envdsl`` (the user's own tmpfs), else ``/tmp/envdsl-UID``."""
    base = os.environ.get("XDG_RUNTIME_DIR", "")
    if os.path.isabs(base):
        return os.path.join(base, "envdsl")
    return f"/tmp/envdsl-{os.getuid()}"


def private_dir(create: bool) -> str | None:
    """The runtime directory if it is ours alone (a real directory, our uid, mode 0700).

    Anything else (another user's directory planted in /tmp, a symlink, a wider mode) means
    no warm client at all: a socket there could hand our terminal to someone else's process.
    """
    path = runtime_dir()
    if create:
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        except OSError:
            return None
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        return None
    return path


def socket_path(directory: str, ident: str) -> str:
    """The socket of the server for ``ident`` (the full identity is checked on every request)."""
    return os.path.join(directory, f"dsl-{binascii.crc32(ident.encode()):08x}.sock")


def send_request(sock: socket.socket, request: dict, fds: list[int]) -> None:
    body = json.dumps(request).encode()
    socket.send_fds(sock, [len(body).to_bytes(_HEADER, "big") + body], fds)


def recv_request(sock: socket.socket) -> tuple[dict, list[int]]:
    """The request and the descriptors that came with it.

    Raises:
        ValueError: not a request of ours (truncated, oversized, not JSON).
    """
    data, fds, _flags, _addr = socket.recv_fds(sock, 65536, 3)
    try:
        if len(data) < _HEADER:
            raise ValueError("a truncated request")
        size = int.from_bytes(data[:_HEADER], "big")
        if size > MAX_REQUEST:
            raise ValueError(f"a request of {size} bytes")
        body = bytearray(data[_HEADER:])
        while len(body) < size:
            chunk = sock.recv(size - len(body))
            if not chunk:
                raise ValueError("a truncated request")
            body += chunk
        return json.loads(body), fds
    except ValueError:
        for fd in fds:
            os.close(fd)
        raise


def send_answer(sock: socket.socket, **answer: object) -> None:
    sock.sendall(json.dumps(answer).encode() + b"\n")


class Answers:
    """The server's JSON lines, read one at a time (None at end of stream)."""

    def __init__(self, sock: socket.socket) -> None:
        self._file = sock.makefile("rb")

    def next(self) -> dict | None:
        line = self._file.readline()
        return json.loads(line) if line else None


def servers(directory: str) -> list[str]:
    """The sockets of the servers in ``directory`` (each may have exited since)."""
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    return [os.path.join(directory, n) for n in names if n.startswith("dsl-") and n.endswith(".sock")]


def ask(path: str, kind: str) -> dict | None:
    """One control request (``status``, ``stop``) to the server at ``path``; None if none answers."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as sock:
        sock.settimeout(5.0)
        try:
            sock.connect(path)
            send_request(sock, {"kind": kind}, [])
            return Answers(sock).next()
        except (OSError, ValueError):
            return None
