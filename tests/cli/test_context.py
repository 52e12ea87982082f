"""``dsl context``: named builder/runner pairs in the user's config directory."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def _dsl(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dsl", *args], capture_output=True, text=True, env=env, timeout=60)


def test_create_use_ls_rm(tmp_path, monkeypatch):
    import os

    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path)}
    env.pop("DSL_CONTEXT", None)
    assert _dsl("context", "create", "gpu", "--builder", "tcp://gpu:1234", "--runner", "kubernetes", env=env).returncode == 0
    assert _dsl("context", "use", "gpu", env=env).returncode == 0
    rows = json.loads(_dsl("context", "ls", "--format", "json", env=env).stdout)
    assert {r["name"]: r["current"] for r in rows} == {"default": False, "gpu": True}
    stored = json.loads((tmp_path / "envdsl" / "contexts.json").read_text())
    assert stored["contexts"]["gpu"]["builder"] == "tcp://gpu:1234" and stored["current"] == "gpu"
    table = _dsl("context", "ls", env=env).stdout
    assert "gpu *" in table and "tcp://gpu:1234" in table

    # the current context's builder is the one a build would use
    down = _dsl("du", env=env)
    assert down.returncode == 1 and "tcp://gpu:1234" in down.stderr and "Traceback" not in down.stderr

    dup = _dsl("context", "create", "gpu", env=env)
    assert dup.returncode == 2 and "already exists" in dup.stderr
    bad = _dsl("context", "create", "x", "--builder", "ssh://h", env=env)
    assert bad.returncode == 2 and "unsupported builder address" in bad.stderr

    assert _dsl("context", "rm", "gpu", env=env).returncode == 0
    rows = json.loads(_dsl("context", "ls", "--format", "json", env=env).stdout)
    assert rows == [{"name": "default", "builder": "docker", "runner": "docker", "description": "", "ca_bundle": "",
                     "ssh_key": "", "registry": "", "kube_context": "", "namespace": "", "current": True}]
    missing = _dsl("context", "use", "gpu", env=env)
    assert missing.returncode == 2 and "does not exist" in missing.stderr


@pytest.mark.parametrize("text", [
    "[]\n",
    '{"contexts": {"gpu": "docker"}}\n',
    '{"contexts": {}, "current": 3}\n',
])
def test_a_hand_edited_file_of_the_wrong_shape_is_reported_not_a_traceback(tmp_path, text):
    import os

    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path)}
    env.pop("DSL_CONTEXT", None)
    stored = tmp_path / "envdsl" / "contexts.json"
    stored.parent.mkdir()
    stored.write_text(text)
    for command in (("context", "ls"), ("context", "use", "gpu")):
        result = _dsl(*command, env=env)
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert "contexts.json: expected an object" in result.stderr
    assert stored.read_text() == text  # left for the user to fix, not overwritten


def test_a_fifo_in_place_of_the_contexts_file_is_reported_not_waited_on(tmp_path):
    import os

    (tmp_path / "envdsl").mkdir()
    os.mkfifo(tmp_path / "envdsl" / "contexts.json")
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path)}
    env.pop("DSL_CONTEXT", None)
    proc = _dsl("context", "ls", env=env)
    assert proc.returncode == 2 and "contexts.json: cannot read it (not a regular file)" in proc.stderr
