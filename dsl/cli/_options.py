"""Options shared by several commands, so they read and behave the same everywhere."""

from __future__ import annotations

from typing import Any

import click

from dsl.errors import UsageError

path_argument = click.argument("path", default=".", type=click.Path())
from_option = click.option(
    "--from",
    "-f",
    "from_",
    metavar="FILE:FUNC",
    help="Build file and function (default build.envd:build; ':gpu' = build.envd:gpu).",
)


def check_references(refs: tuple[str, ...], parse: Any, option: str) -> None:
    """Check each reference with ``parse`` (a ``dsl.rules`` reference rule).

    ``dsl.rules`` is imported only when there is something to check: it is standard library
    only (a few ms), and a plain ``dsl build`` on its up-to-date path does not pay for it.

    Raises:
        UsageError: one line naming the option, the reference and what is wrong with it.
    """
    from dsl.rules import Invalid

    for ref in refs:
        try:
            parse(ref)
        except Invalid as exc:
            raise UsageError(f"{option}: {exc.message}", hint=exc.hint) from exc


# Callbacks run while click parses the command line, so a bad reference is one line and
# exit 2 before any work (and before `dsl build`'s up-to-date check looks the tag up).


def check_tags(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    """``--tag``: names to give the built image (``myteam/ws:1``; no digest)."""
    if value:
        from dsl.rules import tag_reference

        check_references(value, tag_reference, "--tag")
    return value


def check_image(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """``--image``: the image to run (``myteam/ws:1``, ``REF@sha256:...``)."""
    if value is not None:
        from dsl.rules import parse_image_ref

        check_references((value,), parse_image_ref, "--image")
    return value


def echo_table(rows: list[tuple[str, ...]]) -> None:
    """Print rows as aligned columns; the last column is left ragged (it holds free text)."""
    last = len(rows[0]) - 1
    widths = [max(len(row[i]) for row in rows) for i in range(last)]
    for row in rows:
        click.echo("  ".join(row[i].ljust(widths[i]) for i in range(last)) + "  " + row[last])
