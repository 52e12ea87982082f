"""The CLI reaches engines through their public names only (the runner/builder interface)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _private_engine_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        modules = []
        if isinstance(node, ast.ImportFrom) and node.module:
            modules = [node.module]
        elif isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
        for module in modules:
            parts = module.split(".")
            if parts[:2] == ["dsl", "engines"] and any(p.startswith("_") for p in parts[2:]):
                found.append(f"{path.relative_to(REPO)}:{node.lineno}: {module}")
    return found


def test_cli_imports_no_private_engine_module():
    bad = [hit for path in sorted((REPO / "dsl" / "cli").glob("*.py")) for hit in _private_engine_imports(path)]
    assert bad == []


@pytest.mark.parametrize("package", ["dsl.engines.buildkit"])
def test_every_public_name_resolves(package):
    module = importlib.import_module(package)
    for name in module.__all__:
        assert getattr(module, name) is not None, name
