"""Every example compiles to a container-create body that a real dockerd accepts; two are
locked as golden files (``tests/golden/<case>/docker.json``, refreshed only with
``DSL_UPDATE_GOLDEN=1``; host directories fixed so the file does not depend on the machine).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from compiler.docker import HOST_KEY_FILE_PLACEHOLDER, DockerOptions, compile_container, compose_file
from dsl.cli._load import load_environment

REPO = Path(__file__).resolve().parents[3]
GOLDEN = REPO / "tests" / "golden"
GOLDEN_CASES = ("dev-workspace", "services")
_ENV_FUNCTION = re.compile(r"^def (\w+)\(\):\n((?:[ \t]+.*\n|\n)*)", re.M)
TARGETS = [
    pytest.param(ex.name, m[1], id=f"{ex.name}:{m[1]}")
    for ex in sorted((REPO / "examples").iterdir()) if (ex / "build.envd").is_file()
    for m in _ENV_FUNCTION.finditer((ex / "build.envd").read_text()) if "base(" in m[2]
]


def body_for(example: str, function: str, image: str, build_dir: str, home: str) -> tuple[object, dict]:
    env = load_environment(str(REPO / "examples" / example), f":{function}")
    return env, compile_container(env, DockerOptions(image=image, build_dir=build_dir, home=home))


@pytest.mark.parametrize("example, function", TARGETS)
def test_example_compiles_to_body_and_compose(example, function):
    env, body = body_for(example, function, "x:1", f"/src/{example}", "/home/user")
    assert body["Image"] == "x:1"
    assert all(m["Source"].startswith("/") or m["Type"] == "volume" or m["Source"] == HOST_KEY_FILE_PLACEHOLDER
               for m in body["HostConfig"]["Mounts"])
    compose = compose_file(example, body)
    assert compose["services"][example]["image"] == "x:1"


@pytest.mark.parametrize("case", GOLDEN_CASES)
def test_golden_body(case):
    _, body = body_for(case, "build", f"{case}:dev", f"/src/{case}", "/home/user")
    text = json.dumps(body, indent=2, sort_keys=True) + "\n"
    path = GOLDEN / case / "docker.json"
    if os.environ.get("DSL_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.is_file(), f"no golden file for {case}; run with DSL_UPDATE_GOLDEN=1 and review it"
    assert text == path.read_text(), f"{path} is out of date (DSL_UPDATE_GOLDEN=1 refreshes it)"


@pytest.mark.engine
@pytest.mark.parametrize("example, function", TARGETS)
def test_dockerd_creates_and_removes_the_container(example, function, docker_api, base_image, tmp_path):
    """debian:bookworm stands in for the environment image; the body is otherwise as compiled."""
    for sub in ("home", "project"):
        (tmp_path / sub).mkdir()
    env, body = body_for(example, function, base_image, str(tmp_path / "project"), str(tmp_path / "home"))
    from dsl.engines.runner import fill_placeholders

    (tmp_path / "host_key").write_text("not a key: the container is never started\n")
    body = fill_placeholders(body, {"DSL_AUTHORIZED_KEYS": "ssh-ed25519 AAAAC3Nza test",
                                    "DSL_HOST_KEY_FILE": str(tmp_path / "host_key"),
                                    "DSL_JUPYTER_TOKEN": "a-test-token"})
    for m in body["HostConfig"]["Mounts"]:  # the runner creates missing bind sources
        if m["Type"] == "bind" and not Path(m["Source"]).exists():
            Path(m["Source"]).mkdir(parents=True)
    body["HostConfig"]["DeviceRequests"] = None  # no GPU on this machine; the request is checked above
    name = f"dsltest-{example}-{function}-{os.getpid()}".lower()
    created = docker_api.create_container_from_config(body, name=name)
    try:
        info = docker_api.inspect_container(created["Id"])
        assert info["Config"]["Image"] == base_image
        assert sorted(info["Config"].get("ExposedPorts") or {}) == sorted(body["ExposedPorts"])
        assert {m["Destination"] for m in info["Mounts"]} >= {m["Target"] for m in body["HostConfig"]["Mounts"]}
    finally:
        docker_api.remove_container(created["Id"], force=True, v=True)
        for m in body["HostConfig"]["Mounts"]:
            if m["Type"] == "volume":
                try:
                    docker_api.remove_volume(m["Source"], force=True)
                except Exception:
                    pass
