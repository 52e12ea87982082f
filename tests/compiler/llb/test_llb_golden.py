"""Golden digests: the same environment gives the same bytes in any process and hash seed."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from compiler.image_config import image_config
from compiler.llb import compile_environment
from tests.compiler.llb._envs import apt_pip, dev_workspace

ROOT = Path(__file__).resolve().parents[3]
_PROBE = (
    "import hashlib; from compiler.llb import compile_environment;"
    "from tests.compiler.llb._envs import apt_pip, dev_workspace;"
    "print(*[hashlib.sha256(compile_environment(f(), caps=c).definition).hexdigest()"
    " for f in (apt_pip, dev_workspace) for c in (frozenset(), frozenset({'mergeop','diffop'}))])"
)


def _here() -> list[str]:
    return [hashlib.sha256(compile_environment(f(), caps=c).definition).hexdigest()
            for f in (apt_pip, dev_workspace) for c in (frozenset(), frozenset({"mergeop", "diffop"}))]


def test_definitions_are_identical_across_processes_and_hash_seeds() -> None:
    want = _here()
    for seed in ("0", "1", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=seed, TZ="Pacific/Kiritimati")
        out = subprocess.run([sys.executable, "-c", _PROBE], cwd=ROOT, env=env, check=True,
                             capture_output=True, text=True).stdout.split()
        assert out == want, f"PYTHONHASHSEED={seed} changed the definition"


def test_image_config_is_deterministic() -> None:
    a = json.dumps(image_config(dev_workspace(), base_config=None), sort_keys=False)
    assert a == json.dumps(image_config(dev_workspace(), base_config=None), sort_keys=False)
