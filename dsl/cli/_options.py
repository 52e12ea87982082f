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
