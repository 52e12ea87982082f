"""The warm server: import the build path once, then fork a child per ``dsl`` command.

Started by :func:`dsl.warm._front.start_server` in a session of its own. It holds an exclusive
``flock`` on ``<socket>.lock`` for its whole life, so two fronts starting one at the same time
end with one server, and a newer server waits for a stale one to leave. It exits after
``DSL_WARM_IDLE`` seconds without a request (default 900), on ``dsl warm stop``, and when any
file of the ``dsl``, ``compiler`` or ``stdlib`` packages changed since it started.

Fork safety: the parent never starts a thread, a gRPC channel or a Docker client; it only
imports. grpc's core starts its threads at the first channel, in the child. If an import ever
started a thread, the server refuses to fork and exits, and commands run in-process.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import io
import os
import pkgutil
import signal
import socket
import struct
import sys
import threading
import time

from dsl.engines.buildkit import code_fingerprint
from dsl.warm import _wire

# The commands' modules and everything their paths import lazily, package by package.
_PRELOAD_MODULES = ("dsl.contexts", "dsl.identity", "grpc._channel", "grpc._server", "grpc._interceptor",
                    "grpc._simple_stubs", "grpc.experimental", "encodings.ascii", "rich.console", "rich.live",
                    "rich.text")
_PRELOAD_PACKAGES = ("dsl.cli", "dsl.lang", "dsl.ir", "dsl.lock", "dsl.rules", "compiler", "dsl.engines.buildkit")
_DEFAULT_IDLE = 900.0
_LOCK_WAIT = 3.0  # a stale server unlinks its socket, answers, and exits within milliseconds


def main(path: str, search: list[str]) -> None:
    """Serve ``path`` until idle, stopped or stale (see the module docstring)."""
    lock_fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    if not _lock(lock_fd):
        return  # another server owns this socket
    os.chdir("/")  # never keep a caller's directory busy
    _preload()
    if threading.active_count() != 1:
        print(f"warm: an import started threads ({threading.enumerate()}); not forking", flush=True)
        return
    state = _State(path, _wire.identity(search), code_fingerprint(), lock_fd)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    listener.bind(path)
    listener.listen(64)
    state.inode = os.stat(path).st_ino
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the children
    listener.settimeout(_idle_seconds())
    print(f"warm: pid {os.getpid()} serving {path}", flush=True)
    try:
        while True:
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                return
            with conn:
                if not _serve(conn, listener, state):
                    return
    finally:
        state.let_go()
        listener.close()


class _State:
    def __init__(self, path: str, ident: str, code: str, lock_fd: int) -> None:
        self.path, self.ident, self.code, self.lock_fd = path, ident, code, lock_fd
        self.started = time.time()
        self.inode = 0
        self.served = 0

    def let_go(self) -> None:
        """Remove our socket (not a newer server's), so the next caller starts a fresh one."""
        with contextlib.suppress(OSError):
            if os.stat(self.path).st_ino == self.inode:
                os.unlink(self.path)


def _lock(fd: int) -> bool:
    deadline = time.monotonic() + _LOCK_WAIT
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)


def _idle_seconds() -> float:
    try:
        return max(1.0, float(os.environ.get("DSL_WARM_IDLE", _DEFAULT_IDLE)))
    except ValueError:
        return _DEFAULT_IDLE


def _preload() -> None:
    """Import what the eligible commands import, and evaluate the stdlib once."""
    names = list(_PRELOAD_MODULES)
    for package in _PRELOAD_PACKAGES:
        module = importlib.import_module(package)
        names += [info.name for info in pkgutil.walk_packages(module.__path__, package + ".")]
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as exc:  # an optional module: the child imports it if it needs it
            print(f"warm: not preloaded: {name}: {exc}", flush=True)
    from dsl.lang._catalog import FAMILIES, prelude_names
    from dsl.lang._stdlib import stdlib_module

    prelude_names()
    for file, _export in FAMILIES:
        stdlib_module(file)


def _peer_uid(conn: socket.socket) -> int:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[1]


def _serve(conn: socket.socket, listener: socket.socket, state: _State) -> bool:
    """Answer one connection; False when the server must exit."""
    if _peer_uid(conn) != os.getuid():
        return True
    conn.settimeout(5.0)
    try:
        request, fds = _wire.recv_request(conn)
    except (ValueError, OSError):
        return True
    try:
        kind = request.get("kind")
        if kind == "stop":
            _wire.send_answer(conn, stopped=os.getpid())
            return False
        if kind == "status":
            _wire.send_answer(conn, pid=os.getpid(), since=state.started, served=state.served,
                              package=os.path.dirname(os.path.dirname(os.path.abspath(_wire.__file__))))
            return True
        if request.get("identity") != state.ident or len(fds) != 3:
            _wire.send_answer(conn, refused="identity")
            return True
        if code_fingerprint() != state.code:  # the same digest build records are keyed on
            state.let_go()
            _wire.send_answer(conn, refused="stale")
            return False
        state.served += 1
        pid = os.fork()
        if pid == 0:
            _child(conn, listener, state.lock_fd, request, fds)
        return True
    except OSError:  # the caller went away mid-answer: it runs the command itself
        return True
    finally:
        for fd in fds:
            os.close(fd)


def _child(conn: socket.socket, listener: socket.socket, lock_fd: int, request: dict, fds: list[int]) -> None:
    """Become the caller's ``dsl`` process, run its command, report the status; never returns."""
    code = 1
    try:
        listener.close()
        os.close(lock_fd)
        for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGTSTP):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for signum in request.get("ignored", ()):  # as the caller's were (`nohup`, `cmd &` in a script)
            signal.signal(signum, signal.SIG_IGN)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        for fd in set(fds) - {0, 1, 2}:  # no stray copy of the caller's pipes in our children
            os.close(fd)
        os.chdir(request["cwd"])
        os.umask(int(request["umask"]))
        os.environ.clear()
        os.environ.update(request["env"])
        _rebind_streams(request.get("streams") or {})
        sys.argv = ["dsl", *request["argv"]]
        conn.settimeout(None)
        _wire.send_answer(conn, pid=os.getpid())
        threading.Thread(target=_hang_up_with, args=(conn,), daemon=True).start()
        code = _run(list(request["argv"]))
    finally:
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()
            sys.stderr.flush()
        with contextlib.suppress(OSError):
            _wire.send_answer(conn, exit=code)
        os._exit(code)


def _rebind_streams(encodings: dict[str, list[str | None]]) -> None:
    """New ``sys.stdin/stdout/stderr`` over descriptors 0-2, buffered as Python buffers them
    and with the caller's encodings (``PYTHONIOENCODING`` included)."""
    def spec(name: str) -> dict[str, str | None]:
        encoding, errors = (encodings.get(name) or [None, None])[:2]
        return {"encoding": encoding or "utf-8", "errors": errors or "strict"}

    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8")
    sys.stdout = open(1, "w", buffering=1 if os.isatty(1) else -1, closefd=False, **spec("stdout"))
    sys.stderr = open(2, "w", buffering=1, closefd=False, **spec("stderr"))


def _hang_up_with(conn: socket.socket) -> None:
    """The caller went away without forwarding a signal (killed outright): so do we, at once,
    as the caller's own process would have (BuildKit cancels a build whose client is gone)."""
    with contextlib.suppress(OSError):
        while conn.recv(1):
            pass
    os._exit(128 + signal.SIGHUP)


def _run(argv: list[str]) -> int:
    from dsl.cli import main

    try:
        main(argv)
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)
        return 1
    return 0
