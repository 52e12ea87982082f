"""compiler.docker on IR built in Python: the container-create body and the compose service."""

from __future__ import annotations

import json

import pytest
import yaml

from compiler.docker import (
    AUTHORIZED_KEYS_PLACEHOLDER,
    HOST_KEY_FILE_PLACEHOLDER,
    HOST_KEY_MOUNT_PATH,
    JUPYTER_TOKEN_PLACEHOLDER,
    DockerOptions,
    compile_container,
    compose_file,
    host_path,
)
from compiler.k8s import dump_yaml
from dsl.errors import CompileError
from dsl.ir import (
    BaseImage,
    BuildGraph,
    DockerMount,
    DockerSpec,
    Environment,
    Jupyter,
    Mount,
    Port,
    RuntimeSpec,
    Span,
)

OPTS = DockerOptions(image="proj:dev", build_dir="/src/proj", home="/home/ada")


def env(dev=True, **runtime) -> Environment:
    return Environment(name="proj", build=BuildGraph(base=BaseImage(dev=dev)),
                       runtime=RuntimeSpec(**runtime), source="proj/build.envd")


def test_dev_body_publishes_on_loopback_and_carries_only_a_key_placeholder():
    body = compile_container(env(jupyter=Jupyter(host_port=8888)), OPTS)
    assert body["Image"] == "proj:dev"
    assert f"DSL_AUTHORIZED_KEYS={AUTHORIZED_KEYS_PLACEHOLDER}" in body["Env"]
    assert body["ExposedPorts"] == {"2222/tcp": {}, "8888/tcp": {}}
    binds = body["HostConfig"]["PortBindings"]
    assert binds["2222/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": ""}]
    assert binds["8888/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": "8888"}]
    assert body["WorkingDir"] == "/home/envd/proj"
    assert body["HostConfig"]["Mounts"][0] == {
        "Type": "bind", "Source": "/src/proj", "Target": "/home/envd/proj", "ReadOnly": False}
    assert body["HostConfig"]["ShmSize"] == 2048 * 1024 * 1024
    assert body["HostConfig"]["RestartPolicy"] == {"Name": "unless-stopped"}
    assert body["Labels"]["envdsl/name"] == "proj"
    assert body["Labels"]["envdsl/content-hash"].startswith("sha256:")


@pytest.mark.parametrize(("jupyter", "expected"), [
    (Jupyter(), ["DSL_JUPYTER_TOKEN=${DSL_JUPYTER_TOKEN}"]),  # the runner fills in the token
    (Jupyter(auth=False), []),  # config.jupyter(token=""): nothing to pass
    (None, []),
])
def test_the_jupyter_token_is_a_placeholder_the_runner_and_compose_fill_in(jupyter, expected):
    body = compile_container(env(jupyter=jupyter), OPTS)
    assert [v for v in body["Env"] if "JUPYTER" in v] == expected
    assert JUPYTER_TOKEN_PLACEHOLDER == "${DSL_JUPYTER_TOKEN}"
    svc = compose_file("proj", body)["services"]["proj"]
    tokens = {k: v for k, v in svc["environment"].items() if "JUPYTER" in k}
    # Compose takes it from the shell and stops with this message when it is unset
    assert tokens == ({"DSL_JUPYTER_TOKEN": "${DSL_JUPYTER_TOKEN:?set DSL_JUPYTER_TOKEN to the Jupyter token}"}
                      if expected else {})


def test_dev_body_mounts_the_host_key_from_a_placeholder_file():
    """The host key is per environment and pinned by the client, so it comes from the runner's file
    (never generated in the container, never in the body); the path is the Pod's Secret mount."""
    from compiler.k8s import HOST_KEY_DIR, HOST_KEY_FILE

    body = compile_container(env(), OPTS)
    assert HOST_KEY_MOUNT_PATH == f"{HOST_KEY_DIR}/{HOST_KEY_FILE}"
    assert f"DSL_HOST_KEY_PATH={HOST_KEY_MOUNT_PATH}" in body["Env"]
    assert body["HostConfig"]["Mounts"][-1] == {
        "Type": "bind", "Source": HOST_KEY_FILE_PLACEHOLDER, "Target": HOST_KEY_MOUNT_PATH, "ReadOnly": True}
    svc = compose_file("proj", body)["services"]["proj"]
    assert svc["volumes"][-1]["source"].startswith("${DSL_HOST_KEY_FILE:?")
    non_dev = compile_container(env(dev=False), OPTS)
    assert not any("DSL_HOST_KEY" in json.dumps(x) for x in (non_dev["Env"], non_dev["HostConfig"]["Mounts"]))


def test_mounts_resolve_host_paths_and_use_named_volumes():
    e = env(
        mounts=(Mount("/home/envd/data", host_path="~/datasets"), Mount("/rel", host_path="./d/../x"),
                Mount("/cache"), Mount("/scratch", data_name="scratch")),
        docker=DockerSpec(mounts=(DockerMount("/wheels", source="~/.cache/w", read_only=True),
                                  DockerMount("/cache", source="/abs"))),
    )
    mounts = {m["Target"]: m for m in compile_container(e, OPTS)["HostConfig"]["Mounts"]}
    assert mounts["/home/envd/data"]["Source"] == "/home/ada/datasets"
    assert mounts["/rel"]["Source"] == "/src/proj/x"
    assert mounts["/scratch"] == {"Type": "volume", "Source": "envdsl-data-scratch",
                                  "Target": "/scratch", "ReadOnly": False}
    assert mounts["/wheels"] == {"Type": "bind", "Source": "/home/ada/.cache/w",
                                 "Target": "/wheels", "ReadOnly": True}
    assert mounts["/cache"]["Source"] == "/abs"  # runtime.docker.mount overrides runtime.mount


def test_named_volume_without_host_path_is_the_projects_own():
    """Named after the environment and its project directory: two projects named proj keep apart."""
    import hashlib

    from dsl.identity import project_hash

    project = hashlib.sha256(b"/src/proj").hexdigest()[:8]
    assert project == project_hash("/src/proj")  # the runner's container is proj.<the same hash>
    mounts = compile_container(env(mounts=(Mount("/home/envd/.cache"),)), OPTS)["HostConfig"]["Mounts"]
    assert {"Type": "volume", "Source": f"proj-{project}-home-envd-cache", "Target": "/home/envd/.cache",
            "ReadOnly": False} in mounts
    elsewhere = DockerOptions(image="proj:dev", build_dir="/other/proj", home="/home/ada")
    other = compile_container(env(mounts=(Mount("/home/envd/.cache"),)), elsewhere)["HostConfig"]["Mounts"]
    assert {m["Source"] for m in other if m["Type"] == "volume"} == {f"proj-{project_hash('/other/proj')}-home-envd-cache"}


def test_expose_listen_addr_gpu_and_shm():
    e = env(ports=(Port(8000, 18000, "web", "0.0.0.0"),), gpu=2, shm_size_mb=512)
    host = compile_container(e, OPTS)["HostConfig"]
    assert host["PortBindings"]["8000/tcp"] == [{"HostIp": "0.0.0.0", "HostPort": "18000"}]
    assert host["DeviceRequests"] == [{"Driver": "nvidia", "Count": 2, "Capabilities": [["gpu"]]}]
    assert host["ShmSize"] == 512 * 1024 * 1024


def test_non_dev_body_has_no_ssh_and_no_workdir():
    body = compile_container(env(dev=False, ports=(Port(8080, 8080, "http"),)), OPTS)
    assert body["ExposedPorts"] == {"8080/tcp": {}}
    assert not any(v.startswith("DSL_AUTHORIZED_KEYS") for v in body["Env"])
    assert "WorkingDir" not in body and body["HostConfig"]["Mounts"] == []


def test_home_tilde_only_at_start():
    assert host_path("~", OPTS) == "/home/ada"
    assert host_path("a/~b", OPTS) == "/src/proj/a/~b"


def test_compose_service_matches_body_and_escapes_dollars():
    e = env(ports=(Port(8000, 18000, "web"),), environ=(("PRICE", "$5"),),
            mounts=(Mount("/cache"), Mount("/d", host_path="/data")), gpu=1)
    body = compile_container(e, OPTS)
    doc = yaml.safe_load(yaml.safe_dump(compose_file("proj", body)))
    svc = doc["services"]["proj"]
    assert svc["image"] == "proj:dev"
    assert svc["environment"]["PRICE"] == "$$5"
    assert svc["environment"]["DSL_AUTHORIZED_KEYS"].startswith("${DSL_AUTHORIZED_KEYS:?")
    assert {"target": 8000, "host_ip": "127.0.0.1", "protocol": "tcp", "published": "18000"} in svc["ports"]
    volume = next(v["source"] for v in svc["volumes"] if v["target"] == "/cache")
    assert volume.startswith("proj-") and volume.endswith("-cache")
    assert {"type": "volume", "source": volume, "target": "/cache", "read_only": False} in svc["volumes"]
    assert doc["volumes"] == {volume: {"name": volume}}
    assert svc["deploy"]["resources"]["reservations"]["devices"][0]["count"] == 1
    assert svc["shm_size"] == body["HostConfig"]["ShmSize"]


def _rich_env() -> Environment:
    """Every list the body and the compose file carry, each with several entries."""
    return env(
        ports=(Port(9000), Port(8000, 18000, "web"), Port(7000, 0, "metrics", "0.0.0.0")),
        environ=(("A", "1"), ("B", "$2"), ("Z", "z z")), extra_path=("/opt/a/bin", "/opt/b/bin"),
        mounts=(Mount("/cache"), Mount("/d", host_path="/data"), Mount("/s", data_name="scratch"),
                Mount("/home/envd/x", host_path="~/x")),
        docker=DockerSpec(mounts=(DockerMount("/w", source="~/.cache/w", read_only=True),)),
        jupyter=Jupyter(host_port=8888), gpu=1, shm_size_mb=256,
    )


def created_outputs() -> bytes:
    """The create body (as ``dsl compile --target docker`` prints it) and the compose file,
    for the rich environment and the examples' build files."""
    from dsl.cli._load import load_environment
    from tests.compiler.llb.test_llb_examples import EXAMPLES

    envs = [_rich_env(), *(load_environment(str(p), None) for p in EXAMPLES)]
    out = []
    for e in envs:
        body = compile_container(e, OPTS)
        out += [json.dumps(body, indent=2, sort_keys=True, ensure_ascii=False),
                dump_yaml(compose_file(e.name, body))]
    return "\n".join(out).encode()


def test_body_and_compose_bytes_are_identical_across_processes_and_hash_seeds():
    from tests._elsewhere import outputs_elsewhere

    want = created_outputs()
    assert want.count(b'"HostConfig"') >= 10 and want.count(b"services:") >= 10
    probe = ("from tests.compiler.docker.test_docker_create import created_outputs;"
             "sys.stdout.buffer.write(created_outputs())")
    for got in outputs_elsewhere(probe):
        assert got == want, "another hash seed or timezone changed a create body or compose file"


@pytest.mark.parametrize("runtime, message", [
    ({"ports": (Port(0, span=Span("build.envd", 4, 3)),)}, "container port 0 is out of range"),
    ({"mounts": (Mount("rel/path", span=Span("build.envd", 4, 3)),)}, "expected an absolute path, got 'rel/path'"),
])
def test_bad_input_points_at_the_build_file(runtime, message):
    with pytest.raises(CompileError) as err:
        compile_container(env(**runtime), OPTS)
    assert err.value.headline().startswith("build.envd:4:3: ") and message in err.value.message
