"""``dsl compile --target k8s --gc-schedule S --gc-idle D --gc-image REF``: the in-cluster gc's
CronJob, ServiceAccount, Role and RoleBinding, as a user sees them in the output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
IMAGE = "reg.example/team/ws@sha256:" + "ab" * 32
GC_IMAGE = "reg.example/tools/dsl@sha256:" + "cd" * 32
GC = ("--gc-schedule", "*/30 * * * *", "--gc-idle", "2h", "--gc-image", GC_IMAGE)
BUILD = 'def build():\n    base(image="debian:bookworm", dev=True)\n    runtime.expose(envd_port=8000, service="web")\n'


def _compile(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    project = tmp_path / "proj"
    project.mkdir(exist_ok=True)
    (project / "build.envd").write_text(BUILD)
    return subprocess.run([sys.executable, "-m", "dsl", "compile", "-t", "k8s", "--image", IMAGE, *args],
                          cwd=project, capture_output=True, text=True, check=False, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})


def _objects(text: str) -> dict[str, dict]:
    return {o["kind"]: o for o in yaml.safe_load_all(text) if o}


def test_the_gc_objects_are_valid_and_come_after_the_environments_unchanged(tmp_path, valid_objects):
    plain = _compile(tmp_path, "-n", "team")
    with_gc = _compile(tmp_path, "-n", "team", *GC)
    assert plain.returncode == 0 and with_gc.returncode == 0, with_gc.stderr
    assert with_gc.stdout.startswith(plain.stdout)  # the environment's objects: the same bytes
    extra = list(yaml.safe_load_all(with_gc.stdout[len(plain.stdout):]))
    assert [o["kind"] for o in extra] == ["ServiceAccount", "Role", "RoleBinding", "CronJob"]
    assert {o["metadata"]["name"] for o in extra} == {"proj-gc"}
    assert {o["metadata"]["namespace"] for o in extra} == {"team"}
    valid_objects(extra)
    assert _compile(tmp_path, "-n", "team", *GC).stdout == with_gc.stdout  # deterministic


def test_the_cron_job_runs_dsl_gc_in_its_namespace_as_its_own_account(tmp_path):
    objects = _objects(_compile(tmp_path, "-n", "team", *GC).stdout)
    job = objects["CronJob"]
    name = job["metadata"]["name"]
    assert job["spec"]["schedule"] == "*/30 * * * *" and job["spec"]["concurrencyPolicy"] == "Forbid"
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == GC_IMAGE
    assert container["command"] == ["dsl", "gc", "--idle", "2h", "--target", "k8s", "-n", "team"]
    assert pod["serviceAccountName"] == name and pod["automountServiceAccountToken"] is True
    binding = objects["RoleBinding"]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": name, "namespace": "team"}]
    # nothing else gets the account's token
    assert objects["ServiceAccount"]["automountServiceAccountToken"] is False
    without_ns = _objects(_compile(tmp_path, *GC).stdout)["CronJob"]
    (container,) = without_ns["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["dsl", "gc", "--idle", "2h", "--target", "k8s"]  # the Pod's own namespace


def test_the_role_grants_exactly_what_dsl_gc_calls(tmp_path):
    role = _objects(_compile(tmp_path, "-n", "team", *GC).stdout)["Role"]
    granted = {(group, resource, verb) for rule in role["rules"] for group in rule["apiGroups"]
               for resource in rule["resources"] for verb in rule["verbs"]}
    assert granted == {
        ("", "pods", "list"), ("", "pods", "delete"),
        ("", "pods/exec", "get"), ("", "pods/exec", "create"),  # WebSocket exec: get up to 1.34, create from 1.35
        ("", "services", "list"), ("", "services", "delete"),
        ("", "persistentvolumeclaims", "list"),
        ("apps", "statefulsets", "list"), ("apps", "statefulsets", "delete"),
        ("apps", "deployments", "list"), ("apps", "deployments", "delete"),
    }
    assert not any(r == "secrets" or "*" in (r, v) for _, r, v in granted)  # never the keys


@pytest.mark.parametrize(("args", "words"), [
    (("--gc-schedule", "*/30 * * *", "--gc-idle", "2h", "--gc-image", GC_IMAGE), "--gc-schedule: expected a cron"),
    (("--gc-schedule", "0 25 * * *", "--gc-idle", "2h", "--gc-image", GC_IMAGE), "the hour field '25'"),
    (("--gc-schedule", "@hourly", "--gc-idle", "2 hours", "--gc-image", GC_IMAGE), "--gc-idle: expected a duration"),
    (("--gc-schedule", "@hourly", "--gc-idle", "2h", "--gc-image", "Bad Ref"), "--gc-image"),
    (("--gc-schedule", "@hourly", "--gc-idle", "2h"), "also needs --gc-image"),
])
def test_bad_gc_options_are_usage_errors_without_a_file_location(tmp_path, args, words):
    (tmp_path / "build.envd").write_text("this is not starlark(")  # the options are refused first
    result = subprocess.run([sys.executable, "-m", "dsl", "compile", "-t", "k8s", "--image", IMAGE, *args],
                            cwd=tmp_path, capture_output=True, text=True, check=False, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 2 and words in result.stderr and "hint: " in result.stderr
    assert result.stderr.startswith("error: ") and "build.envd" not in result.stderr and "Traceback" not in result.stderr
