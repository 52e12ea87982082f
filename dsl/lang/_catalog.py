"""The catalog of builtins, read from the stdlib's Starlark sources.

Starlark ``def`` syntax is a subset of Python's, so the stdlib files are read with Python's
``ast``: each public builtin's name (from the export ``struct`` of its family file), its
parameters with their default source text, and its docstring. ``dsl reference`` and
``dsl stubs`` render this; the evaluator uses it to name builtins in error messages.
"""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass
from importlib import resources

# family file -> how its exports are found: a struct variable, or top-level defs (universe)
FAMILIES: tuple[tuple[str, str | None], ...] = (
    ("universe.star", None),
    ("install.star", "install"),
    ("config.star", "config"),
    ("io.star", "io"),
    ("runtime.star", "runtime"),
    ("data.star", "data"),
)
HOST_FILES = ("starlark.star",)  # plain-Starlark helpers the host provides (print)


@dataclass(frozen=True)
class Param:
    """One parameter: ``default`` is its Starlark source text, ``None`` when required.

    ``kind`` is ``"normal"``, ``"*args"`` or ``"**kwargs"``; parameters whose name starts
    with ``_`` are compatibility catch-alls and are not part of the documented signature.
    """

    name: str
    default: str | None
    kind: str = "normal"


@dataclass(frozen=True)
class Builtin:
    """A public builtin: ``name`` is what users write (``install.python_packages``)."""

    name: str
    file: str
    function: str
    params: tuple[Param, ...]
    doc: str

    @property
    def deprecated(self) -> bool:
        """True when the docstring's summary starts with ``Deprecated``."""
        return self.doc.startswith("Deprecated")


@dataclass(frozen=True)
class Constant:
    """A public non-function value, e.g. ``data.path.huggingface``."""

    name: str
    value: str


def stdlib_source(file: str) -> str:
    """The text of one stdlib file shipped in the ``stdlib`` package."""
    return resources.files("stdlib").joinpath(file).read_text(encoding="utf-8")


def _params(fn: ast.FunctionDef, source: str) -> tuple[Param, ...]:
    def text(node: ast.expr | None) -> str | None:
        return None if node is None else ast.get_source_segment(source, node) or ast.unparse(node)

    args = fn.args
    defaults = [None] * (len(args.args) - len(args.defaults)) + list(args.defaults)
    out = [Param(a.arg, text(d)) for a, d in zip(args.args, defaults)]
    if args.vararg:
        out.append(Param(args.vararg.arg, None, "*args"))
    out += [Param(a.arg, text(d)) for a, d in zip(args.kwonlyargs, args.kw_defaults)]
    if args.kwarg:
        out.append(Param(args.kwarg.arg, None, "**kwargs"))
    return tuple(out)


def _walk_struct(prefix: str, call: ast.expr, defs: dict[str, ast.FunctionDef], file: str, source: str, out: list) -> None:
    if isinstance(call, ast.Name) and call.id in defs:
        fn = defs[call.id]
        out.append(Builtin(prefix, file, fn.name, _params(fn, source), ast.get_docstring(fn) or ""))
    elif isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "struct":
        for kw in call.keywords:
            _walk_struct(f"{prefix}.{kw.arg}", kw.value, defs, file, source, out)
    elif isinstance(call, ast.Constant):
        out.append(Constant(prefix, str(call.value)))


@functools.cache
def catalog() -> tuple[Builtin | Constant, ...]:
    """Every public builtin and constant, in stdlib file order."""
    out: list[Builtin | Constant] = []
    for file, export in FAMILIES:
        source = stdlib_source(file)
        tree = ast.parse(source, filename=file)
        defs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
        if export is None:
            for fn in defs.values():
                if not fn.name.startswith("_"):
                    out.append(Builtin(fn.name, file, fn.name, _params(fn, source), ast.get_docstring(fn) or ""))
            continue
        assigns = {t.id: n.value for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
        # resolve struct members that name other top-level structs (data.path)
        def expand(node: ast.expr) -> ast.expr:
            if isinstance(node, ast.Name) and node.id in assigns and node.id not in defs:
                return expand(assigns[node.id])
            if isinstance(node, ast.Call):
                for kw in node.keywords:
                    kw.value = expand(kw.value)
            return node

        _walk_struct(export, expand(assigns[export]), defs, file, source, out)
    return tuple(out)


def builtins() -> tuple[Builtin, ...]:
    """The public builtin functions (no constants)."""
    return tuple(b for b in catalog() if isinstance(b, Builtin))


@functools.cache
def public_names() -> dict[tuple[str, str], str]:
    """``("@stdlib/FILE", function)`` -> public name, for error messages and spans."""
    return {(f"@stdlib/{b.file}", b.function): b.name for b in builtins()}


def prelude_names() -> dict[str, tuple[str, ...]]:
    """stdlib file -> the names a build file sees predeclared from it."""
    names: dict[str, tuple[str, ...]] = {}
    for file, export in FAMILIES:
        names[file] = (export,) if export else tuple(b.name for b in builtins() if b.file == file)
    names["starlark.star"] = ("print",)
    return names
