"""The type of a builtin's parameter, for the reference and the stubs.

The docstring's ``name (type): text`` wins; otherwise the type follows from the default's
Starlark literal. Types are written as Python annotations (``list[str]``, ``str | None``).
"""

from __future__ import annotations

import ast

from dsl.docs._docstring import docstring_of
from dsl.lang import Builtin, Param

_LITERAL_TYPES = {str: "str", bool: "bool", int: "int", float: "float"}
# Starlark docs sometimes say "list of str"/"string"/"dict": map them to annotations.
_WORDS = {
    "string": "str",
    "bool": "bool",
    "boolean": "bool",
    "int": "int",
    "integer": "int",
    "list": "list[Any]",
    "dict": "dict[str, Any]",
    "list of str": "list[str]",
    "list of strings": "list[str]",
    "list of list of str": "list[list[str]]",
    "dict of str": "dict[str, str]",
}


def param_type(builtin: Builtin, param: Param) -> str:
    """The annotation for ``param`` of ``builtin`` (``Any`` when nothing tells).

    Args:
        builtin: The builtin the parameter belongs to.
        param: The parameter.

    Returns:
        A Python type annotation as text.
    """
    documented = docstring_of(builtin).arg(param.name)
    if documented and documented.type:
        return annotation(documented.type)
    return type_of_literal(param.default)


def annotation(doc_type: str) -> str:
    """Turn a docstring type (``list of str``, ``str, optional``) into an annotation."""
    # ", optional" says the argument has a default, not that None is accepted.
    text = doc_type.strip().removesuffix(", optional").strip()
    return _WORDS.get(text.lower(), text)


def type_of_literal(default: str | None) -> str:
    """The annotation a Starlark literal default implies (``Any`` if it is not a literal)."""
    if default is None:
        return "Any"
    try:
        value = ast.literal_eval(default)
    except (ValueError, SyntaxError):
        return "Any"
    if value is None:
        return "Any | None"
    # An empty container says nothing about its items (runtime.daemon takes lists of lists),
    # and a wrong guess would make editors flag correct build files.
    if isinstance(value, list):
        inner = {type(v) for v in value}
        return f"list[{_LITERAL_TYPES.get(inner.pop(), 'Any')}]" if len(inner) == 1 else "list[Any]"
    if isinstance(value, dict):
        return "dict[str, Any]"
    return _LITERAL_TYPES.get(type(value), "Any")
