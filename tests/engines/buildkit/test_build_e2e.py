"""``dsl build`` end to end on the real dockerd: examples, caching, cancellation, metadata."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.engines.buildkit._containers import run_in

REPO = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.engine


def _env(tmp_path, docker_host: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("BUILDKIT_HOST", "DSL_CONTEXT")}
    env.update(DOCKER_HOST=docker_host, XDG_CONFIG_HOME=str(tmp_path / "cfg"), XDG_CACHE_HOME=str(tmp_path / "cache"))
    return env


def _build(cwd, docker_host, tmp_path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dsl", "build", *args], cwd=cwd, capture_output=True, text=True,
                          env=_env(tmp_path, docker_host), timeout=timeout)


def _events(stderr: str) -> list[dict]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]



def _examples() -> list[str]:
    return sorted(p.parent.name for p in (REPO / "examples").glob("*/build.envd"))


@pytest.mark.parametrize("example", _examples())
def test_example_builds_and_runs(example, docker_host, docker_api, base_image, ca_bundle, tmp_path):
    """Every example whose base image exists locally builds; its image has its config."""
    from compiler.llb._compile import base_image_ref
    from dsl.cli._load import load_environment

    env = load_environment(str(REPO / "examples" / example), None, owner=None)
    base = env.build.base.image if env.build.cuda is None else base_image_ref(env)
    try:
        docker_api.inspect_image(base)
    except Exception:
        pytest.skip(f"base image {base} of example {example} is not in the test dockerd")
    tag = f"dsl-e2e-{example}:{uuid.uuid4().hex[:8]}"
    meta = tmp_path / "meta.json"
    result = _build(REPO / "examples" / example, docker_host, tmp_path, "-t", tag, "--progress", "plain",
                    "--ca-bundle", ca_bundle, "--metadata-file", str(meta))
    assert result.returncode == 0, result.stderr[-3000:]
    try:
        data = json.loads(meta.read_text())
        info = docker_api.inspect_image(tag)
        assert data["containerimage.digest"] == info["Id"] and data["image.name"] == tag
        assert f"digest: {info['Id']}" in result.stdout
        for key, value in env.runtime.environ:
            assert f"{key}={value}" in info["Config"]["Env"]
        if example == "apt-pip":
            out = run_in(docker_api, tag, "jq --version && python3 -c 'import six, idna, requests; print(\"ok\")' "
                                           "&& echo $PYTHONDONTWRITEBYTECODE && ! test -e /etc/ssl/dsl-ca.pem")
            assert "jq-" in out and "ok" in out and "1" in out.split()
            assert "dsl-ca-bundle" not in json.dumps(info)  # the CA secret never lands in the image
    finally:
        docker_api.remove_image(tag, force=True)


CACHE_FILE = '''\
def build():
    base(image="{base}", dev=False)
    install.apt_packages(name=["jq"])
    install.python_packages(name={pip})
    run(["echo {marker} > /marker"])
'''


def test_rebuild_cached_and_one_more_package_rebuilds_from_there(docker_host, docker_api, base_image, ca_bundle, tmp_path):
    marker = uuid.uuid4().hex
    project = tmp_path / "proj"
    project.mkdir()
    tag = f"dsl-e2e-cache:{marker[:8]}"
    build_file = project / "build.envd"
    build_file.write_text(CACHE_FILE.format(base=base_image, pip='["six"]', marker=marker))
    args = ("-t", tag, "--progress", "json", "--ca-bundle", ca_bundle)
    try:
        first = _build(project, docker_host, tmp_path, *args)
        assert first.returncode == 0, first.stderr[-3000:]
        shutil.rmtree(tmp_path / "cache" / "envdsl" / "builds", ignore_errors=True)  # no "up to date" skip
        second = _build(project, docker_host, tmp_path, *args)
        assert second.returncode == 0, second.stderr[-3000:]
        ev = _events(second.stderr)
        steps = {e["name"] for e in ev if e["event"] == "start"}
        cached = {e["name"] for e in ev if e["event"] == "cached"}
        run_steps = {n for n in steps if not n.startswith(("[internal]", "docker-image://", "exporting"))}
        assert run_steps and run_steps <= cached, f"not cached: {run_steps - cached}"

        build_file.write_text(CACHE_FILE.format(base=base_image, pip='["six", "idna"]', marker=marker))
        third = _build(project, docker_host, tmp_path, *args)
        assert third.returncode == 0, third.stderr[-3000:]
        ev = _events(third.stderr)
        cached = {e["name"] for e in ev if e["event"] == "cached"}
        done = {e["name"] for e in ev if e["event"] == "done"}
        assert any("jq" in n for n in cached), "the apt step before the change must stay cached"
        # (the six+idna step itself may be cached by an earlier run on this shared dockerd)
        assert any("idna" in n for n in done | cached), "the changed pip step must be in the build"
        assert any(marker in n for n in done), "steps after the change run again"
        out = run_in(docker_api, tag, "/opt/dsl/python/bin/python -c 'import six, idna; print(\"both\")' || python3 -c 'import six, idna; print(\"both\")'")
        assert "both" in out

        uncached = _build(project, docker_host, tmp_path, *args, "--no-cache")
        assert uncached.returncode == 0, uncached.stderr[-3000:]
        assert not any(e["event"] == "cached" and marker in e["name"] for e in _events(uncached.stderr))
    finally:
        docker_api.remove_image(tag, force=True)


def _processes_with(text: str) -> list[int]:
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if text in cmdline:
                found.append(int(pid))
    return found


def test_ctrl_c_cancels_the_remote_build(docker_host, base_image, tmp_path):
    seconds = f"60.{uuid.uuid4().int % 10**6:06d}"  # a unique sleep to find on this machine
    project = tmp_path / "proj"
    project.mkdir()
    (project / "build.envd").write_text(f'def build():\n    base(image="{base_image}", dev=False)\n    run(["sleep {seconds}"])\n')
    # A test run started in the background (`bash scripts/test &`) inherits SIGINT ignored, and
    # Python keeps an ignored SIGINT: give the build the disposition a terminal's Ctrl-C meets.
    proc = subprocess.Popen([sys.executable, "-m", "dsl", "build", "--progress", "plain"], cwd=project,
                            env=_env(tmp_path, docker_host), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 60
        while not _processes_with(f"sleep {seconds}") and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.2)
        assert _processes_with(f"sleep {seconds}"), "the step never started"
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "cancelled" in stderr
    deadline = time.monotonic() + 15
    while _processes_with(f"sleep {seconds}") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _processes_with(f"sleep {seconds}"), "the build step is still running on the builder"
