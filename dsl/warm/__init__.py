"""The warm client: ``dsl build`` (and the other one-shot commands) run in a process forked
from one that has already imported everything, instead of a fresh interpreter each time.

Why: a fresh ``dsl build`` spends ~120 ms before it sends anything: the interpreter and its
``site`` (~30 ms, not ours), then importing click, starlark, grpc and protobuf and evaluating
the stdlib (~95 ms). On a build BuildKit answers from its cache in 0.2 s, that is a third of
the wall time (``bench/build.py``, "client share"). The same design as Mercurial's ``chg``:

* :mod:`dsl.warm._front` is what ``dsl`` runs first (after :func:`wanted`). For a command that never reads the
  terminal (:data:`ELIGIBLE`), it connects to the server's unix socket, passes its stdin,
  stdout and stderr file descriptors, argv, cwd, environment and umask, forwards the signals it
  gets (Ctrl-C, Ctrl-Z, hang-up) and exits with the command's exit status. With no server
  running, it starts one in the background and runs the command itself this time.
* :mod:`dsl.warm._server` imports the build path once, then forks one child per request; the
  child takes the caller's descriptors, directory and environment and runs ``dsl.cli.main``.
  A fork shares the imported modules copy-on-write, so a command starts in ~2 ms.

It is never a second source of truth: the child runs the same ``main`` on a pristine copy of
the preloaded process, and a server whose code files changed since it started (an upgrade, a
checkout) refuses the request and exits, so the caller runs in-process. ``DSL_WARM=0``
turns it off; ``dsl warm status`` and ``dsl warm stop`` show and stop the servers.
"""

from __future__ import annotations

import os
import sys

# Commands that only read files and write stdout/stderr: the server's child has the caller's
# descriptors but not its terminal's foreground (reading a tty from there would stop it).
ELIGIBLE = frozenset({"build", "check", "compile", "inspect", "lock", "push"})
_OFF = ("0", "false", "no", "off")


def wanted(argv: list[str]) -> bool:
    """Whether this invocation may run in the warm server at all."""
    if os.environ.get("DSL_WARM", "").strip().lower() in _OFF:
        return False
    flags = sys.flags
    if (sys._xoptions or sys.warnoptions or flags.optimize or flags.verbose or flags.debug
            or flags.isolated or flags.no_site or flags.dev_mode):
        return False
    command = next((a for a in argv if not a.startswith("-")), None)
    return command in ELIGIBLE
