"""The ``dsl`` command.

Subcommands live in their own modules and are imported only when invoked, so ``dsl check``
and ``dsl compile`` never pay for ``grpc``, ``docker`` or ``kubernetes``.
"""

from __future__ import annotations

import importlib
import os
import sys

import click

from dsl.errors import DslError

# name -> "module:attribute"; the module is imported only when the command runs.
_COMMANDS = {
    "check": "dsl.cli.check:check",
    "inspect": "dsl.cli.check:inspect_",
    "reference": "dsl.cli.docs:reference",
    "stubs": "dsl.cli.docs:stubs",
    "version": "dsl.cli.version:version",
    "compile": "dsl.cli.compile:compile_",
    "build": "dsl.cli.build:build",
    "context": "dsl.cli.context:context",
    "prune": "dsl.cli.cache:prune",
    "du": "dsl.cli.cache:du",
    "up": "dsl.cli.up:up",
    "down": "dsl.cli.envs:down",
    "ls": "dsl.cli.envs:ls",
    "ports": "dsl.cli.envs:ports",
    "logs": "dsl.cli.envs:logs",
    "ssh": "dsl.cli.ssh:ssh",
    "exec": "dsl.cli.ssh:exec_",
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
@click.option("--debug", is_flag=True, help="Show Python tracebacks for errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """envdsl: one build.envd → an OCI image, a Docker run spec or Kubernetes manifests."""
    ctx.obj = {"debug": debug}


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the CLI and turn every ``DslError`` into a clean exit."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    finish = _fast_exit if argv is None else sys.exit
    try:
        code = cli.main(args=args, prog_name="dsl", standalone_mode=False)
    except DslError as exc:
        if debug:
            raise
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
    finish(code if isinstance(code, int) else 0)


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
