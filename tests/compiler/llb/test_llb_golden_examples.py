"""Locked golden digests for two examples, in both graph shapes.

A change to the compiler that changes what BuildKit builds changes these digests; that must be
a reviewed decision, so the golden files are refreshed only with ``DSL_UPDATE_GOLDEN=1`` and
the diff (which op changed, by name) is read before committing. Renames alone never show up
here: names live in metadata, outside the digests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from compiler.llb import compile_environment
from dsl.cli._load import load_environment
from tests.compiler.llb._decode import decode

ROOT = Path(__file__).resolve().parents[3]
GOLDEN = ROOT / "tests" / "golden" / "llb"
CASES = ("apt-pip", "data-science")  # data-science: the two shapes differ
SHAPES = {"sequential": frozenset(), "parallel": frozenset({"mergeop", "diffop"})}


def _digests(case: str) -> dict[str, dict[str, object]]:
    env = load_environment(str(ROOT / "examples" / case))
    out: dict[str, dict[str, object]] = {}
    for shape, caps in SHAPES.items():
        decoded = decode(compile_environment(env, caps=caps).definition)
        out[shape] = {
            "terminal": decoded.digests[-1],
            "ops": [f"{d} {decoded.name(d)}".rstrip() for d in decoded.digests[:-1]],
        }
    return out


@pytest.mark.parametrize("case", CASES)
def test_example_digests_match_the_golden_file(case: str) -> None:
    path = GOLDEN / f"{case}.json"
    got = json.dumps(_digests(case), indent=2, sort_keys=True) + "\n"
    if os.environ.get("DSL_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(got)
    assert path.is_file(), f"no golden digests for {case}; run with DSL_UPDATE_GOLDEN=1 and review them"
    assert got == path.read_text(), f"LLB digests of {case} changed; review, then refresh with DSL_UPDATE_GOLDEN=1"


def test_golden_digests_hold_under_other_hash_seeds_and_timezones() -> None:
    probe = (
        "import json; from tests.compiler.llb.test_llb_golden_examples import _digests, CASES;"
        "print(json.dumps({c: _digests(c) for c in CASES}, sort_keys=True))"
    )
    want = json.loads((subprocess.run([sys.executable, "-c", probe], cwd=ROOT, check=True, capture_output=True, text=True,
                                      env=dict(os.environ, PYTHONHASHSEED="0", TZ="UTC")).stdout))
    for seed, tz in (("1", "Pacific/Kiritimati"), ("4242", "America/St_Johns")):
        env = dict(os.environ, PYTHONHASHSEED=seed, TZ=tz)
        got = json.loads(subprocess.run([sys.executable, "-c", probe], cwd=ROOT, check=True, capture_output=True,
                                        text=True, env=env).stdout)
        assert got == want, f"PYTHONHASHSEED={seed} TZ={tz} changed the digests"
    for case in CASES:
        assert want[case] == json.loads((GOLDEN / f"{case}.json").read_text())
