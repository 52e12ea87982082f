"""``dsl check`` and ``dsl compile`` stay fast: they must not import the engines' heavy client
libraries (the Kubernetes runner's ``kubernetes`` included)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("docker", "kubernetes", "grpc")


@pytest.mark.parametrize("command", [
    ("check",),
    ("compile", "--target", "k8s", "--annotation", "team.example/owner=ml"),
    ("compile", "--target", "docker"),
    ("compile", "--target", "llb", "--format", "json"),
], ids=lambda c: "-".join(c[:3]))
def test_dsl_check_and_compile_import_no_engine_library(command: tuple[str, ...]) -> None:
    """``python -X importtime -m dsl ...`` on an example loads none of docker/kubernetes/grpc."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "dsl", *command, "examples/dev-workspace"],
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
    assert heavy == [], f"dsl {command[0]} imported {heavy}"
