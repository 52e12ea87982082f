"""The ``dsl`` command.

Subcommands live in their own modules and are imported only when invoked, so ``dsl check``
and ``dsl compile`` never pay for ``grpc``, ``docker`` or ``kubernetes``.
"""

from __future__ import annotations

import errno
import importlib
import os
import sys
from collections.abc import Callable

import click

from dsl.errors import DslError, InternalError

# name -> "module:attribute"; the module is imported only when the command runs.
_COMMANDS = {
    "check": "dsl.cli.check:check",
    "inspect": "dsl.cli.check:inspect_",
    "reference": "dsl.cli.docs:reference",
    "stubs": "dsl.cli.docs:stubs",
    "version": "dsl.cli.version:version",
    "compile": "dsl.cli.compile:compile_",
    "build": "dsl.cli.build:build",
    "lock": "dsl.cli.lock:lock",
    "context": "dsl.cli.context:context",
    "prune": "dsl.cli.cache:prune",
    "du": "dsl.cli.cache:du",
    "up": "dsl.cli.up:up",
    "down": "dsl.cli.envs:down",
    "gc": "dsl.cli.gc:gc",
    "ls": "dsl.cli.envs:ls",
    "ports": "dsl.cli.envs:ports",
    "logs": "dsl.cli.envs:logs",
    "ssh": "dsl.cli.ssh:ssh",
    "exec": "dsl.cli.ssh:exec_",
    "builder": "dsl.cli.builder:builder",
    "push": "dsl.cli.push:push",
    "warm": "dsl.cli.warm:warm",
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = _COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            return None  # not built yet
        return getattr(module, attr)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show Python tracebacks for errors (or set DSL_DEBUG=1).")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """envdsl: one build.envd → an OCI image, a Docker run spec or Kubernetes manifests."""
    ctx.obj = {"debug": debug}


def debug_requested(args: list[str]) -> bool:
    """``dsl --debug ...`` (the group's flag, before the command) or ``DSL_DEBUG=1``."""
    before_command = args[: next((i for i, a in enumerate(args) if not a.startswith("-")), len(args))]
    return "--debug" in before_command or os.environ.get("DSL_DEBUG", "") not in ("", "0")


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the CLI and turn every exception into one line and an exit code.

    A ``DslError`` prints its message (and hint) and exits with its code; anything else is a
    bug of ours and prints one ``internal error:`` line (an :class:`InternalError`), exit 70,
    except an output that cannot be written (a full disk behind ``>``), exit 1. With
    ``--debug`` (or ``DSL_DEBUG=1``) the traceback, causes included, is printed first.
    """
    args = sys.argv[1:] if argv is None else argv
    debug = debug_requested(args)
    finish = _fast_exit if argv is None else sys.exit
    try:
        code = cli.main(args=args, prog_name="dsl", standalone_mode=False)
    except DslError as exc:
        _traceback(debug)
        click.echo(f"error: {exc.format()}" if not getattr(exc, "span", None) else exc.format(), err=True)
        finish(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        finish(130)
    except click.ClickException as exc:
        exc.show()
        finish(2 if exc.exit_code == 1 else exc.exit_code)
    except KeyboardInterrupt:
        click.echo("cancelled", err=True)
        finish(130)
    except BrokenPipeError:
        finish(0)
    except OSError as exc:
        if exc.errno in _OUTPUT_ERRNOS and exc.filename is None:  # stdout, redirected, failed
            _traceback(debug)
            click.echo(f"error: cannot write the output: {exc.strerror}", err=True)
            finish(1)
        else:
            _last_resort(exc, debug, finish)
    except Exception as exc:  # noqa: BLE001 - the last resort: a bug must not look like a crash dump
        _last_resort(exc, debug, finish)
    finish(code if isinstance(code, int) else 0)


# A full disk or a failing device behind the redirected stdout: the machine's problem, not a bug.
_OUTPUT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO})


def _last_resort(exc: Exception, debug: bool, finish: Callable[[int], object]) -> None:
    """Report a bug of ours in one line (traceback first under --debug) and exit 70."""
    _traceback(debug)
    internal = InternalError.of(exc)
    click.echo(internal.format(), err=True)
    finish(internal.exit_code)


def _traceback(debug: bool) -> None:
    if debug:
        import traceback

        traceback.print_exc()


def _fast_exit(code: int) -> None:
    """Exit without the interpreter's teardown.

    Every command has finished its work and closed what it opened (sessions, sockets, temp
    dirs) by the time it returns; what teardown would still do is tear down grpc's threads and
    module state, 30-45 ms of every ``dsl build``. Flush our streams, then leave.
    """
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        code = code or 0
    os._exit(code)
