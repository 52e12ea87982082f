"""``--annotation KEY=VALUE``: bookkeeping on every object (``dsl up`` records its generation and
identity this way), never a reason to replace a Pod or to change the content hash."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from compiler.k8s import CONFIG_HASH_ANNOTATION, WORKLOADS, K8sOptions, compile_k8s, synth_yaml
from dsl.errors import UsageError
from tests.compiler.k8s.conftest import assert_valid_objects
from tests.compiler.k8s.test_k8s_workloads import KEY, env

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("workload", WORKLOADS)
def test_annotations_go_on_every_object_but_not_on_the_pod_template(workload):
    opts = K8sOptions(image="r/x:1", ssh_public_key=KEY, workload=workload,
                      annotations=(("envdsl/generation", "7"), ("team.example.com/owner", "ml")))
    objects = compile_k8s(env(), opts)
    assert_valid_objects(objects)
    for obj in objects:
        assert obj["metadata"]["annotations"]["envdsl/generation"] == "7", obj["kind"]
        assert obj["metadata"]["annotations"]["team.example.com/owner"] == "ml"
        template = obj.get("spec", {}).get("template")
        if template is not None:  # a changed generation must not roll the set's Pod
            assert "envdsl/generation" not in template["metadata"]["annotations"]


@pytest.mark.parametrize("workload", WORKLOADS)
def test_a_different_annotation_value_keeps_names_and_hashes(workload):
    base = K8sOptions(image="r/x:1", workload=workload)
    first = compile_k8s(env(), dataclasses.replace(base, annotations=(("envdsl/generation", "1"),)))
    second = compile_k8s(env(), dataclasses.replace(base, annotations=(("envdsl/generation", "2"),)))
    plain = compile_k8s(env(), base)
    for a, b, c in zip(first, second, plain, strict=True):
        assert a["metadata"]["name"] == b["metadata"]["name"] == c["metadata"]["name"]
        for key in ("envdsl/content-hash", CONFIG_HASH_ANNOTATION):
            assert a["metadata"]["annotations"].get(key) == c["metadata"]["annotations"].get(key)
        assert a.get("spec") == b.get("spec")


@pytest.mark.parametrize("annotations, message", [
    ((("bad key", "1"),), "not a valid annotation key"),
    ((("-x/y", "1"),), "not a valid annotation key"),
    ((("a/" + "n" * 64, "1"),), "not a valid annotation key"),
    ((("envdsl/config-hash", "1"),), "set by the compiler itself"),
    ((("a", "1"), ("a", "2")), "given twice"),
])
def test_bad_annotation_keys_are_refused(annotations, message):
    with pytest.raises(UsageError, match=message):
        compile_k8s(env(), K8sOptions(image="r/x:1", annotations=annotations))


def _compile(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "build.envd").write_text('def build():\n    base(image="debian:bookworm", dev=True)\n')
    return subprocess.run([sys.executable, "-m", "dsl", "compile", "-t", "k8s", "--image", "r/x:1", *args],
                          cwd=tmp_path, capture_output=True, text=True, env={"PYTHONPATH": str(REPO), "PATH": ""})


def test_the_command_line_order_of_annotations_does_not_change_the_bytes(tmp_path):
    a = _compile(tmp_path, "--annotation", "b.io/x=1", "--annotation", "a=2")
    b = _compile(tmp_path, "--annotation", "a=2", "--annotation", "b.io/x=1")
    assert a.returncode == 0, a.stderr
    assert a.stdout == b.stdout and "b.io/x: '1'" in a.stdout


def test_an_annotation_without_a_value_separator_is_one_clear_error(tmp_path):
    result = _compile(tmp_path, "--annotation", "novalue")
    assert result.returncode == 2
    assert "--annotation 'novalue' is not KEY=VALUE" in result.stderr and "Traceback" not in result.stderr


def test_synth_is_the_same_for_equal_options():
    opts = K8sOptions(image="r/x:1", annotations=(("a", "1"),))
    assert synth_yaml(compile_k8s(env(), opts)) == synth_yaml(compile_k8s(env(), opts))
