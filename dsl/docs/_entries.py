"""What the reference and the stubs document: the stdlib's catalog plus Starlark's own names."""

from __future__ import annotations

from dsl.lang import LANGUAGE, Builtin, Constant, catalog


def documented() -> tuple[Builtin | Constant, ...]:
    """Every documented name, global builtins first, then by dotted name.

    Returns:
        The stdlib's builtins and constants (``dsl.lang.catalog()``) and ``load``/``fail``.
    """
    return tuple(sorted((*catalog(), *LANGUAGE), key=lambda e: (e.family != "", e.name)))
