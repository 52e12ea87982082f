"""The first thing ``dsl`` runs: hand an eligible command to the warm server, or decline.

Declining is always safe: the caller then runs ``dsl.cli.main`` itself, exactly as without a
server. It declines for a command that may read the terminal or replace the process
(``ssh``, ``up``, ``exec``...), under interpreter options (``-X importtime``, ``-W``, ``-O``:
the user asked for this interpreter), with ``DSL_WARM=0``, and whenever the server is missing,
busy starting, stale or refuses.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys

from dsl.warm import _wire

_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


def run(argv: list[str]) -> int | None:
    """Run ``dsl ARGV`` in the warm server: its exit status, or None to run it here.

    With no server for this interpreter and package, one is started in the background for the
    next command; this one runs here.
    """
    directory = _wire.private_dir(create=True)
    if directory is None:
        return None
    search = _wire.search_path()
    ident = _wire.identity(search)
    path = _wire.socket_path(directory, ident)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        try:
            sock.connect(path)
        except (FileNotFoundError, ConnectionRefusedError):
            start_server(path, search)
            return None
        except OSError:
            return None
        return _delegate(sock, path, search, ident, argv)
    finally:
        sock.close()


def _delegate(sock: socket.socket, path: str, search: list[str], ident: str, argv: list[str]) -> int | None:
    try:
        cwd = os.getcwd()
    except OSError:  # a deleted working directory: let the command itself say so
        return None
    umask = os.umask(0)
    os.umask(umask)
    fds, opened = _stdio()
    if fds is None:
        return None
    try:
        _wire.send_request(sock, {
            "kind": "run", "identity": ident, "argv": argv, "cwd": cwd, "umask": umask,
            "env": dict(os.environ), "streams": _encodings(),
            "ignored": [int(n) for n in (*_FORWARDED, signal.SIGTSTP) if signal.getsignal(n) == signal.SIG_IGN],
        }, fds)
    except OSError:
        return None
    finally:
        for fd in opened:
            os.close(fd)
    answers = _wire.Answers(sock)
    first = answers.next()
    if first is None or "pid" not in first:
        if first is not None and first.get("refused") == "stale":
            start_server(path, search)  # the stale one has already let go of the socket
        return None
    return _wait(answers, int(first["pid"]))


def _stdio() -> tuple[list[int] | None, list[int]]:
    """Our stdin, stdout and stderr to pass, and the descriptors opened for that.

    A terminal stdin is replaced by /dev/null: no eligible command reads it, and the server's
    child, outside the terminal's foreground process group, would be stopped if it tried.
    """
    fds, opened = [], []
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:  # closed: run here, where the command sees exactly that
            for other in opened:
                os.close(other)
            return None, []
        if fd == 0 and os.isatty(0):
            null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
            opened.append(null)
            fds.append(null)
        else:
            fds.append(fd)
    return fds, opened


def _encodings() -> dict[str, list[str | None]]:
    streams = {"stdout": sys.stdout, "stderr": sys.stderr}
    return {name: [getattr(s, "encoding", None), getattr(s, "errors", None)] for name, s in streams.items()}


def _wait(answers: _wire.Answers, pid: int) -> int:
    """Forward our signals to the command's process until it reports its exit status."""
    def forward(signum: int, _frame: object) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    def suspend(_signum: int, _frame: object) -> None:  # Ctrl-Z: stop it, then ourselves
        forward(signal.SIGSTOP, None)
        signal.signal(signal.SIGTSTP, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTSTP)
        signal.signal(signal.SIGTSTP, suspend)  # resumed (fg/bg): so is it
        forward(signal.SIGCONT, None)

    for signum in _FORWARDED:  # an ignored signal stays ignored, here and there
        if signal.getsignal(signum) != signal.SIG_IGN:
            signal.signal(signum, forward)
    if signal.getsignal(signal.SIGTSTP) != signal.SIG_IGN:
        signal.signal(signal.SIGTSTP, suspend)
    while True:
        answer = answers.next()
        if answer is None:
            sys.stderr.write(f"error: the warm dsl process {pid} ended without an exit status "
                             "(killed?)\n  hint: run it again with DSL_WARM=0 to run it in this process\n")
            return 1
        if "exit" in answer:
            return int(answer["exit"])


def start_server(path: str, search: list[str]) -> None:
    """Start the server for ``path`` in its own session, detached from our stdio; its log
    (what it printed, start-up failures included) is beside the socket.

    It searches our package's parent first (so it imports this very ``dsl``), then our path.
    """
    package_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    bootstrap = ("import sys, json; search = json.loads(sys.argv[2]); sys.path[:] = [sys.argv[1], *search]; "
                 "from dsl.warm._server import main; main(sys.argv[3], search)")
    log = path[: -len(".sock")] + ".log"
    try:
        os.posix_spawn(sys.executable, [sys.executable, "-c", bootstrap, package_parent,
                                        json.dumps(search), path],
                       _server_environment(), setsid=True, file_actions=[
                           (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                           (os.POSIX_SPAWN_OPEN, 1, log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
                           (os.POSIX_SPAWN_DUP2, 1, 2),
                       ])
    except OSError:
        pass  # no server this time: every command still runs here


# What the server itself needs of our environment: the interpreter's settings, the locale, where
# temporary and runtime files go, and its idle time. Each command gets its caller's whole
# environment; the long-lived server keeps none of it (no token outlives the command it was for).
_SERVER_ENV = ("PATH", "HOME", "LANG", "TMPDIR", "XDG_RUNTIME_DIR", "DSL_WARM_IDLE")


def _server_environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if k in _SERVER_ENV or k.startswith(("PYTHON", "LC_"))}

