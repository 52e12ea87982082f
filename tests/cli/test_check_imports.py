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


# What `dsl build`'s solving path imports (the CLI command, the LLB compiler, the BuildKit
# client and its session), beyond grpc and protobuf themselves, and what it must not.
BUILD_PATH = ("dsl.cli.build", "dsl.lang", "compiler.llb", "compiler.image_config", "dsl.engines.buildkit._build",
              "dsl.engines.buildkit._solve", "dsl.engines.buildkit._connect", "dsl.engines.buildkit.session")
NOT_ON_THE_BUILD_PATH = ("docker", "kubernetes", "rich", "jinja2", "yaml", "google.protobuf.json_format",
                         "importlib.metadata", "pkg_resources")


def test_dsl_build_path_imports_only_what_a_build_needs() -> None:
    """A build is a fresh interpreter every time: each module it loads for nothing costs every
    build (json_format, for ``dsl compile --format json`` only, was ~3 ms of each)."""
    code = ("import importlib, sys\n"
            f"for name in {BUILD_PATH!r}: importlib.import_module(name)\n"
            "print('\\n'.join(sorted(sys.modules)))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    loaded = set(proc.stdout.split())
    assert {"grpc", "compiler.llb.protos.ops_pb2", "starlark"} <= loaded  # the test imports the real path
    unwanted = sorted(m for m in loaded if any(m == n or m.startswith(n + ".") for n in NOT_ON_THE_BUILD_PATH))
    assert unwanted == [], f"the dsl build path imported {unwanted}"
