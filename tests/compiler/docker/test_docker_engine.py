"""The container-create body on a real dockerd: it is accepted, and a running container sees
the environment, mounts and published ports the build file declared.

``debian:bookworm`` stands in for the environment's image (no sshd in it), so the test gives
the container a command of its own; everything else comes from the compiled body.
"""

from __future__ import annotations

import secrets
import time
import urllib.request
from pathlib import Path

import pytest

from compiler.docker import AUTHORIZED_KEYS_PLACEHOLDER, DockerOptions, compile_container
from dsl.ir import BaseImage, BuildGraph, Environment, Mount, Port, RuntimeSpec

pytestmark = pytest.mark.engine

PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHRlc3Qta2V5LWZvci1lbmdpbmUtdGVzdHM test"


def fill_keys(body: dict, host_key: Path) -> dict:
    """What the runner does: fill the placeholders just before create (the runner's own function)."""
    from dsl.engines.runner import fill_placeholders

    assert f"DSL_AUTHORIZED_KEYS={AUTHORIZED_KEYS_PLACEHOLDER}" in body["Env"]
    host_key.write_text("unused: this container runs a command of its own, not sshd\n")
    return fill_placeholders(body, {"DSL_AUTHORIZED_KEYS": PUBLIC_KEY, "DSL_HOST_KEY_FILE": str(host_key)})


def remove(api, container_id: str, volumes: list[str]) -> None:
    api.remove_container(container_id, force=True, v=True)
    for name in volumes:
        try:
            api.remove_volume(name, force=True)
        except Exception:  # created only if the container got that far
            pass


def test_running_container_sees_env_mounts_and_ports(docker_api, base_image, tmp_path: Path):
    name = f"dsltest-{secrets.token_hex(4)}"
    project = tmp_path / name
    project.mkdir()
    (project / "hello.txt").write_text("hello from the project\n")
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "data.txt").write_text("bound from a relative host path\n")
    env = Environment(
        name=name,
        build=BuildGraph(base=BaseImage(dev=True)),
        runtime=RuntimeSpec(
            ports=(Port(8000, service="web"),),
            environ=(("GREETING", "hi there"),),
            mounts=(Mount("/mnt/shared", host_path="../shared"), Mount("/home/envd/.cache")),
            shm_size_mb=64,
        ),
        source=str(project / "build.envd"),
    )
    body = fill_keys(compile_container(env, DockerOptions(base_image, str(project), str(tmp_path))),
                     tmp_path / "host_key")
    script = (
        "env > /home/envd/$NAME/env.out; cat /mnt/shared/data.txt > /home/envd/$NAME/mount.out; "
        "df -m /dev/shm | tail -1 > /home/envd/$NAME/shm.out; "
        "exec python3 -m http.server 8000 --bind 0.0.0.0"
    ).replace("$NAME", name)
    body = {**body, "Cmd": ["sh", "-c", script], "Entrypoint": None}
    volume = next(m["Source"] for m in body["HostConfig"]["Mounts"] if m["Type"] == "volume")
    created = docker_api.create_container_from_config(body, name=name)
    try:
        docker_api.start(created["Id"])
        info = docker_api.inspect_container(created["Id"])
        binding = info["NetworkSettings"]["Ports"]["8000/tcp"][0]
        assert binding["HostIp"] == "127.0.0.1"
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{binding['HostPort']}/", timeout=2) as r:
                    assert r.status == 200
                    break
            except OSError:
                if time.monotonic() > deadline:
                    logs = docker_api.logs(created["Id"]).decode(errors="replace")
                    pytest.fail(f"published port never answered; logs:\n{logs}")
                time.sleep(0.3)
        env_out = (project / "env.out").read_text()
        assert "GREETING=hi there" in env_out
        assert f"DSL_AUTHORIZED_KEYS={PUBLIC_KEY}" in env_out
        assert (project / "mount.out").read_text() == "bound from a relative host path\n"
        assert info["Config"]["WorkingDir"] == f"/home/envd/{name}"
        assert info["HostConfig"]["ShmSize"] == 64 * 1024 * 1024
        assert info["Config"]["Labels"]["envdsl/name"] == name
        assert volume in {m.get("Name") for m in info["Mounts"]}
    finally:
        remove(docker_api, created["Id"], [volume])
