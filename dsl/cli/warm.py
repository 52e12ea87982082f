"""``dsl warm status`` and ``dsl warm stop``: the warm servers of :mod:`dsl.warm`."""

from __future__ import annotations

import time

import click

from dsl.cli._options import echo_table
from dsl.warm import _wire


@click.group()
def warm() -> None:
    """Show or stop the warm servers that run build, check, compile, inspect, lock and push
    without a fresh interpreter each time (DSL_WARM=0 turns them off)."""


@warm.command()
def status() -> None:
    """List the running warm servers: pid, age, commands served, the dsl package they run."""
    directory = _wire.private_dir(create=False)
    rows = [("PID", "UP", "SERVED", "PACKAGE")]
    for path in _wire.servers(directory) if directory else []:
        answer = _wire.ask(path, "status")
        if answer and "pid" in answer:
            age = int(time.time() - float(answer["since"]))
            rows.append((str(answer["pid"]), f"{age // 60}m{age % 60:02d}s", str(answer["served"]),
                         str(answer["package"])))
    if len(rows) == 1:
        click.echo("no warm server is running")
        return
    echo_table(rows)


@warm.command()
def stop() -> None:
    """Stop every warm server of this user (commands already running finish)."""
    directory = _wire.private_dir(create=False)
    stopped = [answer["stopped"] for path in (_wire.servers(directory) if directory else [])
               if (answer := _wire.ask(path, "stop")) and "stopped" in answer]
    click.echo(f"stopped {len(stopped)} warm server(s)" + (f": pid {', '.join(map(str, stopped))}" if stopped else ""))
