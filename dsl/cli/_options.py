"""Options shared by several commands, so they read and behave the same everywhere."""

from __future__ import annotations

import click

path_argument = click.argument("path", default=".", type=click.Path())
from_option = click.option(
    "--from",
    "-f",
    "from_",
    metavar="FILE:FUNC",
    help="Build file and function (default build.envd:build; ':gpu' = build.envd:gpu).",
)


def echo_table(rows: list[tuple[str, ...]]) -> None:
    """Print rows as aligned columns; the last column is left ragged (it holds free text)."""
    last = len(rows[0]) - 1
    widths = [max(len(row[i]) for row in rows) for i in range(last)]
    for row in rows:
        click.echo("  ".join(row[i].ljust(widths[i]) for i in range(last)) + "  " + row[last])
