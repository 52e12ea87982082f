"""``dsl check`` stays fast: it must not import the engines' heavy client libraries."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("docker", "kubernetes", "grpc")


def test_dsl_check_imports_no_engine_library() -> None:
    """``python -X importtime -m dsl check`` on an example loads none of docker/kubernetes/grpc."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "dsl", "check", "examples/apt-pip"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    # importtime lines: "import time: self [us] | cumulative | imported package"
    imported = {
        line.rsplit("|", 1)[-1].strip()
        for line in proc.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert len(imported) > 20, "no -X importtime output: the check would prove nothing"
    heavy = sorted(m for m in imported if m.split(".")[0] in HEAVY)
    assert heavy == [], f"dsl check imported {heavy}"
