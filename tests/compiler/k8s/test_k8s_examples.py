"""Every example (every environment function in it) compiles to valid Kubernetes objects for
every workload kind, and two examples are locked as golden GitOps trees.

Golden trees live in ``tests/golden/<case>/k8s/`` (the default bare Pod) and
``k8s-<workload>/`` (one case each for StatefulSet and Deployment); they are compared with
``dsl compile -o DIR --check`` itself and refreshed only with ``DSL_UPDATE_GOLDEN=1`` (review
the diff).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from compiler.k8s import WORKLOADS, compile_k8s
from dsl.cli._emit_runtime import k8s_options
from dsl.cli._load import load_environment
from dsl.ir import Environment

REPO = Path(__file__).resolve().parents[3]
GOLDEN = REPO / "tests" / "golden"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGdvbGRlbi10ZXN0LWtleS1ub3QtYS1yZWFsLW9uZQ golden@test\n"
PINNED = "registry.example/envs/{name}@sha256:" + "ab" * 32
GOLDEN_TREES = [("dev-workspace", "pod"), ("gpu-training", "pod"),
                ("dev-workspace", "statefulset"), ("gpu-training", "deployment")]
WORKLOAD_KINDS = {"pod": "Pod", "statefulset": "StatefulSet", "deployment": "Deployment"}


def environment_functions(example: Path) -> list[str]:
    """Top-level functions that call base(): the environments a build file defines."""
    src = (example / "build.envd").read_text()
    return [m[1] for m in re.finditer(r"^def (\w+)\(\):\n((?:[ \t]+.*\n|\n)*)", src, re.M) if "base(" in m[2]]


EXAMPLE_TARGETS = [
    pytest.param(ex.name, fn, id=f"{ex.name}:{fn}")
    for ex in sorted((REPO / "examples").iterdir()) if (ex / "build.envd").is_file()
    for fn in environment_functions(ex)
]


def test_every_example_has_an_environment():
    assert len({p.values[0] for p in EXAMPLE_TARGETS}) == len(list((REPO / "examples").glob("*/build.envd")))


def compile_example(example: str, function: str, tmp_path: Path,
                    workload: str = "pod") -> tuple[Environment, tuple[dict, ...]]:
    """Evaluate an example's environment function and compile it with every k8s option set."""
    env = load_environment(str(REPO / "examples" / example), f":{function}")
    key = tmp_path / "id.pub"
    key.write_text(KEY)
    opts = k8s_options(PINNED.format(name=example), {
        "ssh_public_key": str(key), "host_key_secret": f"{example}-hostkey", "namespace": "envs",
        "image_pull_secrets": ("regcred",), "workload": workload,
    })
    return env, compile_k8s(env, opts)


@pytest.mark.parametrize("workload", WORKLOADS)
@pytest.mark.parametrize("example, function", EXAMPLE_TARGETS)
def test_example_compiles_to_valid_objects(example, function, workload, tmp_path, valid_objects):
    _, objects = compile_example(example, function, tmp_path, workload)
    valid_objects(objects)
    assert objects[-1]["kind"] == WORKLOAD_KINDS[workload]
    spec = objects[-1]["spec"] if workload == "pod" else objects[-1]["spec"]["template"]["spec"]
    assert spec["containers"][0]["image"] == PINNED.format(name=example)


def _compile_to(case: str, out: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "dsl", "compile", "--target", "k8s", f"examples/{case}",
           "--image", PINNED.format(name=case), "--namespace", "envs", "-o", str(out), *extra]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)


@pytest.mark.parametrize("case, workload", GOLDEN_TREES)
def test_golden_tree(case, workload, valid_objects):
    import yaml

    out = GOLDEN / case / ("k8s" if workload == "pod" else f"k8s-{workload}")
    options = () if workload == "pod" else ("--workload", workload)
    if os.environ.get("DSL_UPDATE_GOLDEN") == "1":
        done = _compile_to(case, out, *options)
        assert done.returncode == 0, done.stderr
    assert out.is_dir(), f"no golden tree for {case}; run with DSL_UPDATE_GOLDEN=1 and review it"
    check = _compile_to(case, out, *options, "--check")
    assert check.returncode == 0, f"golden tree {out} is out of date:\n{check.stdout}{check.stderr}"
    objects = [yaml.safe_load(p.read_text()) for p in sorted(out.glob("*.yaml")) if p.name != "kustomization.yaml"]
    valid_objects(objects)
