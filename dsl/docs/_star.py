"""Read the builtins' signatures and docstrings from the stdlib's ``.star`` files.

The ``.star`` files are the single source of every builtin's signature, defaults and
documentation; the reference and the editor stubs are generated from what this module reads.
Starlark's ``def`` and literal syntax is a subset of Python's, so Python's own parser reads
them; nothing is executed.

A family file (``install.star``) exposes its builtins either through a
``install = struct(python = _python, ...)`` assignment (nested structs give
``runtime.docker.mount``) or, without one, as its public top-level ``def``s. Files named after
no family (e.g. ``builtins.star``) hold the global builtins (``base``, ``run``, ...).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from dsl.docs._docstring import Docstring, parse_docstring

FAMILIES = ("install", "config", "io", "runtime", "data")


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter of a builtin, as declared in Starlark."""

    name: str
    default: str | None  # Starlark source text of the default; None = required
    keyword_only: bool = False
    variadic: str = ""  # "*" or "**" for *args / **kwargs


@dataclass(frozen=True, slots=True)
class BuiltinDoc:
    """A user-visible builtin: its dotted name, signature and docstring.

    ``value`` is set (Starlark source text) for constants such as ``data.path.huggingface``;
    then ``params`` is empty and ``doc`` may be empty too.
    """

    name: str
    params: tuple[Param, ...]
    doc: Docstring
    source: str  # "stdlib/install.star:12" - where to fix the docs
    value: str | None = None
    returns_value: bool = False  # the def has ``return <expr>`` (include(), data.envd())

    @property
    def family(self) -> str:
        """The module a builtin belongs to (``install``...), or ``""`` for global builtins."""
        return self.name.split(".")[0] if "." in self.name else ""

    def signature(self) -> str:
        """``name(a, b="x", *, c=False)`` with defaults as written in Starlark."""
        parts: list[str] = []
        star_done = False
        for p in self.params:
            if p.variadic:
                parts.append(p.variadic + p.name)
                star_done = star_done or p.variadic == "*"
                continue
            if p.keyword_only and not star_done:
                parts.append("*")
                star_done = True
            parts.append(p.name if p.default is None else f"{p.name}={p.default}")
        return f"{self.name}({', '.join(parts)})"


def stdlib_dir() -> Path:
    """The directory holding the shipped ``stdlib/*.star`` files."""
    import stdlib

    return Path(stdlib.__file__).parent


def read_stdlib(directory: Path | None = None) -> tuple[BuiltinDoc, ...]:
    """Every user-visible builtin documented in ``directory`` (default: the shipped stdlib).

    Args:
        directory: Where the ``.star`` files are.

    Returns:
        The builtins sorted by dotted name (global builtins first).

    Raises:
        ValueError: a ``.star`` file cannot be parsed or names one builtin twice.
    """
    directory = directory or stdlib_dir()
    seen: dict[str, BuiltinDoc] = {}
    for path in sorted(directory.glob("*.star")):
        for doc in _read_file(path, directory.name):
            if doc.name in seen:
                raise ValueError(f"{doc.source}: {doc.name} is also defined at {seen[doc.name].source}")
            seen[doc.name] = doc
    return tuple(sorted(seen.values(), key=lambda d: (d.family != "", d.name)))


def read_family_docs(directory: Path | None = None) -> dict[str, str]:
    """The module docstring of each family (``""`` = the global builtins), for section intros.

    Args:
        directory: Where the ``.star`` files are (default: the shipped stdlib).

    Returns:
        Family name to text; several files of one family have their texts joined.
    """
    directory = directory or stdlib_dir()
    out: dict[str, list[str]] = {}
    for path in sorted(directory.glob("*.star")):
        tree = _parse(path, path.read_text(encoding="utf-8"))
        text = ast.get_docstring(tree)
        if text:
            family = next((r for r in _roots(tree)), "" if path.stem not in FAMILIES else path.stem)
            out.setdefault(family, []).append(text)
    return {k: "\n\n".join(v) for k, v in out.items()}


def _parse(path: Path, source: str) -> ast.Module:
    try:
        return ast.parse(source, filename=str(path))
    except SyntaxError as exc:
        raise ValueError(f"{path}:{exc.lineno}: cannot read builtin docs: {exc.msg}") from exc


def _structs(tree: ast.Module) -> dict[str, ast.Call]:
    return {
        n.targets[0].id: n.value
        for n in tree.body
        if isinstance(n, ast.Assign)
        and len(n.targets) == 1
        and isinstance(n.targets[0], ast.Name)
        and _is_struct(n.value)
    }


def _roots(tree: ast.Module) -> list[str]:
    """Struct assignments no other struct refers to: the names a file exports."""
    structs = _structs(tree)
    referenced = {
        kw.value.id
        for call in structs.values()
        for node in ast.walk(call)
        if isinstance(node, ast.Call)
        for kw in node.keywords
        if isinstance(kw.value, ast.Name)
    }
    return [name for name in structs if name not in referenced and not name.startswith("_")]


def _read_file(path: Path, dirname: str) -> list[BuiltinDoc]:
    source = path.read_text(encoding="utf-8")
    tree = _parse(path, source)
    label = f"{dirname}/{path.name}"
    defs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    structs = _structs(tree)
    out: list[BuiltinDoc] = []
    roots = _roots(tree)
    for root in roots:
        out.extend(_walk_struct(root, structs[root], defs, structs, source, label))
    if not roots:
        prefix = f"{path.stem}." if path.stem in FAMILIES else ""
        for name, node in defs.items():
            if not name.startswith("_"):
                out.append(_from_def(prefix + name, node, source, label))
    return out


def _is_struct(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("struct", "module")


def _walk_struct(
    prefix: str,
    call: ast.Call,
    defs: dict[str, ast.FunctionDef],
    structs: dict[str, ast.Call],
    source: str,
    label: str,
) -> list[BuiltinDoc]:
    out: list[BuiltinDoc] = []
    for kw in call.keywords:
        if kw.arg is None or kw.arg.startswith("_"):
            continue
        name, value = f"{prefix}.{kw.arg}", kw.value
        if isinstance(value, ast.Name) and value.id in defs:
            out.append(_from_def(name, defs[value.id], source, label))
        elif isinstance(value, ast.Name) and value.id in structs:
            out.extend(_walk_struct(name, structs[value.id], defs, structs, source, label))
        elif _is_struct(value):
            out.extend(_walk_struct(name, value, defs, structs, source, label))  # type: ignore[arg-type]
        else:
            text = ast.get_source_segment(source, value) or ast.unparse(value)
            out.append(BuiltinDoc(name, (), Docstring(), f"{label}:{value.lineno}", value=text))
    return out


def _from_def(name: str, node: ast.FunctionDef, source: str, label: str) -> BuiltinDoc:
    a = node.args
    positional = [*a.posonlyargs, *a.args]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(a.defaults)) + list(a.defaults)
    params = [Param(p.arg, _text(source, d)) for p, d in zip(positional, defaults)]
    if a.vararg:
        params.append(Param(a.vararg.arg, None, variadic="*"))
    params += [Param(p.arg, _text(source, d), keyword_only=True) for p, d in zip(a.kwonlyargs, a.kw_defaults)]
    if a.kwarg:
        params.append(Param(a.kwarg.arg, None, variadic="**"))
    # Private parameters (``**_legacy`` catch-alls for old envd spellings) are not API.
    params = [p for p in params if not p.name.startswith("_")]
    doc = parse_docstring(ast.get_docstring(node, clean=False))
    returns = any(isinstance(n, ast.Return) and n.value is not None for n in ast.walk(node))
    return BuiltinDoc(name, tuple(params), doc, f"{label}:{node.lineno}", returns_value=returns)


def _text(source: str, node: ast.expr | None) -> str | None:
    if node is None:
        return None
    return ast.get_source_segment(source, node) or ast.unparse(node)
