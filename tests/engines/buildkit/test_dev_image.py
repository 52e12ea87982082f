"""A ``dev=True`` image built by ``dsl build`` on the real dockerd, run as users run it.

One image (built once for the module) is started in several containers: the system ``ssh``
client logs in with the key given at run time and is refused with another one; the same
works the way the Kubernetes manifests run it (non-root, every capability dropped, no
privilege escalation); keys from files, host keys kept across containers, ``runtime.init``
before daemons, daemons restarted, and ``docker stop`` ending the container at once.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.engines.buildkit.test_build_e2e import _build

pytestmark = pytest.mark.engine

ENV_NAME = "devimg"
GREETING = "hello 'quoted' $world"
BUILD_FILE = '''\
def build():
    base(image="{base}", dev=True)
    install.python_packages(name=["six"])
    runtime.environ(env={{"GREETING": {greeting!r}}})
    runtime.init(commands=["sleep 1", "touch /tmp/init-done"])
    runtime.daemon(commands=[
        ["bash", "-c", "test -e /tmp/init-done && echo after-init >> /tmp/daemon-starts; exec sleep 1000"],
    ])
'''
SSH_OPTS = ("-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10")


class DevImage(NamedTuple):
    tag: str
    project: Path


@pytest.fixture(scope="module")
def dev_image(docker_host, docker_api, base_image, ca_bundle, tmp_path_factory) -> Iterator[DevImage]:
    """The module's dev image (removed afterwards) and its project directory."""
    root = tmp_path_factory.mktemp("devimage")
    project = root / ENV_NAME
    project.mkdir()
    (project / "build.envd").write_text(BUILD_FILE.format(base=base_image, greeting=GREETING))
    tag = f"dsl-dev-image:{uuid.uuid4().hex[:8]}"
    result = _build(project, docker_host, root, "-t", tag, "--progress", "plain", "--ca-bundle", ca_bundle)
    assert result.returncode == 0, result.stderr[-3000:]
    yield DevImage(tag, project)
    docker_api.remove_image(tag, force=True)


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict[str, Path]:
    """Two client key pairs: ``good`` is authorized, ``other`` is not."""
    root = tmp_path_factory.mktemp("keys")
    out = {}
    for name in ("good", "other"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / name)], check=True)
        out[name] = root / name
    return out


@contextlib.contextmanager
def _container(docker_api, image: DevImage, *, env: dict[str, str] | None = None, binds: dict | None = None,
               user: str = "", **host_options) -> Iterator[tuple[str, int]]:
    """A started container with 2222 published on 127.0.0.1; yields (id, host port)."""
    config = docker_api.create_host_config(port_bindings={2222: ("127.0.0.1",)}, binds=binds, **host_options)
    container = docker_api.create_container(image.tag, environment=env or {}, ports=[2222], host_config=config,
                                            user=user)
    try:
        docker_api.start(container)
        yield container["Id"], _published_port(docker_api, container["Id"])
    finally:
        docker_api.remove_container(container, force=True)


def _published_port(docker_api, container: str) -> int:
    """The host port of 2222 (0 when the container has already exited)."""
    ports = docker_api.inspect_container(container)["NetworkSettings"]["Ports"] or {}
    return int((ports.get("2222/tcp") or [{"HostPort": 0}])[0]["HostPort"])


def _wait_for_sshd(docker_api, container: str, port: int, timeout: float = 30) -> None:
    """Until sshd answers with its banner (docker-proxy accepts TCP before sshd listens)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            if s.recv(64).startswith(b"SSH-"):
                return
        state = docker_api.inspect_container(container)["State"]
        assert state["Running"], docker_api.logs(container).decode()
        time.sleep(0.2)
    pytest.fail(f"sshd did not answer on port {port}: {docker_api.logs(container).decode()}")


def _ssh(key: Path, port: int, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ssh", "-i", str(key), "-p", str(port), *SSH_OPTS, "envd@127.0.0.1", command],
                          capture_output=True, text=True, timeout=60)


def _host_key(port: int) -> str:
    """The server's ed25519 host key as ``ssh-keyscan`` sees it."""
    out = subprocess.run(["ssh-keyscan", "-p", str(port), "-t", "ed25519", "127.0.0.1"],
                         capture_output=True, text=True, timeout=30).stdout
    (line,) = [x for x in out.splitlines() if x and not x.startswith("#")]
    return line.split(None, 1)[1]


def _exited(docker_api, container: str, timeout: float = 30) -> tuple[int, str]:
    status = docker_api.wait(container, timeout=timeout)["StatusCode"]
    return status, docker_api.logs(container).decode()


def _login_facts(key: Path, port: int) -> list[str]:
    result = _ssh(key, port, 'id -un; pwd; printf "%s\\n" "$GREETING"; echo "$PATH"; command -v python')
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_ssh_login_with_the_run_time_key_sees_the_environment(docker_api, dev_image, keys):
    pub = keys["good"].with_suffix(".pub").read_text()
    with _container(docker_api, dev_image, env={"DSL_AUTHORIZED_KEYS": pub}) as (cid, port):
        _wait_for_sshd(docker_api, cid, port)
        user, cwd, greeting, path, python = _login_facts(keys["good"], port)
        assert (user, cwd, greeting) == ("envd", f"/home/envd/{ENV_NAME}", GREETING)
        assert path.split(":")[0] == "/opt/dsl/python/bin" and python == "/opt/dsl/python/bin/python"
        # an interactive login shell (/etc/profile resets PATH on Debian) keeps it too
        login = _ssh(keys["good"], port, "bash -lc 'echo $PATH; pwd'")
        assert login.stdout.split() == [path, f"/home/envd/{ENV_NAME}"]
        refused = _ssh(keys["other"], port, "true")
        assert refused.returncode == 255 and "Permission denied" in refused.stderr
        env_file = _ssh(keys["good"], port, "cat ~/.dsl/environment").stdout
        assert "GREETING=" in env_file and "DSL_AUTHORIZED_KEYS" not in env_file


def test_ssh_works_as_the_kubernetes_manifest_runs_it(docker_api, dev_image, keys):
    """Security settings taken from the Pod spec the k8s compiler makes for this environment."""
    from compiler.k8s import K8sOptions, compile_k8s
    from dsl.cli._load import load_environment

    objects = compile_k8s(load_environment(str(dev_image.project), None), K8sOptions(image=dev_image.tag))
    (spec,) = [o["spec"] for o in objects if o["kind"] == "Pod"]
    ctx, cctx = spec["securityContext"], spec["containers"][0]["securityContext"]
    assert ctx["runAsNonRoot"] and cctx["capabilities"]["drop"] == ["ALL"] and not cctx["allowPrivilegeEscalation"]
    pub = keys["good"].with_suffix(".pub").read_text()
    with _container(docker_api, dev_image, env={"DSL_AUTHORIZED_KEYS": pub},
                    user=f"{ctx['runAsUser']}:{ctx['runAsGroup']}", cap_drop=["ALL"],
                    security_opt=["no-new-privileges"]) as (cid, port):
        _wait_for_sshd(docker_api, cid, port)
        user, cwd, greeting, _, _ = _login_facts(keys["good"], port)
        assert (user, cwd, greeting) == ("envd", f"/home/envd/{ENV_NAME}", GREETING)
        assert _ssh(keys["other"], port, "true").returncode == 255


def test_without_a_key_sshd_is_not_started(docker_api, dev_image):
    with _container(docker_api, dev_image) as (cid, _):
        status, logs = _exited(docker_api, cid)
    assert status == 1
    assert "dsl-entrypoint: no SSH key: set DSL_AUTHORIZED_KEYS" in logs and "Server listening" not in logs
    with _container(docker_api, dev_image, env={"DSL_ALLOW_NO_KEY": "1"}) as (cid, port):
        _wait_for_sshd(docker_api, cid, port)
        assert "warning: no authorized key" in docker_api.logs(cid).decode()


@pytest.mark.parametrize("variable", ["DSL_AUTHORIZED_KEYS_PATH", "ENVD_AUTHORIZED_KEYS_PATH"])
def test_authorized_keys_from_a_mounted_file(docker_api, dev_image, keys, tmp_path, variable):
    mounted = tmp_path / "authorized_keys"
    mounted.write_text(keys["good"].with_suffix(".pub").read_text())
    mounted.chmod(0o644)
    binds = {str(mounted): {"bind": "/etc/dsl/keys/authorized_keys", "mode": "ro"}}
    with _container(docker_api, dev_image, env={variable: "/etc/dsl/keys/authorized_keys"},
                    binds=binds) as (cid, port):
        _wait_for_sshd(docker_api, cid, port)
        assert _ssh(keys["good"], port, "id -un").stdout.strip() == "envd"
        assert _ssh(keys["other"], port, "true").returncode == 255


def test_an_unreadable_keys_file_is_a_clear_error(docker_api, dev_image):
    with _container(docker_api, dev_image, env={"DSL_AUTHORIZED_KEYS_PATH": "/nonexistent/keys"}) as (cid, _):
        status, logs = _exited(docker_api, cid)
    assert status == 1 and "cannot read the authorized keys file /nonexistent/keys" in logs


def test_host_key_path_keeps_the_identity_across_containers(docker_api, dev_image, keys, tmp_path):
    """As the Kubernetes manifests mount it: a Secret file, mode 0440, group = the pod's fsGroup."""
    host_key = tmp_path / "ssh_host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)], check=True)
    host_key.chmod(0o440)
    os.chown(host_key, 0, 1000)
    expected = host_key.with_suffix(".pub").read_text().split()[:2]
    env = {"DSL_AUTHORIZED_KEYS": keys["good"].with_suffix(".pub").read_text(),
           "DSL_HOST_KEY_PATH": "/etc/dsl/host-key/ssh_host_key"}
    binds = {str(host_key): {"bind": "/etc/dsl/host-key/ssh_host_key", "mode": "ro"}}
    seen = []
    for _ in range(2):
        with _container(docker_api, dev_image, env=env, binds=binds) as (cid, port):
            _wait_for_sshd(docker_api, cid, port)
            seen.append(_host_key(port))
    assert seen[0] == seen[1] == " ".join(expected)
    # without it every new container makes its own, and keeps it when restarted
    generated = []
    with _container(docker_api, dev_image, env={"DSL_AUTHORIZED_KEYS": env["DSL_AUTHORIZED_KEYS"]}) as (cid, port):
        _wait_for_sshd(docker_api, cid, port)
        generated.append(_host_key(port))
        docker_api.restart(cid, timeout=10)
        port = _published_port(docker_api, cid)
        _wait_for_sshd(docker_api, cid, port)
        generated.append(_host_key(port))
    assert generated[0] == generated[1] != seen[0]


def _in(docker_api, cid: str, script: str) -> str:
    exec_id = docker_api.exec_create(cid, ["bash", "-c", script])
    out = docker_api.exec_start(exec_id).decode()
    assert docker_api.exec_inspect(exec_id)["ExitCode"] == 0, out
    return out


def _wait_for(docker_api, cid: str, script: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while True:
        exec_id = docker_api.exec_create(cid, ["bash", "-c", script])
        out = docker_api.exec_start(exec_id).decode()
        if docker_api.exec_inspect(exec_id)["ExitCode"] == 0:
            return out
        assert time.monotonic() < deadline, f"timed out waiting for: {script}\n{out}"
        time.sleep(0.2)


def test_init_runs_before_daemons_which_are_restarted_and_logged(docker_api, dev_image, keys):
    pub = keys["good"].with_suffix(".pub").read_text()
    with _container(docker_api, dev_image, env={"DSL_AUTHORIZED_KEYS": pub}) as (cid, _):
        _wait_for(docker_api, cid, "pgrep -fx 'sleep 1000'")
        assert _in(docker_api, cid, "cat /tmp/daemon-starts").split() == ["after-init"]
        first = _in(docker_api, cid, "pgrep -fx 'sleep 1000'").split()
        _in(docker_api, cid, f"kill -KILL {first[0]}")
        _wait_for(docker_api, cid, "test $(wc -l < /tmp/daemon-starts) = 2 && pgrep -fx 'sleep 1000'")
        assert _in(docker_api, cid, "pgrep -fx 'sleep 1000'").split() != first
        assert _in(docker_api, cid, "grep -c 'starting daemon-1' /var/log/dsl/daemon-1.log").strip() == "2"
        assert _in(docker_api, cid, "ls /var/log/dsl").split() == ["daemon-1.log", "init-1.log"]
        assert "daemon-1 exited with status 137; restarting" in docker_api.logs(cid).decode()


def test_docker_stop_ends_the_container_promptly(docker_api, dev_image, keys):
    pub = keys["good"].with_suffix(".pub").read_text()
    with _container(docker_api, dev_image, env={"DSL_AUTHORIZED_KEYS": pub}) as (cid, port):
        _wait_for_sshd(docker_api, cid, port)
        _wait_for(docker_api, cid, "pgrep -fx 'sleep 1000'")
        started = time.monotonic()
        docker_api.stop(cid, timeout=10)
        elapsed = time.monotonic() - started
        status = docker_api.inspect_container(cid)["State"]["ExitCode"]
    assert elapsed < 5, f"docker stop took {elapsed:.1f}s: signals are not forwarded"
    assert status in (0, 143)
