"""The IR classes behave exactly as ``@dataclass(frozen=True, slots=True)`` classes would.

``dsl/ir/_node.py`` builds them without ``dataclass()`` (it saves ~9 ms of every command's
start, see its docstring) and uses the private ``dataclasses._FIELD``. This suite is the price
of that shortcut: each IR class is compared with a twin made by the real
``dataclasses.dataclass(frozen=True, slots=True)`` from the same source, for equality,
hashing, repr, immutability, pickling and copying, ``replace``, ``fields``/``asdict``/
``astuple`` and construction, over generated values of every field.

The twins come from importing ``dsl.ir`` a second time with ``dsl.ir._node`` replaced by a
module whose ``node`` is ``dataclass(frozen=True, slots=True)`` and whose ``Node`` is
``object``: same class bodies, same annotations, same defaults, nothing of ours in between.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import pickle
import random
import re
import sys
import types
import typing
from pathlib import Path

import pytest

import dsl
import dsl.ir
from dsl.ir import _build, _environment, _runtime
from dsl.ir._node import Node, node

IR_MODULES = (_build, _runtime, _environment)


def _load_twins() -> types.ModuleType:
    """``dsl.ir`` re-imported with real dataclasses; the real modules are restored after."""
    saved = {name: mod for name, mod in sys.modules.items() if name == "dsl.ir" or name.startswith("dsl.ir.")}
    fake = types.ModuleType("dsl.ir._node")
    fake.Node = object
    fake.node = dataclasses.dataclass(frozen=True, slots=True)
    try:
        for name in saved:
            del sys.modules[name]
        sys.modules["dsl.ir._node"] = fake
        import dsl.ir as twin  # noqa: PLC0415 - the second import is the point

        return twin
    finally:
        for name in [n for n in sys.modules if n == "dsl.ir" or n.startswith("dsl.ir.")]:
            del sys.modules[name]
        sys.modules.update(saved)
        dsl.ir = saved["dsl.ir"]


TWIN = _load_twins()


def _ir_classes() -> list[type]:
    return [obj for mod in IR_MODULES for obj in vars(mod).values()
            if isinstance(obj, type) and obj.__module__ == mod.__name__ and issubclass(obj, Node)]


CLASSES = _ir_classes()
REAL_TO_TWIN: dict[type, type] = {cls: getattr(TWIN, cls.__name__) for cls in CLASSES}
REAL_TO_TWIN[dsl.ir.Span] = TWIN.Span


def test_the_walk_finds_every_ir_class_and_the_twins_are_real_dataclasses():
    sources = "".join(Path(mod.__file__).read_text() for mod in IR_MODULES)
    declared = set(re.findall(r"^@node\nclass (\w+)\(Node\):", sources, re.M))
    assert {c.__name__ for c in CLASSES} == declared and len(declared) >= 40
    assert set(dsl.ir.__all__) >= declared  # all public
    for cls, twin in REAL_TO_TWIN.items():
        assert twin is not cls and twin.__module__ == cls.__module__
        assert "__dataclass_fields__" in twin.__dict__ and not issubclass(twin, Node)
        if cls is not dsl.ir.Span:
            assert twin.__dict__["__eq__"].__qualname__ != Node.__eq__.__qualname__


# ---- generated values -----------------------------------------------------------------------

_STRINGS = ["", "a", "b", "é", "two\nlines", "x y", "debian:bookworm"]


def _value(hint: typing.Any, rng: random.Random, depth: int) -> typing.Any:
    """A value of the (resolved) annotation ``hint``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return _value(rng.choice(args), rng, depth)
    if hint is type(None):
        return None
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_value(args[0], rng, depth + 1) for _ in range(rng.randint(0, 2 if depth < 3 else 0)))
        return tuple(_value(a, rng, depth + 1) for a in args)
    if hint is str:
        return rng.choice(_STRINGS)
    if hint is bool:
        return rng.random() < 0.5
    if hint is int:
        return rng.choice([0, 1, 7, -1, 2 ** 40])
    if hint is dsl.ir.Span:
        return dsl.ir.Span(rng.choice(["build.envd", "lib.envd"]), rng.randint(1, 9), rng.randint(1, 9))
    if isinstance(hint, type) and issubclass(hint, Node):
        return _instance(hint, rng, depth + 1)
    raise AssertionError(f"no generator for {hint!r}: extend _value")


def _hints(cls: type) -> dict[str, typing.Any]:
    return typing.get_type_hints(cls, vars(sys.modules[cls.__module__]))


def _field_values(cls: type, rng: random.Random, depth: int = 0) -> dict[str, typing.Any]:
    hints = _hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING and (depth > 3 or rng.random() < 0.25):
            out[f.name] = f.default
        else:
            out[f.name] = _value(hints[f.name], rng, depth)
    return out


def _instance(cls: type, rng: random.Random, depth: int = 0) -> typing.Any:
    return cls(**_field_values(cls, rng, depth))


def twin_of(value: typing.Any) -> typing.Any:
    """The same value made of twin classes."""
    twin = REAL_TO_TWIN.get(type(value))
    if twin is not None:
        return twin(**{f.name: twin_of(getattr(value, f.name)) for f in dataclasses.fields(value)})
    if type(value) in (tuple, list):
        return type(value)(twin_of(v) for v in value)
    return value


def _samples(cls: type, n: int = 12) -> list[typing.Any]:
    """Generated instances, plus copies differing in one field only (compare or not)."""
    rng = random.Random(f"{cls.__name__}-1")
    out = [_instance(cls, rng) for _ in range(n)]
    for base in out[:4]:
        for f in dataclasses.fields(cls):
            out.append(dataclasses.replace(base, **{f.name: _value(_hints(cls)[f.name], rng, 1)}))
    return out


def _state(obj: typing.Any) -> tuple:
    """Every field value, ``compare=False`` ones too."""
    return tuple(getattr(obj, f.name) for f in dataclasses.fields(obj))


ids = [c.__name__ for c in CLASSES]


# ---- the class --------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", CLASSES, ids=ids)
def test_class_surface_matches_the_dataclass_twin(cls):
    twin = REAL_TO_TWIN[cls]
    assert dataclasses.is_dataclass(cls)
    attrs = ("name", "type", "init", "repr", "hash", "compare", "kw_only", "metadata", "default_factory")
    ours, theirs = dataclasses.fields(cls), dataclasses.fields(twin)
    assert [tuple(getattr(f, a) for a in attrs) for f in ours] == [tuple(getattr(f, a) for a in attrs) for f in theirs]
    assert [twin_of(f.default) for f in ours] == [f.default for f in theirs]
    assert list(cls.__dataclass_fields__) == list(twin.__dataclass_fields__)
    assert repr(cls.__dataclass_params__) == repr(twin.__dataclass_params__)
    assert cls.__match_args__ == twin.__match_args__
    assert cls.__slots__ == twin.__slots__
    assert str(inspect.signature(cls)) == str(inspect.signature(twin))
    assert cls.__init__.__annotations__ == twin.__init__.__annotations__
    assert cls.__init__.__qualname__ == twin.__init__.__qualname__
    assert cls.__qualname__ == twin.__qualname__ and cls.__doc__ == twin.__doc__
    own = {k for k, v in twin.__dict__.items() if callable(v) and not k.startswith("__")}
    assert own <= set(dir(cls))  # methods of the declaration (steps_of, to_data) survive
    assert cls.__hash__ is not None and twin.__hash__ is not None


@pytest.mark.parametrize("cls", CLASSES, ids=ids)
def test_construction_matches_the_dataclass_twin(cls):
    twin = REAL_TO_TWIN[cls]
    values = _field_values(cls, random.Random(cls.__name__))
    positional = list(values.values())
    assert cls(*positional) == cls(**values)
    assert repr(twin_of(cls(*positional))) == repr(twin(*[twin_of(v) for v in positional]))
    required = [f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING]
    for target in (cls, twin):
        with pytest.raises(TypeError):
            target(*positional, "one too many")
        with pytest.raises(TypeError):
            target(**values, no_such_field=1)
        if required:
            with pytest.raises(TypeError):
                target()
        else:
            target()  # every field defaulted


# ---- instances --------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", CLASSES, ids=ids)
def test_equality_hash_and_repr_match_the_dataclass_twin(cls):
    samples = _samples(cls)
    twins = [twin_of(s) for s in samples]
    for a, ta in zip(samples, twins):
        assert repr(a) == repr(ta)
        assert hash(a) == hash(ta)
        again = cls(**{f.name: getattr(a, f.name) for f in dataclasses.fields(cls)})
        assert a == again and hash(a) == hash(again) and not (a != again)
        assert a.__eq__(object()) is NotImplemented and ta.__eq__(object()) is NotImplemented
        assert (a == 1) is False and (ta == 1) is False
        with pytest.raises(TypeError):
            a < again  # noqa: B015 - no ordering, as order=False
        with pytest.raises(TypeError):
            ta < twin_of(again)  # noqa: B015
        for b, tb in zip(samples, twins):
            assert (a == b) == (ta == tb), (a, b)
            assert (a != b) == (ta != tb), (a, b)
    assert len({repr(s) for s in samples}) > 1 or not dataclasses.fields(cls)


def test_instances_of_different_classes_with_equal_fields_are_not_equal():
    assert dsl.ir.RLangInstall() != dsl.ir.JuliaInstall()
    assert TWIN.RLangInstall() != TWIN.JuliaInstall()
    assert dsl.ir.PipPackages(("a",)) != dsl.ir.AptPackages(("a",))


@pytest.mark.parametrize("cls", CLASSES, ids=ids)
def test_instances_are_immutable_like_the_dataclass_twin(cls):
    a = _instance(cls, random.Random(cls.__name__))
    ta = twin_of(a)
    before = _state(a)
    for obj in (a, ta):
        for f in dataclasses.fields(obj):
            with pytest.raises(dataclasses.FrozenInstanceError):
                setattr(obj, f.name, "changed")
            with pytest.raises(dataclasses.FrozenInstanceError):
                delattr(obj, f.name)
        assert not hasattr(obj, "__dict__")
    # a name that is not a field: ours says FrozenInstanceError; CPython 3.11's slotted
    # dataclasses raise TypeError from super() (the documented difference in _node.py)
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.not_a_field = 1
    with pytest.raises((dataclasses.FrozenInstanceError, TypeError, AttributeError)):
        ta.not_a_field = 1
    assert _state(a) == before and not hasattr(a, "not_a_field")


@pytest.mark.parametrize("cls", CLASSES, ids=ids)
def test_pickle_and_copy_round_trip_like_the_dataclass_twin(cls):
    for a in _samples(cls, n=4):
        assert twin_of(a.__getstate__()) == twin_of(a).__getstate__()
        copies = [pickle.loads(pickle.dumps(a, protocol)) for protocol in range(pickle.HIGHEST_PROTOCOL + 1)]
        copies += [copy.copy(a), copy.deepcopy(a)]
        for b in copies:
            assert type(b) is cls and b == a and hash(b) == hash(a) and repr(b) == repr(a)
            assert _state(b) == _state(a)  # spans (compare=False) survive too
            with pytest.raises(dataclasses.FrozenInstanceError):
                setattr(b, dataclasses.fields(cls)[0].name if dataclasses.fields(cls) else "x", 1)


@pytest.mark.parametrize("cls", CLASSES, ids=ids)
def test_replace_matches_the_dataclass_twin(cls):
    rng = random.Random(f"{cls.__name__}-replace")
    hints = _hints(cls)
    for a in _samples(cls, n=3):
        ta = twin_of(a)
        before = _state(a)
        assert dataclasses.replace(a) == a and type(dataclasses.replace(a)) is cls
        for f in dataclasses.fields(cls):
            value = _value(hints[f.name], rng, 1)
            got = dataclasses.replace(a, **{f.name: value})
            want = dataclasses.replace(ta, **{f.name: twin_of(value)})
            assert type(got) is cls and getattr(got, f.name) == value
            assert repr(got) == repr(want) and twin_of(got) == want and hash(got) == hash(want)
        for obj in (a, ta):
            with pytest.raises(TypeError):
                dataclasses.replace(obj, no_such_field=1)
        assert _state(a) == before


@pytest.mark.parametrize("cls", CLASSES, ids=ids)
def test_asdict_and_astuple_match_the_dataclass_twin(cls):
    for a in _samples(cls, n=4):
        assert dataclasses.asdict(a) == dataclasses.asdict(twin_of(a))
        assert dataclasses.astuple(a) == dataclasses.astuple(twin_of(a))


def test_environment_methods_agree_with_the_twin():
    """The content hash (what identifies an environment everywhere) is the same for the twin."""
    env = _instance(dsl.ir.Environment, random.Random("env"))
    assert env.content_hash() == twin_of(env).content_hash()
    assert env.to_data() == twin_of(env).to_data()


# ---- what node() refuses ------------------------------------------------------------------


@pytest.mark.parametrize("body, message", [
    ("x: typing.ClassVar[int] = 1", "not supported"),
    ("x: list = dataclasses.field(default_factory=list)", "not supported"),
    ("x: list = []", "mutable default"),
])
def test_node_refuses_what_it_does_not_implement(body, message):
    namespace = {"Node": Node, "typing": typing, "dataclasses": dataclasses}
    exec(f"class Bad(Node):\n    {body}\n", namespace)  # noqa: S102 - a fixed test class
    with pytest.raises(TypeError, match=message):
        node(namespace["Bad"])


def test_node_refuses_other_bases():
    class Base(Node):
        __slots__ = ()

    class Child(Base):
        x: int = 1

    with pytest.raises(TypeError, match="derive from Node only"):
        node(Child)
