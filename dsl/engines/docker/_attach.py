"""Attaching the terminal to a ``docker exec``: a raw TTY, or stdout/stderr demultiplexed.

The SDK hands back the hijacked connection; this module pumps bytes both ways (stdin EOF
half-closes the connection, so ``cat`` and friends see it), follows terminal resizes, and
returns when the command's output ends.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import struct
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

from dsl.engines.runner import forward_input

_CHUNK = 64 * 1024


def raw_socket(handle: Any) -> socket.socket:
    """The socket under the SDK's ``exec_start(socket=True)`` result."""
    return getattr(handle, "_sock", handle)


@contextlib.contextmanager
def raw_terminal(fd: int) -> Iterator[None]:
    """The local terminal in raw mode (keys go to the remote TTY as typed), restored after."""
    import termios
    import tty

    if not os.isatty(fd):  # --tty with stdin from a file: the remote side has the terminal
        yield
        return
    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def terminal_size() -> tuple[int, int]:
    try:
        size = os.get_terminal_size(sys.stdout.fileno())
    except OSError:  # stdout is not a terminal (forced --tty): a conventional size
        return 24, 80
    return size.lines, size.columns


@contextlib.contextmanager
def on_resize(resize: Callable[[int, int], None]) -> Iterator[None]:
    """Call ``resize(rows, cols)`` now and on every SIGWINCH."""
    def handler(*_: Any) -> None:
        with contextlib.suppress(Exception):
            resize(*terminal_size())

    previous = signal.signal(signal.SIGWINCH, handler)
    handler()
    try:
        yield
    finally:
        signal.signal(signal.SIGWINCH, previous)


def pump(sock: socket.socket, *, tty: bool, stdin_fd: int | None) -> None:
    """Copy ``stdin_fd`` → ``sock`` and ``sock`` → stdout (and stderr when not a TTY) until the
    remote side ends its output."""
    if stdin_fd is not None:
        threading.Thread(target=forward_input, args=(stdin_fd, sock), daemon=True).start()
    out = sys.stdout.buffer
    frames = _Demux(out, sys.stderr.buffer) if not tty else None
    while True:
        data = sock.recv(_CHUNK)
        if not data:
            return
        if frames is None:
            out.write(data)
            out.flush()
        else:
            frames.feed(data)


class _Demux:
    """Docker's multiplexed stream: 8-byte headers (stream, 0, 0, 0, big-endian size)."""

    def __init__(self, out: Any, err: Any) -> None:
        self.buf = b""
        self.targets = {1: out, 2: err}

    def feed(self, data: bytes) -> None:
        self.buf += data
        while len(self.buf) >= 8:
            kind, size = struct.unpack(">BxxxL", self.buf[:8])
            if len(self.buf) < 8 + size:
                return
            payload, self.buf = self.buf[8:8 + size], self.buf[8 + size:]
            target = self.targets.get(kind, self.targets[1])
            target.write(payload)
            target.flush()
