"""``dsl reference`` and ``dsl stubs``: generated from the stdlib, complete, and kept current."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from dsl.docs import MARKER, STUB_NAME, docstring_of, parse_docstring
from dsl.lang import LANGUAGE, Builtin, builtins, catalog

REPO = Path(__file__).resolve().parents[2]


def dsl(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """Run the real CLI."""
    return subprocess.run([sys.executable, "-m", "dsl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def registered_builtins() -> set[str]:
    """The dotted names of every builtin the evaluator registers (its primitive registry)."""
    import dsl.lang  # noqa: F401  (importing the language registers every family's primitives)
    from dsl.lang._registry import REGISTRY

    return set(REGISTRY)


def documented_functions() -> set[str]:
    """Builtins the stdlib documents as functions (constants like data.path.* excluded)."""
    return {b.name for b in builtins()}


def test_every_registered_builtin_is_documented() -> None:
    """No builtin a user can call is missing from the reference and stubs, and none is made up."""
    documented = documented_functions()
    registered = registered_builtins()
    assert registered - documented == set(), "registered but undocumented"
    assert documented - registered == set(), "documented but not registered"


def test_every_builtin_has_a_summary_and_documents_its_arguments() -> None:
    """A docstring per builtin with a summary line and an ``Args:`` entry per parameter."""
    problems = []
    for b in (*builtins(), *LANGUAGE):
        doc = docstring_of(b)
        if not doc.summary:
            problems.append(f"{b.source}: {b.name} has no docstring summary")
        for p in b.public_params:
            if doc.arg(p.name) is None:
                problems.append(f"{b.source}: {b.name}: argument {p.name!r} is not in Args:")
    assert problems == []


def test_every_required_argument_has_a_precise_type() -> None:
    """Stub and reference types come from the docstrings: no required argument is ``Any``."""
    untyped = [f"{b.source}: {b.name}({p.name})" for b in builtins() for p in b.public_params
               if p.required and (docstring_of(b).arg(p.name).type or "Any") == "Any"]
    assert untyped == []


def test_committed_reference_is_up_to_date() -> None:
    """docs/reference.md is exactly what ``dsl reference`` prints (regenerate it if not)."""
    proc = dsl("reference")
    assert proc.returncode == 0, proc.stderr
    committed = (REPO / "docs" / "reference.md").read_text(encoding="utf-8")
    assert proc.stdout == committed, "docs/reference.md is stale: run `dsl reference > docs/reference.md`"


def test_reference_shows_every_builtin_with_its_signature() -> None:
    """Each builtin has a heading and its signature with defaults as written in Starlark."""
    text = dsl("reference").stdout
    for b in (*catalog(), *LANGUAGE):
        assert f"### `{b.name}`" in text
        if isinstance(b, Builtin):
            assert b.signature() in text
    assert 'install.python_packages(name=' in text


def _stub_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()

    def walk(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, ast.FunctionDef):
                names.add(prefix + node.name)
            elif isinstance(node, ast.ClassDef):
                walk(node.body, f"{prefix}{node.name}.")
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names.add(prefix + node.target.id)

    walk(tree.body, "")
    return names


def test_stubs_declare_every_builtin_with_docstrings(tmp_path: Path) -> None:
    """``dsl stubs DIR`` writes a valid ``__builtins__.pyi`` declaring every builtin, documented."""
    proc = dsl("stubs", str(tmp_path / "typings"))
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "typings" / STUB_NAME).read_text(encoding="utf-8")
    assert text.startswith(MARKER)
    tree = ast.parse(text)
    declared = _stub_names(tree)
    assert {b.name for b in catalog()} <= declared
    assert {"load", "fail"} <= declared  # Starlark's own names Python lacks
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            assert ast.get_docstring(node), f"{node.name} has no docstring"


def test_stub_signatures_match_the_stdlib(tmp_path: Path) -> None:
    """Parameter names, order and optionality in the stubs are the stdlib's."""
    dsl("stubs", str(tmp_path))
    tree = ast.parse((tmp_path / STUB_NAME).read_text(encoding="utf-8"))
    defs: dict[str, ast.FunctionDef] = {}

    def walk(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, ast.FunctionDef):
                defs[prefix + node.name] = node
            elif isinstance(node, ast.ClassDef):
                walk(node.body, f"{prefix}{node.name}.")

    walk(tree.body, "")
    for b in (*builtins(), *LANGUAGE):
        args = defs[b.name].args
        plain = [a.arg for a in args.args]
        assert plain + [a.arg for a in args.kwonlyargs] == [p.name for p in b.public_params if not p.variadic], b.name
        required = len(plain) - len(args.defaults)
        assert plain[:required] == [p.name for p in b.public_params if p.required]
        for p in b.public_params:  # annotations are the docstrings' types
            node = next(a for a in (*args.args, *args.kwonlyargs, args.vararg, args.kwarg) if a and a.arg == p.name)
            assert node.annotation is not None and ast.unparse(node.annotation) == docstring_of(b).arg(p.name).type


def test_stubs_never_overwrite_a_foreign_file(tmp_path: Path) -> None:
    """A ``__builtins__.pyi`` the user wrote is kept (exit 2 with a hint) unless ``--force``."""
    mine = tmp_path / STUB_NAME
    mine.write_text("x: int\n", encoding="utf-8")
    proc = dsl("stubs", str(tmp_path))
    assert proc.returncode == 2
    assert "--force" in proc.stderr and "Traceback" not in proc.stderr
    assert mine.read_text(encoding="utf-8") == "x: int\n"
    assert dsl("stubs", str(tmp_path), "--force").returncode == 0
    assert mine.read_text(encoding="utf-8").startswith(MARKER)
    assert dsl("stubs", str(tmp_path)).returncode == 0  # our own file is refreshed freely


def test_stubs_refuse_a_file_as_directory(tmp_path: Path) -> None:
    """A path that is a file is a usage error, not a traceback."""
    f = tmp_path / "notadir"
    f.write_text("keep", encoding="utf-8")
    proc = dsl("stubs", str(f))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f.read_text(encoding="utf-8") == "keep"


def test_stubs_under_a_file_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    f = tmp_path / "notadir"
    f.write_text("keep", encoding="utf-8")
    proc = dsl("stubs", str(f / "sub"))
    assert proc.returncode == 2 and "cannot write" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert f.read_text(encoding="utf-8") == "keep"


def test_stubs_next_to_a_fifo_of_the_same_name_do_not_hang(tmp_path: Path) -> None:
    """Checking whether the existing file is ours opened it: a FIFO waited for a writer forever."""
    import os

    os.mkfifo(tmp_path / STUB_NAME)
    proc = dsl("stubs", str(tmp_path))
    assert proc.returncode == 2 and "not generated by dsl stubs" in proc.stderr


@pytest.mark.parametrize(
    ("text", "summary", "args"),
    [
        ('Install packages.\n\n    Args:\n        name (list[str]): The names,\n            one per item.\n        dev: A flag.\n    ',
         "Install packages.", [("name", "list[str]", "The names, one per item."), ("dev", None, "A flag.")]),
        ("Only a summary.", "Only a summary.", []),
    ],
)
def test_docstring_parser(text: str, summary: str, args: list[tuple]) -> None:
    """Google-style docstrings: summary, typed and untyped Args entries, continuation lines."""
    doc = parse_docstring(text)
    assert doc.summary == summary
    assert [(a.name, a.type, a.text) for a in doc.args] == args
