"""``dsl ssh`` (the system ssh, host key pinned; ``--stdio`` is the ProxyCommand of the
``<env>.dsl`` blocks) and ``dsl exec`` (a command in the environment, as its user)."""

from __future__ import annotations

import json
import os
import sys

import click

from dsl.cli._runner import open_runner, resolve, runner_options, ssh_key_option, ssh_target, user_key_path
from dsl.errors import UsageError

RUNTIME_LABEL = "dev.envdsl.runtime"  # the image's runtime spec (runtime.command lives there)


@click.command("ssh", context_settings={"ignore_unknown_options": True})
@click.argument("env")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.option("--stdio", is_flag=True, help="Relay the SSH byte stream on stdin/stdout (ssh's ProxyCommand).")
@ssh_key_option
@runner_options
def ssh(env: str, command: tuple[str, ...], stdio: bool, ssh_key: str | None, where: dict) -> None:
    """Log in to ENV (or run COMMAND there) with the system ssh, the host key pinned.

    A stopped environment is not started: the error says how to start it.
    """
    runner = open_runner(where)
    try:
        state = resolve(runner, env)
        if stdio:
            if not state.running:
                raise UsageError(f"environment {state.id} is {state.status}; envdsl does not start it behind "
                                 f"your back", hint=f"start it with `dsl up` in {state.project_dir}")
            from dsl.engines.runner import relay_stdio

            relay_stdio(runner.open_stream(state.id))
            return
        from dsl.ssh import ssh_argv

        argv = ssh_argv(ssh_target(runner, state, user_key_path(ssh_key)), command)
    finally:
        runner.close()
    os.execv(argv[0], argv)


@click.command("exec", context_settings={"ignore_unknown_options": True})
@click.argument("env")
@click.argument("argv", nargs=-1, type=click.UNPROCESSED)
@click.option("--command", "-c", "command_name", metavar="NAME", help="Run the build file's runtime.command NAME.")
@click.option("--tty/--no-tty", "-t/-T", default=None, help="Allocate a terminal (default: when interactive).")
@runner_options
@click.pass_context
def exec_(ctx: click.Context, env: str, argv: tuple[str, ...], command_name: str | None, tty: bool | None,
          where: dict) -> None:
    """Run ARGV in ENV as its user (docker exec, or the Pod's exec); exits with the command's status."""
    runner = open_runner(where)
    try:
        state = resolve(runner, env)
        if command_name:
            if argv:
                raise UsageError("give either --command NAME or a command after --, not both")
            argv = _named_command(state.labels, command_name)
        if not argv:
            raise UsageError("no command", hint="dsl exec ENV -- CMD ARGS..., or --command NAME")
        interactive = sys.stdin.isatty() and sys.stdout.isatty()
        use_tty = interactive if tty is None else tty
        # like `docker exec -i`: forward stdin when it is piped data or feeds a terminal
        code = runner.exec(state.id, list(argv), tty=use_tty, stdin=use_tty or not sys.stdin.isatty())
    finally:
        runner.close()
    ctx.exit(code)


def _named_command(labels: dict[str, str] | object, name: str) -> tuple[str, ...]:
    try:
        commands = json.loads(labels.get(RUNTIME_LABEL) or "{}").get("commands") or {}  # type: ignore[union-attr]
    except ValueError:
        commands = {}
    if name not in commands:
        known = ", ".join(sorted(commands)) or "none"
        raise UsageError(f"no runtime.command {name!r} in this environment (it has: {known})",
                         hint="runtime.command(commands={...}) in the build file names them")
    return ("bash", "-c", commands[name])
