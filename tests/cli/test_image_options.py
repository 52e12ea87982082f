"""``dsl build -t`` and ``dsl compile --image`` take every reference docker takes, and a bad
one is a one-line usage error (exit 2) before any work."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

BUILD_FILE = '''\
def build():
    base(image="debian:bookworm", dev=True)
'''
DIGEST = "sha256:" + "0123456789abcdef" * 4


def _dsl(*args: str, cwd, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("BUILDKIT_HOST", "DSL_CONTEXT")}
    env.update(XDG_CONFIG_HOME=str(cwd / "cfg"), XDG_CACHE_HOME=str(cwd / "cache"), **extra)
    return subprocess.run([sys.executable, "-m", "dsl", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=60)


def _one_line_usage_error(result: subprocess.CompletedProcess[str], text: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("error: ") and text in lines[0], result.stderr
    assert len(lines) <= 2 and (len(lines) == 1 or lines[1].startswith("  hint: ")), result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("tag", ["myteam/ws:1", "localhost:5000/a/b:t", "[::1]:5000/x", "ws", "ghcr.io/o/ws:v1.2_rc"])
def test_build_takes_the_common_tag_forms(tmp_path, tag):
    """The tag passes: the build goes on to the builder, which is down here (exit 1)."""
    (tmp_path / "build.envd").write_text(BUILD_FILE)
    result = _dsl("build", "-t", tag, cwd=tmp_path, DOCKER_HOST=f"unix://{tmp_path}/no-docker.sock")
    assert result.returncode == 1, result.stderr
    assert "cannot reach the builder" in result.stderr and "image reference" not in result.stderr


@pytest.mark.parametrize(("tag", "why"), [
    ("myteam/Ws:1", "repository names are lower-case"),
    ("a//b", "a path component is empty"),
    ("x:", "the tag after ':' is empty"),
    (f"myteam/ws@{DIGEST}", "a tag cannot carry a digest"),
])
def test_bad_tag_is_one_line_before_anything_else(tmp_path, tag, why):
    # no build file here: the tag is refused while the command line is parsed
    result = _dsl("build", "-t", "ok:1", "-t", tag, cwd=tmp_path)
    _one_line_usage_error(result, "--tag: expected an image")
    assert why in result.stderr


def test_bad_push_target_is_refused(tmp_path):
    (tmp_path / "build.envd").write_text(BUILD_FILE)
    result = _dsl("build", "--output", "type=image,name=Team/ws:1,push=true", cwd=tmp_path,
                  DOCKER_HOST=f"unix://{tmp_path}/no-docker.sock")
    _one_line_usage_error(result, "--output name: expected an image reference, got 'Team/ws:1'")


@pytest.mark.parametrize(("target", "image", "shown"), [
    ("k8s", "myteam/ws:1", "image: myteam/ws:1"),
    ("k8s", f"myteam/ws:1@{DIGEST}", f"image: myteam/ws:1@{DIGEST}"),
    ("docker", "localhost:5000/a/b:t", '"Image": "localhost:5000/a/b:t"'),
])
def test_compile_takes_the_common_image_forms(tmp_path, target, image, shown):
    (tmp_path / "build.envd").write_text(BUILD_FILE)
    result = _dsl("compile", "--target", target, "--image", image, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert shown in result.stdout  # as given: Kubernetes and Docker read the familiar form


@pytest.mark.parametrize("image", ["Bad Ref", "proj@sha256:abc", "UPPER/x"])
def test_compile_bad_image_is_one_line(tmp_path, image):
    (tmp_path / "build.envd").write_text(BUILD_FILE)
    result = _dsl("compile", "--target", "k8s", "--image", image, cwd=tmp_path)
    _one_line_usage_error(result, f"--image: expected an image reference, got {image!r}")
