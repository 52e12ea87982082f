"""The committed ``*_pb2.py`` modules are exactly what ``scripts/gen-protos`` makes from the
``.proto`` files (so nobody edits generated code or forgets to regenerate)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_committed_pb2_match_their_proto_files(tmp_path: Path) -> None:
    out = tmp_path / "gen"
    out.mkdir()
    subprocess.run([sys.executable, str(ROOT / "scripts" / "gen-protos"), "--out", str(out)],
                   check=True, cwd=ROOT)
    generated = sorted(p.relative_to(out) for p in out.rglob("*.py"))
    assert Path("compiler/llb/protos/ops_pb2.py") in generated
    for rel in generated:
        committed = ROOT / rel
        assert committed.exists(), f"{rel} is not committed; run scripts/gen-protos"
        assert committed.read_bytes() == (out / rel).read_bytes(), f"{rel} is stale; run scripts/gen-protos"


def test_every_proto_has_its_generated_module() -> None:
    for proto in ROOT.rglob("protos/*.proto"):
        if any(part.startswith(".") for part in proto.relative_to(ROOT).parts):
            continue
        assert proto.with_name(proto.stem + "_pb2.py").exists(), f"{proto} was never generated"
