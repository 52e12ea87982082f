"""The inverse of :func:`dsl.ir.to_data`: plain JSON data back into IR nodes.

An image built by ``dsl build`` carries its whole environment as canonical JSON in its
``dev.envdsl.environment`` label; this turns that label back into an :class:`Environment`, so an
image built elsewhere runs (and compiles) with the runtime spec it was built with. Driven by the
classes' own type hints, so a field added to the IR needs nothing here; ``content_hash()`` of
the result equals the original's (spans, ``source`` and ``function`` are not in the data).
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from typing import Any

from dsl.ir._environment import _PAIR_FIELDS, Environment
from dsl.ir._runtime import RuntimeSpec


class IRDataError(ValueError):
    """The data does not describe an IR node of the expected type."""


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def from_data(cls: type, data: Any, *, where: str = "environment") -> Any:
    """Rebuild an IR node of type ``cls`` from ``data`` (as ``to_data(spans=False)`` made it).

    Raises:
        IRDataError: a missing or unknown field, or a value of the wrong kind (``where`` says which).
    """
    if not isinstance(data, dict):
        raise IRDataError(f"{where}: expected an object, got {type(data).__name__}")
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(fields) - {"kind"}
    if unknown:
        raise IRDataError(f"{where}: unknown field(s) {', '.join(sorted(unknown))} for {cls.__name__}")
    values = {}
    for name, f in fields.items():
        if name == "span" or name not in data:
            continue
        value = data[name]
        if name in _PAIR_FIELDS and cls is RuntimeSpec:
            if not isinstance(value, dict):
                raise IRDataError(f"{where}.{name}: expected an object")
            values[name] = tuple(sorted((str(k), str(v)) for k, v in value.items()))
            continue
        values[name] = _value(hints[name], value, f"{where}.{name}")
    try:
        return cls(**values)
    except TypeError as exc:
        raise IRDataError(f"{where}: {exc}") from exc


def _value(kind: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(kind)
        if value is None and type(None) in options:
            return None
        classes = [o for o in options if dataclasses.is_dataclass(o)]
        if classes and isinstance(value, dict):
            chosen = next((c for c in classes if c.__name__ == value.get("kind")), None)
            if chosen is None and len(classes) == 1:
                chosen = classes[0]
            if chosen is None:
                raise IRDataError(f"{where}: unknown kind {value.get('kind')!r}")
            return from_data(chosen, value, where=where)
        scalars = [o for o in options if o is not type(None) and not dataclasses.is_dataclass(o)]
        return _value(scalars[0], value, where) if scalars else value
    if origin is tuple:
        if not isinstance(value, list):
            raise IRDataError(f"{where}: expected a list")
        args = typing.get_args(kind)
        item = args[0]
        return tuple(_value(item, v, f"{where}[{i}]") for i, v in enumerate(value))
    if dataclasses.is_dataclass(kind):
        return from_data(kind, value, where=where)
    if kind in (str, int, bool, float) and not isinstance(value, kind):
        if not (kind is float and isinstance(value, int)):
            raise IRDataError(f"{where}: expected {kind.__name__}, got {type(value).__name__}")
    return value


def environment_from_data(data: Any) -> Environment:
    """:func:`from_data` for a whole :class:`Environment`."""
    return from_data(Environment, data)
