"""``dsl version``."""

from __future__ import annotations

from importlib import metadata

import click


@click.command()
def version() -> None:
    """Print the envdsl version."""
    try:
        v = metadata.version("envdsl")
    except metadata.PackageNotFoundError:
        v = "0+unknown"
    click.echo(f"envdsl {v}")
