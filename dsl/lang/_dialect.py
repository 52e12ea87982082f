"""envd's v1 dialect rules that starlark-pyo3 does not enforce by itself.

The standard dialect already rejects ``while``, ``set``, top-level ``if``/``for`` and
f-strings. Here: the ``# syntax=`` header (v0 is gone), global reassignment (go.starlark's
``GlobalReassign=false``, found with the ``duplicate-top-level-assign`` lint) and the static
scan for ``include()`` URLs, which must be fetched before evaluation.
"""

from __future__ import annotations

import re

import starlark

from dsl.errors import BuildFileError
from dsl.ir import Span

_HEADER = re.compile(r"#\s*syntax\s*=\s*(\S+)")
_DUPLICATE = re.compile(r"Duplicate top-level assignment of `([^`]+)`, first defined at (.+?):(\d+):(\d+)")
_INCLUDE = re.compile(r"""\binclude\(\s*(?:git\s*=\s*)?(["'])([^"'\\\s]+)\1\s*\)""")


def check_header(source: str, file: str) -> None:
    """Reject ``# syntax=v0`` on the first line (envd v1 does too); anything else means v1."""
    first = source.split("\n", 1)[0].strip()
    m = _HEADER.fullmatch(first)
    if m and m.group(1) == "v0":
        raise BuildFileError(
            "'# syntax=v0' is no longer supported: envd v1 removed the v0 language",
            span=Span(file, 1, 1),
            hint="change the header to '# syntax=v1'; v0's base(os=..., language='python3') becomes "
            "base(dev=True) + install.conda() + install.python()",
        )


def check_reassignment(ast: starlark.AstModule) -> None:
    """Reject a second top-level assignment to a global, like go.starlark does."""
    for lint in ast.lint():
        if lint.short_name != "duplicate-top-level-assign":
            continue
        m = _DUPLICATE.search(lint.problem)
        name, first = (m.group(1), f"{m.group(2)}:{m.group(3)}:{m.group(4)}") if m else ("a global", "")
        loc = lint.resolved_location
        raise BuildFileError(
            f"cannot reassign global '{name}'" + (f" (first defined at {first})" if first else ""),
            span=Span(loc.file, loc.span.begin.line + 1, loc.span.begin.column + 1),
            hint="globals are frozen once set in envd's dialect; use a new name, or compute the value in a function",
        )


def include_urls(source: str) -> tuple[str, ...]:
    """The literal URLs of ``include(...)`` calls, in order, without duplicates (comments skipped)."""
    urls: list[str] = []
    for line in source.splitlines():
        if line.lstrip().startswith("#"):
            continue
        for m in _INCLUDE.finditer(line):
            if m.group(2) not in urls:
                urls.append(m.group(2))
    return tuple(urls)
