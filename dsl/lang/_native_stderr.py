"""Keep the Starlark interpreter's panic reports off the user's terminal.

When starlark-rust panics (e.g. ``[1] * n`` for a huge ``n``: "AlignedSize must not exceed
u32::MAX"), pyo3 turns the panic into a Python exception that the evaluator reports as a
located ``BuildFileError``; but Rust's panic hook has already written ``thread '...' panicked
at ...`` (and, with ``RUST_BACKTRACE`` set, a whole backtrace) straight to file descriptor 2,
where no ``sys.stderr`` redirection can reach it. So while a build file is evaluated, fd 2
points at an anonymous file; afterwards the panic reports are dropped and anything else
written there meanwhile (a warning, a library's message) is written back to the real stderr.

fd 2 belongs to the whole process, so concurrent evaluations (threads) share one capture:
the first to enter redirects, the last to leave restores and replays.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_PANIC_START = re.compile(rb"(?:^\n)?^thread '[^'\n]*' (?:\(\d+\) )?panicked at ", re.M)
_NOTE = re.compile(rb"^note: [^\n]*\n?", re.M)
_lock = threading.Lock()
_users = 0
_saved_fd: int | None = None
_capture_fd: int | None = None


def without_panics(data: bytes) -> bytes:
    """``data`` minus every Rust panic report (from ``thread '…' panicked at`` to its ``note:`` line).

    Args:
        data: Bytes written to fd 2.

    Returns:
        The rest, in order.
    """
    out, pos = [], 0
    for start in _PANIC_START.finditer(data):
        if start.start() < pos:
            continue
        out.append(data[pos:start.start()])
        note = _NOTE.search(data, start.end())
        pos = note.end() if note else len(data)
    out.append(data[pos:])
    return b"".join(out)


def _open_capture() -> int:
    if hasattr(os, "memfd_create"):
        return os.memfd_create("envdsl-stderr", 0)
    import tempfile  # no memfd (macOS): an unlinked temporary file

    handle, path = tempfile.mkstemp(prefix="envdsl-stderr-")
    os.unlink(path)
    return handle


def _begin() -> None:
    global _users, _saved_fd, _capture_fd
    with _lock:
        _users += 1
        if _users > 1:
            return
        try:
            sys.stderr.flush()
            _saved_fd = os.dup(2)
            _capture_fd = _open_capture()
            os.dup2(_capture_fd, 2)
        except OSError:  # no fd 2 (a daemon), or out of descriptors: evaluate uncaptured
            _close_all()


def _close_all() -> None:
    global _saved_fd, _capture_fd
    for fd in (_saved_fd, _capture_fd):
        if fd is not None:
            os.close(fd)
    _saved_fd = _capture_fd = None


def _end() -> None:
    global _users
    with _lock:
        _users -= 1
        if _users or _saved_fd is None or _capture_fd is None:
            return
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(_saved_fd, 2)
        os.lseek(_capture_fd, 0, os.SEEK_SET)
        chunks = []
        while chunk := os.read(_capture_fd, 1 << 16):
            chunks.append(chunk)
        rest = without_panics(b"".join(chunks))
        _close_all()
        while rest:
            rest = rest[os.write(2, rest):]


@contextmanager
def native_stderr_filtered() -> Iterator[None]:
    """Capture fd 2 for the duration of the block; replay it without Rust panic reports."""
    _begin()
    try:
        yield
    finally:
        _end()
