"""How IR classes are declared: frozen, slotted dataclasses sharing their value methods.

``@dataclass(frozen=True)`` compiles six methods for every class it decorates, and the IR's
forty-odd classes are imported by every ``dsl`` command. ``__repr__``, ``__eq__`` and
``__hash__`` depend only on a class's fields, so :class:`Node` implements them once, exactly as
the generated ones behave (equal when of the same class with equal ``compare`` fields, a hash
of those fields, ``Name(field=value, ...)``); :func:`node` lets ``dataclass`` generate only
``__init__`` and the frozen ``__setattr__``/``__delattr__``, which halves the IR's import time.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, TypeVar

_T = TypeVar("_T")


@functools.cache
def _names(cls: type, flag: str) -> tuple[str, ...]:
    """The fields of ``cls`` whose ``flag`` (``compare`` or ``repr``) is set, in order."""
    return tuple(f.name for f in fields(cls) if getattr(f, flag))


class Node:
    """Base of every IR class: value equality, hashing and repr over the dataclass fields."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        names = _names(self.__class__, "compare")
        return tuple(getattr(self, n) for n in names) == tuple(getattr(other, n) for n in names)

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, n) for n in _names(self.__class__, "compare")))

    def __repr__(self) -> str:
        shown = ", ".join(f"{n}={getattr(self, n)!r}" for n in _names(self.__class__, "repr"))
        return f"{self.__class__.__qualname__}({shown})"


def node(cls: type[_T]) -> type[_T]:
    """Make ``cls`` (a :class:`Node` subclass) a frozen, slotted dataclass."""
    make: Callable[[Any], type[_T]] = dataclass(frozen=True, slots=True, repr=False, eq=False)
    return make(cls)
