"""``dsl gc`` on the real dockerd, and the SSH activity record it reads (dsl-activity) in real
dev containers: sessions through the system ssh with the config ``dsl up`` wrote."""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
import uuid

import pytest

from tests.engines.docker.conftest import WEB as _WEB
from tests.engines.docker.conftest import project

pytestmark = pytest.mark.engine

WEB = _WEB.replace("{base}", "debian:bookworm")


def _own(user) -> dict[str, str]:
    """The user as an owner of its own (USER), so `gc --mine` never touches another test's."""
    name = f"dsl-gc-{uuid.uuid4().hex[:6]}"
    user.env.update(USER=name, LOGNAME=name)
    return user.env


def _up(user, image, proj) -> str:
    started = user.dsl("up", "--image", image, "--detach", cwd=proj)
    assert started.returncode == 0, started.stderr
    (row,) = [r for r in json.loads(user.dsl("ls", "--format", "json").stdout) if r["project_dir"] == str(proj)]
    return row["id"]


def _report(docker_api, container: str) -> dict[str, str]:
    exec_id = docker_api.exec_create(container, ["/usr/local/bin/dsl-activity", "report"])["Id"]
    out = docker_api.exec_start(exec_id).decode()
    assert docker_api.exec_inspect(exec_id)["ExitCode"] == 0, out
    return dict(line.split("=", 1) for line in out.splitlines())


def _sh(docker_api, container: str, script: str) -> str:
    exec_id = docker_api.exec_create(container, ["sh", "-c", script])["Id"]
    return docker_api.exec_start(exec_id).decode()


def _until(what, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while not (value := what()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.3)
    return value


def _session(user, alias: str, command: str) -> subprocess.Popen[str]:
    return subprocess.Popen(["ssh", "-F", str(user.home / ".ssh" / "config"), "-o", "BatchMode=yes", alias, command],
                            env=user.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def test_the_record_counts_sessions_while_they_live_a_killed_one_ends_too(user, image, docker_api, tmp_path):
    proj = project(tmp_path, WEB.format(config="rec"), name="rec")
    env_id = _up(user, image, proj)
    # `dsl up` waited for a login: that session has ended
    fresh = _until(lambda: (r := _report(docker_api, env_id))["last_logout"] and r)
    assert fresh["open"] == "0" and int(fresh["started"]) <= int(fresh["last_login"]) <= int(fresh["last_logout"])
    # the dev user (not root) keeps it under /run/dsl, which the image gives it
    assert _sh(docker_api, env_id, "id -un; stat -c %U /run/dsl; ls /run/dsl/activity").split() == [
        "envd", "envd", "last-login", "last-logout", "sessions", "started"]
    # a command without a tty: open while it runs, ended (a logout) once it has
    assert user.ssh(f"{proj.name}.dsl", "true").returncode == 0
    after = _until(lambda: (r := _report(docker_api, env_id))["last_logout"] and r)
    assert after["open"] == "0" and int(after["last_logout"]) >= int(after["last_login"]) >= int(fresh["started"])
    # a session killed without a logout is not open forever: its process is gone
    live = _session(user, f"{proj.name}.dsl", "sleep 300")
    try:
        opened = _until(lambda: (r := _report(docker_api, env_id))["open"] == "1" and r)
        (pid,) = _sh(docker_api, env_id, "ls /run/dsl/activity/sessions").split()
        _sh(docker_api, env_id, f"kill -9 {pid}")
        ended = _until(lambda: (r := _report(docker_api, env_id))["open"] == "0" and r, timeout=20)
        assert int(ended["last_logout"]) >= int(opened["last_login"])
    finally:
        live.kill()
        live.wait()
    # sftp (scp, editors' remote files) is a session too
    before = _report(docker_api, env_id)
    time.sleep(1.1)
    sftp = subprocess.run(["sftp", "-F", str(user.home / ".ssh" / "config"), "-o", "BatchMode=yes", "-b", "-",
                           f"{proj.name}.dsl"], input="ls\n", env=user.env, capture_output=True, text=True, timeout=60, check=False)
    assert sftp.returncode == 0, sftp.stderr
    assert int(_report(docker_api, env_id)["last_login"]) > int(before["last_login"])


def test_gc_removes_the_idle_one_keeps_the_busy_one_and_the_volumes(user, image, docker_api, tmp_path):
    _own(user)
    idle_proj = project(tmp_path, WEB.format(config="idle"), name="idle")
    busy_proj = project(tmp_path, WEB.format(config="busy"), name="busy")
    idle_id, busy_id = _up(user, image, idle_proj), _up(user, image, busy_proj)
    volumes = sorted(m["Name"] for m in docker_api.inspect_container(idle_id)["Mounts"] if m["Type"] == "volume")
    assert volumes
    session = _session(user, "busy.dsl", "sleep 300")
    try:
        _until(lambda: _report(docker_api, busy_id)["open"] == "1")
        _until(lambda: _report(docker_api, idle_id)["last_logout"])  # `dsl up`'s login has ended
        time.sleep(2.5)  # both idle for longer than --idle 2s but for the open session

        dry = user.dsl("gc", "--idle", "2s", "--dry-run", "--mine")
        assert dry.returncode == 0, dry.stderr
        lines = dict(line.split(": ", 1) for line in dry.stdout.splitlines())
        assert lines[idle_id].startswith("would remove: idle ") and "last logout" in lines[idle_id]
        assert lines[busy_id] == "kept: 1 open SSH session"
        assert docker_api.inspect_container(idle_id)["State"]["Running"]  # --dry-run changed nothing

        kept_long = user.dsl("gc", "--idle", "1d", "--mine")
        assert kept_long.returncode == 0 and f"{idle_id}: kept: idle " in kept_long.stdout
        assert "less than 1d" in kept_long.stdout

        run = user.dsl("gc", "--idle", "2s", "--mine")
        assert run.returncode == 0, run.stderr
        assert f"{idle_id}: removed: idle " in run.stdout and "kept volumes" in run.stdout
        assert f"{busy_id}: kept: 1 open SSH session" in run.stdout
        assert docker_api.containers(all=True, filters={"name": idle_id}) == []
        assert docker_api.inspect_container(busy_id)["State"]["Running"]
        assert sorted(v["Name"] for v in docker_api.volumes()["Volumes"] if v["Name"] in volumes) == volumes
        assert not (user.home / ".ssh" / "envdsl" / "hosts" / f"{idle_id}.conf").exists()
        assert user.ssh("busy.dsl", "true").returncode == 0
    finally:
        session.kill()
        session.wait()
        for volume in volumes:  # kept by gc, as it should; this test's own to remove
            with contextlib.suppress(Exception):  # in use still, when the test failed early: the fixture purges
                docker_api.remove_volume(volume)


def test_gc_bad_input_is_a_usage_error(user):
    for args, words in ((("--idle", "2"),  "expected a duration"), (("--idle", "1.5h"), "expected a duration"),
                        (("--idle", "0m"), "longer than zero")):
        result = user.dsl("gc", *args)
        assert result.returncode == 2 and words in result.stderr and "hint: " in result.stderr
        assert "Traceback" not in result.stderr
