"""Every example's build file compiles to a well-formed definition in both graph shapes.

No example may be skipped by the image builder: each one compiles (an example that needs a
builtin the builder refuses is a broken example, not a pass).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler.image_config import image_config
from compiler.llb import compile_environment
from tests.compiler.llb._decode import decode

EXAMPLES = sorted(p.parent for p in (Path(__file__).resolve().parents[3] / "examples").glob("*/build.envd"))
_PARALLEL_CAPS = {"mergeop", "diffop"}


def test_the_examples_are_found() -> None:
    assert len(EXAMPLES) >= 9, EXAMPLES


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
@pytest.mark.parametrize("caps", [frozenset(), frozenset(_PARALLEL_CAPS)], ids=["sequential", "parallel"])
def test_example_compiles_to_valid_llb(example: Path, caps: frozenset[str]) -> None:
    from dsl.cli._load import load_environment

    env = load_environment(str(example), None)
    res = compile_environment(env, caps=caps)  # a CompileError here fails the example
    dec = decode(res.definition)
    assert dec.sources()[0] == f"docker-image://{res.base_image}"
    declared = set().union(*(set(dec.definition.metadata[d].caps) for d in dec.digests))
    assert declared == set(res.caps_used)
    if not caps:  # a builder without merge/diff (dockerd 20.10) must be able to run it
        assert not declared & _PARALLEL_CAPS, declared
    assert image_config(env, base_config=None)["config"]["Labels"]["dev.envdsl.env.name"] == env.name
