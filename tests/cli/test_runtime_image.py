"""Bring your own image: the derived tag ``<repo>:<tag>-dsl-<hash12>`` and the runtime base
setting. Building and reusing derived images on the real dockerd:
tests/engines/buildkit/test_runtime_bundle.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dsl.cli._runtime_image import derived_tag, runtime_environment

ROOT = Path(__file__).resolve().parents[2]
IMAGE_ID = "sha256:" + "ab" * 32
PROBE = """
import json
from compiler.llb import compile_environment
from dsl.cli._runtime_image import derived_tag, runtime_environment
tags = []
for ref in ("myteam/tool:1.2", "busybox", "localhost:5000/x/y@sha256:" + "cd" * 32):
    d = compile_environment(runtime_environment(ref), platform="linux/amd64", sequential=True).definition
    tags.append(derived_tag(ref, "sha256:" + "ab" * 32, d))
print(json.dumps(tags))
"""


def test_the_derived_tag_is_the_same_under_any_hash_seed_and_timezone() -> None:
    seen = set()
    for seed, tz in (("0", "UTC"), ("1", "Asia/Kolkata"), ("4242", "America/Los_Angeles")):
        env = dict(os.environ, PYTHONHASHSEED=seed, TZ=tz, PYTHONPATH=str(ROOT))
        out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
                             check=True).stdout
        seen.add(out)
    assert len(seen) == 1
    tool, busybox, pinned = json.loads(seen.pop())
    assert tool.startswith("myteam/tool:1.2-dsl-") and len(tool.rsplit("-", 1)[1]) == 12
    assert busybox.startswith("busybox:latest-dsl-")
    assert pinned.startswith("localhost:5000/x/y:digest-cdcdcdcdcdcd-dsl-")


def test_the_tag_changes_with_the_image_and_with_the_definition() -> None:
    a = derived_tag("tool:1", IMAGE_ID, b"def")
    assert a == derived_tag("tool:1", IMAGE_ID, b"def")
    assert a != derived_tag("tool:1", "sha256:" + "ef" * 32, b"def")  # `tool:1` moved to another image
    assert a != derived_tag("tool:1", IMAGE_ID, b"other")  # another runtime or dev layer


def test_the_runtime_environment_is_only_the_dev_layer_named_after_the_image() -> None:
    env = runtime_environment("ghcr.io/acme/big.tool:2")
    assert env.name == "big-tool" and env.build.base.dev and env.build.base.image == "ghcr.io/acme/big.tool:2"
    assert env.build.steps == ()


@pytest.mark.parametrize("value", ["UPPER/case::x", "debian:bookworm@sha256:short"])
def test_a_malformed_runtime_base_is_one_line_exit_2(value: str, tmp_path: Path) -> None:
    (tmp_path / "build.envd").write_text('def build():\n    base(image="debian:bookworm", dev=True)\n')
    env = dict(os.environ, DSL_RUNTIME_BASE=value, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-m", "dsl", "compile", "--target", "llb", "--format", "json"],
                         cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 2 and "$DSL_RUNTIME_BASE" in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) <= 2


def test_another_runtime_base_is_another_build_for_the_up_to_date_check(monkeypatch, tmp_path: Path) -> None:
    """`dsl build` skips an unchanged build; a changed $DSL_RUNTIME_BASE must not look unchanged."""
    from dsl.cli.build import _record_inputs
    from dsl.engines.buildkit import record_key

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    monkeypatch.delenv("BUILDKIT_HOST", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    keys = []
    for value in (None, "debian:bookworm", "debian:trixie"):
        if value is None:
            monkeypatch.delenv("DSL_RUNTIME_BASE", raising=False)
        else:
            monkeypatch.setenv("DSL_RUNTIME_BASE", value)
        keys.append(record_key(_record_inputs(".", None, None, (), None, None, None, None)))
    assert len(set(keys)) == 3
