"""``dsl up`` and friends on the real dockerd, driven as a user drives them: a temporary HOME,
the system ssh through the config ``dsl up`` wrote, the exposed port over HTTP."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from dsl.identity import project_hash
from tests.engines.docker.conftest import WEB as _WEB, project

pytestmark = pytest.mark.engine

WEB = _WEB.replace("{base}", "debian:bookworm")
_DSL = (sys.executable, "-m", "dsl")


def _ls(user) -> list[dict]:
    """This test's environments (the engine is shared: `dsl ls` shows everyone's)."""
    result = user.dsl("ls", "--format", "json")
    assert result.returncode == 0, result.stderr
    return [row for row in json.loads(result.stdout) if row["project_dir"].startswith(str(user.home.parent))]


def _containers_of(docker_api, proj) -> list[dict]:
    """Every container of this project's environment, claims included."""
    return docker_api.containers(all=True, filters={"label": f"envdsl/project={project_hash(str(proj))}"})


def _http(port: int, path: str = "/", timeout: float = 30) -> str:
    """GET, retried while the daemon starts (docker-proxy accepts before it listens)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as answer:  # noqa: S310
                return answer.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def _volumes(docker_api, name: str) -> list[str]:
    return sorted(v["Name"] for v in docker_api.volumes().get("Volumes") or [] if v["Name"].startswith(name))


def test_up_ssh_port_down_keeps_the_volume_up_finds_it_purge_removes_it(user, image, docker_api, tmp_path):
    proj = project(tmp_path, WEB.format(config="one"))
    name = proj.name
    first = user.dsl("up", "--image", image, "--detach", cwd=proj)
    assert first.returncode == 0, first.stderr
    assert "created (generation 1)" in first.stdout and f"ssh {name}.dsl" in first.stdout
    assert f"added `Include {user.home}/.ssh/envdsl/config`" in first.stderr

    login = user.ssh(f"{name}.dsl", "python3 -c 'import os; print(os.getcwd(), os.environ[\"CONFIG\"])'")
    assert login.returncode == 0, login.stderr
    assert login.stdout.split() == [f"/home/envd/{name}", "one"]
    assert user.ssh(f"{name}.dsl", "echo kept > /home/envd/cache/data.txt").returncode == 0
    (row,) = _ls(user)
    assert (row["status"], row["config"], row["generation"]) == ("running", "current", 1)
    web = next(p["host_port"] for p in row["ports"] if p["name"] == "web")
    assert _http(web, "/data.txt") == "kept\n"  # the exposed port, published on loopback
    assert all(p["host"] == "127.0.0.1" for p in row["ports"])

    ssh_config = (user.home / ".ssh" / "config").read_bytes()
    again = user.dsl("up", "--image", image, "--detach", cwd=proj)
    assert again.returncode == 0 and "already running, unchanged (generation 1)" in again.stdout
    assert (user.home / ".ssh" / "config").read_bytes() == ssh_config and ssh_config.count(b"Include") == 1

    down = user.dsl("down", name)
    assert down.returncode == 0, down.stderr
    assert _ls(user) == [] and _volumes(docker_api, name) == [f"{name}-{project_hash(str(proj))}-home-envd-cache"]
    assert not list((user.home / ".ssh" / "envdsl" / "hosts").glob("*.conf"))

    back = user.dsl("up", "--image", image, "--detach", cwd=proj)
    assert back.returncode == 0, back.stderr
    assert user.ssh(f"{name}.dsl", "cat /home/envd/cache/data.txt").stdout == "kept\n"

    purge = user.dsl("down", "--purge", name)
    assert purge.returncode == 0, purge.stderr
    assert _volumes(docker_api, name) == [] and f"removed image {image}" in purge.stdout
    assert not (user.ssh_dir / "hosts").exists() or not list((user.ssh_dir / "hosts").iterdir())
    assert name not in (user.ssh_dir / "known_hosts").read_text()


def test_the_container_is_the_compiled_body_with_its_placeholders_filled(user, image, docker_api, tmp_path):
    """Same bytes as `dsl compile --target docker`: only placeholders and the runner's labels differ."""
    proj = project(tmp_path, WEB.format(config="x"))
    compiled = user.dsl("compile", "--target", "docker", "--image", image, cwd=proj)
    assert compiled.returncode == 0, compiled.stderr
    body = json.loads(compiled.stdout)
    assert "${DSL_AUTHORIZED_KEYS}" in compiled.stdout and "${DSL_HOST_KEY_FILE}" in compiled.stdout
    assert user.dsl("up", "--image", image, "-d", cwd=proj).returncode == 0
    (row,) = _ls(user)
    info = docker_api.inspect_container(row["id"])
    public = (user.ssh_dir / "key" / "id_ed25519.pub").read_text().strip()
    host_key = user.ssh_dir / "hosts" / row["id"] / "ssh_host_ed25519_key"
    filled = [e.replace("${DSL_AUTHORIZED_KEYS}", public) for e in body["Env"]]
    assert set(filled) <= set(info["Config"]["Env"])  # (plus the image's own Env)
    mounts = [dict(m, Source=str(host_key)) if m["Source"] == "${DSL_HOST_KEY_FILE}" else m
              for m in body["HostConfig"]["Mounts"]]
    assert [{"ReadOnly": False, **m} for m in info["HostConfig"]["Mounts"]] == mounts
    assert info["HostConfig"]["PortBindings"] == body["HostConfig"]["PortBindings"]
    assert body["Labels"].items() <= info["Config"]["Labels"].items()
    added = set(info["Config"]["Labels"]) - set(body["Labels"]) - set(docker_api.inspect_image(image)["Config"]["Labels"])
    assert added == {"envdsl/instance", "envdsl/project", "envdsl/project-dir", "envdsl/config-hash",
                     "envdsl/generation", "envdsl/owner", "envdsl/created", "envdsl/ssh-user",
                     "envdsl/spec-hash", "envdsl/build-file", "envdsl/ports"}
    # the private keys are nowhere in the container's configuration
    assert "PRIVATE KEY" not in json.dumps(info) and "PRIVATE KEY" not in compiled.stdout


def test_a_config_change_recreates_and_keeps_the_volume_an_unchanged_up_does_nothing(user, image, docker_api,
                                                                                     tmp_path):
    proj = project(tmp_path, WEB.format(config="one"))
    assert user.dsl("up", "--image", image, "-d", cwd=proj).returncode == 0
    (before,) = _ls(user)
    assert user.ssh(f"{proj.name}.dsl", "echo v1 > /home/envd/cache/f").returncode == 0
    unchanged = user.dsl("up", "--image", image, "-d", cwd=proj)
    assert "unchanged" in unchanged.stdout and docker_api.inspect_container(before["id"])["Id"]
    (same,) = _ls(user)
    assert same["created"] == before["created"]

    (proj / "build.envd").write_text(WEB.format(config="two"))
    assert _ls(user)[0]["config"] == "stale (build file changed)"
    changed = user.dsl("up", "--image", image, "-d", cwd=proj)
    assert changed.returncode == 0, changed.stderr
    assert "recreated (named volumes kept) (generation 2; replaced generation 1, by " in changed.stdout
    out = user.ssh(f"{proj.name}.dsl", "cat /home/envd/cache/f; echo $CONFIG").stdout.split()
    assert out == ["v1", "two"]
    (after,) = _ls(user)
    assert (after["generation"], after["config"]) == (2, "current")
    # one container, and the host key (hence the pinned entry) survived the recreation
    assert len(_containers_of(docker_api, proj)) == 1


def test_a_swapped_host_key_is_refused(user, image, docker_api, tmp_path):
    proj = project(tmp_path, WEB.format(config="k"))
    assert user.dsl("up", "--image", image, "-d", cwd=proj).returncode == 0
    (row,) = _ls(user)
    key = user.ssh_dir / "hosts" / row["id"] / "ssh_host_ed25519_key"
    owner = key.stat()
    other = tmp_path / "impostor"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    key.write_bytes(other.read_bytes())  # behind envdsl's back: the pinned public key is the old one
    import os

    os.chown(key, owner.st_uid, owner.st_gid)
    docker_api.restart(row["id"], timeout=10)
    refused = user.ssh(f"{proj.name}.dsl", "true")
    assert refused.returncode == 255 and "Host key verification failed" in refused.stderr
    via_dsl = user.dsl("ssh", proj.name, "--", "true")
    assert via_dsl.returncode == 255 and "Host key verification failed" in via_dsl.stderr


def test_a_stopped_environment_is_not_started_behind_the_users_back(user, image, docker_api, tmp_path):
    proj = project(tmp_path, WEB.format(config="s"))
    assert user.dsl("up", "--image", image, "-d", cwd=proj).returncode == 0
    (row,) = _ls(user)
    docker_api.stop(row["id"], timeout=10)
    for result in (user.dsl("ssh", proj.name, "--", "true"), user.dsl("exec", proj.name, "--", "true")):
        assert result.returncode == 2
        assert f"environment {row['id']} is stopped" in result.stderr and "dsl up" in result.stderr
    through_config = user.ssh(f"{proj.name}.dsl", "true")
    assert through_config.returncode == 255 and "is stopped" in through_config.stderr
    assert not docker_api.inspect_container(row["id"])["State"]["Running"]
    started = user.dsl("up", "--image", image, "-d", cwd=proj)
    assert started.returncode == 0 and "started (generation 1)" in started.stdout
    assert user.ssh(f"{proj.name}.dsl", "true").returncode == 0


def test_exec_logs_and_ports(user, image, tmp_path):
    proj = project(tmp_path, WEB.format(config="e"))
    assert user.dsl("up", "--image", image, "-d", cwd=proj).returncode == 0
    status = user.dsl("exec", proj.name, "--", "sh", "-c", "id -un; echo oops >&2; exit 7")
    assert (status.returncode, status.stdout, status.stderr) == (7, "envd\n", "oops\n")
    piped = user.dsl("exec", proj.name, "--", "wc", "-c", input="12345")
    assert piped.stdout.strip() == "5"
    named = user.dsl("exec", proj.name, "--command", "where")
    assert named.stdout.split() == [f"/home/envd/{proj.name}", "e"]
    unknown = user.dsl("exec", proj.name, "--command", "nope")
    assert unknown.returncode == 2 and "it has: where" in unknown.stderr
    logs = user.dsl("logs", proj.name)
    assert "Server listening on 0.0.0.0 port 2222" in logs.stdout
    assert "==> daemon-1 <==" in logs.stdout and "dsl-entrypoint: starting daemon-1" in logs.stdout
    ports = user.dsl("ports", proj.name).stdout.splitlines()
    assert ports[0].startswith("ssh  ssh ") and ports[1].startswith("web  127.0.0.1:") and ports[1].endswith("-> 8000")

    follow = user.popen("logs", "-f", proj.name, cwd=proj)
    try:
        seen = set()
        deadline = time.monotonic() + 30
        while not {"entrypoint", "daemon-1"} <= seen and time.monotonic() < deadline:
            line = follow.stdout.readline()
            seen.add(line.split(" | ", 1)[0])
        assert {"entrypoint", "daemon-1"} <= seen  # both streams, interleaved, each line labelled
    finally:
        follow.kill()
        follow.communicate()


def test_exec_in_a_terminal_gets_a_tty_and_passes_the_status_through(user, image, tmp_path):
    import os
    import pty
    import sys

    proj = project(tmp_path, WEB.format(config="t"))
    assert user.dsl("up", "--image", image, "-d", cwd=proj).returncode == 0
    pid, fd = pty.fork()
    if pid == 0:  # the child: `dsl exec` with a terminal on stdin and stdout, as typed by a person
        os.chdir(proj)
        os.execve(sys.executable, [sys.executable, "-m", "dsl", "exec", proj.name, "--", "sh", "-c",
                                   "tty; stty size; exit 5"], user.env)
    output = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 5, output
    assert b"/dev/pts/" in output and b"not a tty" not in output


def test_bad_input_is_one_line_and_leaves_nothing_behind(user, image, docker_api, tmp_path):
    unknown = user.dsl("ssh", "nosuchenv")
    assert unknown.returncode == 2 and unknown.stderr.startswith("error: no environment 'nosuchenv'")
    assert "Traceback" not in unknown.stderr

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proj = project(tmp_path, WEB.format(config="p").replace('service="web")', f'service="web", host_port={port})'))
        result = user.dsl("up", "--image", image, "-d", cwd=proj)
    assert result.returncode == 2 and f"host port 127.0.0.1:{port}" in result.stderr and "already in use" in result.stderr
    assert _ls(user) == [] and not _containers_of(docker_api, proj)

    # (an image without a dev layer is no longer refused: it gets the dev runtime, see
    # tests/engines/buildkit/test_runtime_bundle.py)
    missing = user.dsl("up", "--image", "dsl-no-such-image:1", "-d", cwd=project(tmp_path, WEB.format(config="n")))
    assert missing.returncode == 2 and "is not in the Docker engine" in missing.stderr and _ls(user) == []

    user.env["DOCKER_HOST"] = f"unix://{tmp_path}/no-dockerd.sock"
    down = user.dsl("up", "--image", image, "-d", cwd=proj)
    assert down.returncode == 1 and "cannot reach the Docker engine" in down.stderr
    assert len(down.stderr.strip().splitlines()) == 2 and "Traceback" not in down.stderr  # message + hint


def test_an_image_built_elsewhere_runs_with_the_runtime_spec_of_its_labels(user, image, tmp_path):
    """No build file here: `dsl up --image REF` takes the environment the image carries."""
    elsewhere = tmp_path / "checkout"
    elsewhere.mkdir()
    result = user.dsl("up", "--image", image, "-d", cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    (row,) = _ls(user)
    assert row["name"] == "upimage" and row["project_dir"] == str(elsewhere)
    out = user.ssh("upimage.dsl", "echo $CONFIG; pwd")
    assert out.stdout.split() == ["image", "/home/envd/upimage"]  # runtime.environ from the image's labels
    web = next(p["host_port"] for p in row["ports"] if p["name"] == "web")
    assert web and _http(web, "/") is not None

    # an image with no envdsl labels at all now runs with the dev runtime added (built once,
    # tagged by content; more in tests/engines/buildkit/test_runtime_bundle.py)
    plain = user.dsl("up", "--image", "debian:bookworm", "-d", cwd=elsewhere)
    assert plain.returncode == 0 and "debian:bookworm-dsl-" in plain.stderr, plain.stderr


def test_an_sshd_that_never_answers_times_out_with_the_containers_last_log_lines(user, image, tmp_path):
    slow = WEB.format(config="slow").replace('"CONFIG": "slow"', '"CONFIG": "slow", "SLOW_START": "60"')
    proj = project(tmp_path, slow)
    started = time.monotonic()
    result = user.dsl("up", "--image", image, "-d", "--timeout", "3", cwd=proj)
    assert result.returncode == 1 and time.monotonic() - started < 30
    assert "sshd did not accept a login within 3s" in result.stderr
    assert "| entrypoint: dsl-entrypoint: running runtime.init #1" in result.stderr  # why: init still runs
    assert "dsl logs upimage." in result.stderr and "Traceback" not in result.stderr


def test_down_all_removes_only_your_own_environments_and_their_ssh_blocks(user, image, docker_api, tmp_path):
    # `--all` is the user's (user@host) environments on a shared engine: another user's stays
    me, other = dict(user.env, USER="dsl-down-all-a", LOGNAME="dsl-down-all-a"), \
        dict(user.env, USER="dsl-down-all-b", LOGNAME="dsl-down-all-b")
    mine = [project(tmp_path, WEB.format(config=f"m{i}"), name=f"mine{i}") for i in range(2)]
    theirs = project(tmp_path, WEB.format(config="t"), name="theirs")
    for proj, env in ((mine[0], me), (mine[1], me), (theirs, other)):
        started = subprocess.run([*_DSL, "up", "--image", image, "-d"], cwd=proj, env=env, capture_output=True,
                                 text=True, timeout=180)
        assert started.returncode == 0, started.stderr
    hosts = user.home / ".ssh" / "envdsl" / "hosts"
    assert len(list(hosts.iterdir())) == 3
    down = subprocess.run([*_DSL, "down", "--all"], cwd=user.home, env=me, capture_output=True, text=True,
                          timeout=180)
    assert down.returncode == 0, down.stderr
    assert down.stdout.count(": removed") == 2 and "kept volumes" in down.stdout
    for proj in mine:
        assert _containers_of(docker_api, proj) == []
    (left,) = _containers_of(docker_api, theirs)
    assert left["State"] == "running"
    assert len(list(hosts.iterdir())) == 1  # only the other user's block is left
    again = subprocess.run([*_DSL, "down", "--all"], cwd=user.home, env=me, capture_output=True, text=True,
                           timeout=180)
    assert again.returncode == 0 and ": removed" not in again.stdout
    assert len(_containers_of(docker_api, theirs)) == 1
