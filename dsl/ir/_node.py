"""How IR classes are declared: frozen, slotted dataclasses, built without ``dataclass()``.

Every ``dsl`` command imports the IR's forty-odd classes. ``@dataclass(frozen=True,
slots=True)`` costs ~0.2 ms a class: it compiles ``__init__``, ``__setattr__`` and
``__delattr__`` with one ``exec`` each, parses every (string) annotation for ``ClassVar`` and
``InitVar``, and builds each class twice (a slot cannot share its name with the class attribute
holding the default). That was most of ``import dsl.ir``. :func:`node` does only what depends
on the class, and :class:`Node` holds the rest once:

* ``__repr__``, ``__eq__``, ``__hash__``: exactly as the generated ones behave (equal when of
  the same class with equal ``compare`` fields, a hash of those fields, ``Name(f=value, ...)``).
* ``__setattr__``/``__delattr__`` raise ``FrozenInstanceError`` for every name, as the
  generated ones do on an instance of the class itself (IR classes are never subclassed;
  :func:`node` refuses other bases). ``__getstate__``/``__setstate__`` are the pair a frozen
  slotted dataclass gets, so pickle and ``copy`` restore through ``object.__setattr__``.
* :func:`node` builds the class once, with ``__slots__`` and without the defaults, and sets
  what ``dataclass`` would: ``__dataclass_fields__`` (``Field`` objects marked as regular
  fields, the one private name used), ``__dataclass_params__`` (taken from a frozen
  declaration), ``__match_args__`` and an ``__init__`` compiled from the same source
  ``dataclass`` writes (positional or keyword, same defaults, same annotations).

So everything behaves as with ``@dataclass(frozen=True, slots=True)``: equality, hashing,
``repr``, ``dataclasses.fields``/``replace``/``asdict``/``astuple``/``is_dataclass``,
``__dataclass_params__``, ``__match_args__``, ``__slots__``, the ``__init__`` signature,
pickling, ``copy`` and ``FrozenInstanceError``. One deliberate difference: assigning a name
that is not a field raises ``FrozenInstanceError`` where CPython 3.11's slotted dataclasses
raise a ``TypeError`` from ``super()`` (its bug with rebuilt classes).

``tests/ir/test_ir_dataclass_twins.py`` holds this to account: it builds every IR class a
second time with the real ``dataclass()`` and compares the two over generated values. That
suite is the condition for keeping this module; without it, go back to ``dataclass()``.
"""

from __future__ import annotations

import functools
from dataclasses import MISSING, Field, FrozenInstanceError, dataclass, field, fields

try:  # the one private name used (see node()); present in CPython 3.11-3.14
    from dataclasses import _FIELD  # type: ignore[attr-defined]
except ImportError:  # a later Python reshaped dataclasses: fall back to dataclass() itself
    _FIELD = None
from typing import Any, TypeVar

_T = TypeVar("_T")

# The parameters object of ``@dataclass(frozen=True, slots=True)``, taken from one throwaway
# class: Node's __eq__/__hash__/__repr__ are the ones such a declaration generates.
_FROZEN_PARAMS = dataclass(frozen=True, slots=True)(type("_Frozen", (), {})).__dataclass_params__  # type: ignore[attr-defined]


@functools.cache
def _names(cls: type, flag: str) -> tuple[str, ...]:
    """The fields of ``cls`` whose ``flag`` (``compare`` or ``repr``) is set, in order."""
    return tuple(f.name for f in fields(cls) if getattr(f, flag))


class Node:
    """Base of every IR class: value equality, hashing, repr and immutability over its fields."""

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

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __getstate__(self) -> list[Any]:
        return [getattr(self, f.name) for f in fields(self)]  # type: ignore[arg-type]

    def __setstate__(self, state: list[Any]) -> None:
        for f, value in zip(fields(self), state):  # type: ignore[arg-type]
            object.__setattr__(self, f.name, value)


def node(cls: type[_T]) -> type[_T]:
    """Make ``cls`` (a direct :class:`Node` subclass) a frozen, slotted dataclass.

    Raises:
        TypeError: ``cls`` uses what this does not implement (dataclass bases, ClassVar or
            InitVar fields, default factories) or an unhashable default, which ``dataclass``
            would reject as mutable.
    """
    if _FIELD is None:
        return dataclass(frozen=True, slots=True)(cls)
    own = cls.__dict__
    made_fields: dict[str, Field[Any]] = {}
    for name, kind in own.get("__annotations__", {}).items():
        value = own.get(name, MISSING)
        f = value if isinstance(value, Field) else field(default=value)
        if "ClassVar" in str(kind) or "InitVar" in str(kind) or f.default_factory is not MISSING:
            raise TypeError(f"{cls.__name__}.{name}: not supported by dsl.ir.node")
        if f.default is not MISSING and f.default.__class__.__hash__ is None:
            raise TypeError(f"{cls.__name__}.{name}: mutable default {f.default!r}")
        # What dataclass's field collection sets; dataclasses.fields() keeps only _FIELD ones.
        f.name, f.type, f.kw_only = name, kind, False
        f._field_type = _FIELD  # type: ignore[attr-defined]
        made_fields[name] = f
    if cls.__bases__ != (Node,):
        raise TypeError(f"{cls.__name__}: IR classes derive from Node only")
    names = tuple(made_fields)
    # A slot and a class attribute cannot share a name, so the class is built once, here,
    # without the defaults (they live in the fields and in __init__), as dataclass(slots=True)
    # does by building it a second time.
    dropped = {*made_fields, "__dict__", "__weakref__"}
    body = {k: v for k, v in own.items() if k not in dropped}
    body.update(
        __qualname__=cls.__qualname__,
        __slots__=names,
        __match_args__=names,
        __dataclass_fields__=made_fields,
        __dataclass_params__=_FROZEN_PARAMS,
    )
    made: Any = type(cls)(cls.__name__, cls.__bases__, body)
    made.__init__ = _init(made)
    return made


def _init(cls: type) -> Any:
    """Compile ``cls.__init__`` as ``dataclass`` would: one parameter per field, in order."""
    params, body, scope = [], [], {"_set": object.__setattr__}
    for i, f in enumerate(fields(cls)):
        if f.default is MISSING:
            params.append(f.name)
        else:
            params.append(f"{f.name}=_d{i}")
            scope[f"_d{i}"] = f.default
        body.append(f"_set(self,{f.name!r},{f.name})")
    source = f"def __init__(self,{','.join(params)}):\n {';'.join(body) or 'pass'}\n"
    exec(source, scope)  # noqa: S102 - source built only from field names, as dataclass does
    fn = scope["__init__"]
    fn.__qualname__ = f"{cls.__qualname__}.__init__"
    fn.__annotations__ = {f.name: f.type for f in fields(cls)} | {"return": None}
    return fn
