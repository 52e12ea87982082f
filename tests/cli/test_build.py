"""``dsl build`` failures that need no engine: a builder that is down, bad options."""

from __future__ import annotations

import os
import subprocess
import sys

BUILD_FILE = '''\
def build():
    base(image="debian:bookworm", dev=False)
    run(["echo hi"])
'''


def _dsl(*args: str, cwd, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dsl", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=60)


def _env(tmp_path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("BUILDKIT_HOST", "DSL_CONTEXT")}
    env.update(XDG_CONFIG_HOME=str(tmp_path / "cfg"), XDG_CACHE_HOME=str(tmp_path / "cache"), **extra)
    return env


def test_builder_down_is_one_line_and_exit_1(tmp_path):
    (tmp_path / "build.envd").write_text(BUILD_FILE)
    dead = f"unix://{tmp_path}/no-docker.sock"
    result = _dsl("build", cwd=tmp_path, env=_env(tmp_path, DOCKER_HOST=dead))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[0] == f"error: cannot reach the builder at docker://{dead}: no such socket"
    assert lines[1].strip().startswith("hint: start dockerd") and len(lines) == 2


def test_standalone_builder_down_says_how_to_start_it(tmp_path):
    (tmp_path / "build.envd").write_text(BUILD_FILE)
    sock = f"unix://{tmp_path}/buildkitd.sock"
    result = _dsl("build", cwd=tmp_path, env=_env(tmp_path, BUILDKIT_HOST=sock))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert sock in result.stderr and "buildkitd --addr" in result.stderr


def test_bad_output_is_usage_error(tmp_path):
    (tmp_path / "build.envd").write_text(BUILD_FILE)
    result = _dsl("build", "--output", "type=floppy", cwd=tmp_path, env=_env(tmp_path))
    assert result.returncode == 2 and "unknown type 'floppy'" in result.stderr
    result = _dsl("build", "--output", "type=local", cwd=tmp_path, env=_env(tmp_path))
    assert result.returncode == 2 and "needs dest=PATH" in result.stderr


def test_an_unsupported_docker_host_is_bad_input_reported_before_evaluating(tmp_path):
    """A mistyped DOCKER_HOST is the user's input (exit 2, was 1), and it is reported before
    the build file runs: the up-to-date check no longer swallows the address error."""
    (tmp_path / "build.envd").write_text('print("evaluated")\n' + BUILD_FILE)
    result = _dsl("build", cwd=tmp_path, env=_env(tmp_path, DOCKER_HOST="ftp://x"))
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        "error: unsupported Docker host address 'ftp://x' (DOCKER_HOST)",
        "  hint: use unix:///path/to/docker.sock or tcp://host:port",
    ]
    result = _dsl("build", "--builder", "docker://ssh://host", cwd=tmp_path, env=_env(tmp_path))
    assert result.returncode == 2 and "unsupported Docker host address 'ssh://host'" in result.stderr
