"""The catalog of builtins: the one reader of the stdlib's Starlark sources.

Starlark ``def`` syntax is a subset of Python's, so the stdlib files are read with Python's
``ast`` (nothing is executed): each public builtin's name (from the export ``struct`` of its
family file, or the public ``def``s of a file without one), its parameters with their default
source text, its docstring, source line and whether it returns a value; plus each file's
module docstring. The evaluator uses the names (the prelude, error messages); ``dsl
reference`` and ``dsl stubs`` render the rest. :data:`LANGUAGE` documents the two names
Starlark itself gives build files that Python lacks (``load``, ``fail``).
"""

from __future__ import annotations

import ast
import functools
import re
from dataclasses import dataclass
from importlib import resources

# stdlib file -> how its exports are found: a struct variable, or its public defs (None)
FAMILIES: tuple[tuple[str, str | None], ...] = (
    ("universe.star", None),
    ("starlark.star", None),  # plain-Starlark helpers the host provides (print)
    ("install.star", "install"),
    ("config.star", "config"),
    ("io.star", "io"),
    ("runtime.star", "runtime"),
    ("data.star", "data"),
)
_VARIADIC = {"*args": "*", "**kwargs": "**"}
_PUBLIC_DEF = re.compile(r"^def ([A-Za-z]\w*)\s*\(", re.M)


@dataclass(frozen=True)
class Param:
    """One parameter: ``default`` is its Starlark source text, ``None`` when required.

    ``kind`` is ``"normal"``, ``"*args"`` or ``"**kwargs"`` (the stdlib declares no keyword-only
    parameters: envd's builtins take every argument by name or position); parameters whose
    name starts with ``_`` are compatibility catch-alls and are not part of the documented
    signature.
    """

    name: str
    default: str | None
    kind: str = "normal"

    @property
    def variadic(self) -> str:
        """``"*"`` or ``"**"`` for ``*args``/``**kwargs``, else ``""``."""
        return _VARIADIC.get(self.kind, "")

    @property
    def required(self) -> bool:
        """True for a normal parameter without a default."""
        return self.default is None and self.kind == "normal"


@dataclass(frozen=True)
class Builtin:
    """A public builtin: ``name`` is what users write (``install.python_packages``).

    ``file``/``line`` locate its ``def`` in ``stdlib/`` (``file`` is ``""`` for Starlark's own
    :data:`LANGUAGE` names); ``doc`` is the cleaned docstring; ``returns`` says whether the
    function returns a value.
    """

    name: str
    file: str
    function: str
    params: tuple[Param, ...]
    doc: str
    line: int = 0
    returns: bool = False

    @property
    def deprecated(self) -> bool:
        """True when the docstring's summary starts with ``Deprecated``."""
        return self.doc.startswith("Deprecated")

    @property
    def family(self) -> str:
        """The module a builtin belongs to (``install``...), or ``""`` for global builtins."""
        return self.name.split(".")[0] if "." in self.name else ""

    @property
    def source(self) -> str:
        """Where to fix its documentation, e.g. ``stdlib/install.star:12``."""
        return f"stdlib/{self.file}:{self.line}" if self.file else "Starlark language"

    @property
    def public_params(self) -> tuple[Param, ...]:
        """The documented parameters (without ``_``-prefixed catch-alls)."""
        return tuple(p for p in self.params if not p.name.startswith("_"))

    def signature(self) -> str:
        """``name(a, b="x", *args, **kwargs)`` with defaults as written in Starlark."""
        parts = [p.variadic + p.name if p.variadic else p.name if p.default is None else f"{p.name}={p.default}"
                 for p in self.public_params]
        return f"{self.name}({', '.join(parts)})"


@dataclass(frozen=True)
class Constant:
    """A public non-function value, e.g. ``data.path.huggingface``; ``literal`` is its source text."""

    name: str
    value: str
    file: str = ""
    line: int = 0
    literal: str = ""

    @property
    def family(self) -> str:
        """The module the constant belongs to."""
        return self.name.split(".")[0] if "." in self.name else ""

    @property
    def source(self) -> str:
        """Where it is defined, e.g. ``stdlib/data.star:12``."""
        return f"stdlib/{self.file}:{self.line}"


LANGUAGE: tuple[Builtin, ...] = (
    Builtin(
        "load", "", "load",
        (Param("module", None), Param("symbols", None, "*args"), Param("aliases", None, "**kwargs")),
        "Starlark's load statement: bind names defined in another .star or .envd file.\n\n"
        "The path is relative to the loading file (then the working directory, as in envd, when\n"
        "that lies inside the build file's directory). Loads stay inside the build file's\n"
        "directory tree (a file of an include()d repository: inside that repository): an\n"
        "absolute path, a '..' leading out, or a symbolic link pointing out is an error. A file\n"
        "is evaluated once however often it is loaded, and load cycles are reported.\n\n"
        "Args:\n"
        "    module (str): Path of the file to load.\n"
        "    *symbols (str): Names to bind under the same name.\n"
        "    **aliases (str): New name = name in the loaded file.",
    ),
    Builtin(
        "fail", "", "fail", (Param("args", None, "*args"),),
        "Stop the evaluation with an error whose message is the arguments.\n\n"
        "Args:\n"
        "    *args (Any): Values joined with spaces into the message.\n\n"
        "Returns:\n"
        "    NoReturn: It never returns.",
    ),
)


@functools.cache
def stdlib_source(file: str) -> str:
    """The text of one stdlib file shipped in the ``stdlib`` package."""
    return resources.files("stdlib").joinpath(file).read_text(encoding="utf-8")


class _Reader:
    """One stdlib file's syntax tree and the source text of its nodes."""

    def __init__(self, file: str, source: str) -> None:
        self.file = file
        self.tree = ast.parse(source, filename=file)
        # ast offsets are UTF-8 byte columns; slicing bytes by line start keeps this linear
        # (ast.get_source_segment splits the whole file again for every node)
        self.data = source.encode()
        self.starts = [0]
        for line in self.data.splitlines(keepends=True):
            self.starts.append(self.starts[-1] + len(line))
        self.defs = {n.name: n for n in self.tree.body if isinstance(n, ast.FunctionDef)}

    def text(self, node: ast.expr | None) -> str | None:
        if node is None:
            return None
        start = self.starts[node.lineno - 1] + node.col_offset
        end = self.starts[(node.end_lineno or node.lineno) - 1] + (node.end_col_offset or node.col_offset)
        return self.data[start:end].decode()

    def builtin(self, name: str, fn: ast.FunctionDef) -> Builtin:
        args = fn.args
        defaults = [None] * (len(args.args) - len(args.defaults)) + list(args.defaults)
        params = [Param(a.arg, self.text(d)) for a, d in zip(args.args, defaults)]
        if args.vararg:
            params.append(Param(args.vararg.arg, None, "*args"))
        params += [Param(a.arg, self.text(d)) for a, d in zip(args.kwonlyargs, args.kw_defaults)]
        if args.kwarg:
            params.append(Param(args.kwarg.arg, None, "**kwargs"))
        returns = any(isinstance(n, ast.Return) and n.value is not None for n in ast.walk(fn))
        return Builtin(name, self.file, fn.name, tuple(params), ast.get_docstring(fn) or "", fn.lineno, returns)

    def walk_struct(self, prefix: str, node: ast.expr, assigns: dict[str, ast.expr], out: list) -> None:
        if isinstance(node, ast.Name) and node.id in self.defs:
            out.append(self.builtin(prefix, self.defs[node.id]))
        elif isinstance(node, ast.Name) and node.id in assigns:  # a struct defined earlier (data.path)
            self.walk_struct(prefix, assigns[node.id], assigns, out)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "struct":
            for kw in node.keywords:
                if kw.arg and not kw.arg.startswith("_"):
                    self.walk_struct(f"{prefix}.{kw.arg}", kw.value, assigns, out)
        elif isinstance(node, ast.Constant):
            out.append(Constant(prefix, str(node.value), self.file, node.lineno, self.text(node) or ""))

    def entries(self, export: str | None) -> list[Builtin | Constant]:
        if export is None:
            return [self.builtin(name, fn) for name, fn in self.defs.items() if not name.startswith("_")]
        assigns = {t.id: n.value for n in self.tree.body if isinstance(n, ast.Assign)
                   for t in n.targets if isinstance(t, ast.Name)}
        out: list[Builtin | Constant] = []
        self.walk_struct(export, assigns[export], assigns, out)
        return out


@functools.cache
def _read(file: str) -> _Reader:
    return _Reader(file, stdlib_source(file))


@functools.cache
def catalog() -> tuple[Builtin | Constant, ...]:
    """Every public builtin and constant of the stdlib, in stdlib file order."""
    return tuple(entry for file, export in FAMILIES for entry in _read(file).entries(export))


def builtins() -> tuple[Builtin, ...]:
    """The public builtin functions of the stdlib (no constants, no :data:`LANGUAGE` names)."""
    return tuple(b for b in catalog() if isinstance(b, Builtin))


def module_docs() -> dict[str, str]:
    """Each family's module docstring (``""`` = the global builtins), files of one family joined."""
    out: dict[str, list[str]] = {}
    for file, export in FAMILIES:
        text = ast.get_docstring(_read(file).tree)
        if text:
            out.setdefault(export or "", []).append(text)
    return {family: "\n\n".join(texts) for family, texts in out.items()}


@functools.cache
def public_names() -> dict[tuple[str, str], str]:
    """``("@stdlib/FILE", function)`` -> public name, for error messages and spans."""
    return {(f"@stdlib/{b.file}", b.function): b.name for b in builtins()}


@functools.cache
def prelude_names() -> dict[str, tuple[str, ...]]:
    """stdlib file -> the names a build file sees predeclared from it.

    Every evaluation needs these, so they are read with a regular expression rather than
    by parsing the files (the same public top-level ``def``s :func:`catalog` reports).
    """
    return {file: (export,) if export else tuple(_PUBLIC_DEF.findall(stdlib_source(file)))
            for file, export in FAMILIES}
