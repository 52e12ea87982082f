"""Every example's build file compiles to a well-formed definition in both graph shapes."""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler.image_config import image_config
from compiler.llb import compile_environment
from dsl.errors import CompileError
from tests.compiler.llb._decode import decode

EXAMPLES = sorted(p.parent for p in (Path(__file__).resolve().parents[3] / "examples").glob("*/build.envd"))


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
@pytest.mark.parametrize("caps", [frozenset(), frozenset({"mergeop", "diffop"})], ids=["sequential", "parallel"])
def test_example_compiles_to_valid_llb(example: Path, caps: frozenset[str]) -> None:
    from dsl.cli._load import load_environment

    env = load_environment(str(example), None)
    try:
        res = compile_environment(env, caps=caps)
    except CompileError as exc:  # only the documented unsupported builtins may fail
        assert "is not supported by the image builder yet" in str(exc)
        return
    dec = decode(res.definition)
    assert dec.sources()[0] == f"docker-image://{res.base_image}"
    declared = set().union(*(set(dec.definition.metadata[d].caps) for d in dec.digests))
    assert declared == set(res.caps_used)
    assert image_config(env, base_config=None)["config"]["Labels"]["dev.envdsl.env.name"] == env.name
