"""Registry credentials served by the session to the real dockerd BuildKit.

A private Debian ``docker-registry`` with htpasswd authentication runs on a loopback port for
this module; an image pushed there can only be pulled by a build whose session answers
``Auth/Credentials`` with the right user and password from a Docker config directory.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import time
import uuid
from pathlib import Path

import pytest

from compiler.llb import CopyFrom, image, marshal, scratch
from dsl.engines.buildkit import Exporter, Plan, connect, solve
from dsl.engines.buildkit.session import DirectoryExport, Session
from dsl.errors import EngineError
from tests.conftest import engine_missing

pytestmark = pytest.mark.engine

USER, PASSWORD = "dsl-user", "pw-" + uuid.uuid4().hex[:12]


def _bcrypt(password: str) -> str:
    try:
        import crypt  # glibc/libxcrypt bcrypt; the registry accepts only bcrypt hashes
    except ImportError:
        engine_missing("no bcrypt available (python's crypt module) to make an htpasswd file")
    return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))  # cost 4: fast tests


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory, docker_host) -> str:
    """``host:port`` of a password-protected registry (stopped after the module)."""
    if shutil.which("docker-registry") is None:
        engine_missing("docker-registry is not installed")
    root = tmp_path_factory.mktemp("auth-registry")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (root / "htpasswd").write_text(f"{USER}:{_bcrypt(PASSWORD)}\n")
    (root / "config.yml").write_text(json.dumps({  # YAML is a superset of JSON
        "version": 0.1, "log": {"level": "warn"},
        "storage": {"filesystem": {"rootdirectory": str(root / "data")}},
        "http": {"addr": f"127.0.0.1:{port}"},
        "auth": {"htpasswd": {"realm": "dsl-test", "path": str(root / "htpasswd")}},
    }))
    proc = subprocess.Popen(["docker-registry", "serve", str(root / "config.yml")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            engine_missing("the htpasswd registry did not start")
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="module")
def private_image(auth_registry, docker_api) -> tuple[str, str]:
    """(reference, marker) of a one-file image that exists only in the private registry."""
    marker = uuid.uuid4().hex
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        info = tarfile.TarInfo("marker.txt")
        info.size = len(marker)
        tar.addfile(info, io.BytesIO(marker.encode()))
    repo = f"{auth_registry}/dsl-auth/tiny"
    docker_api.import_image_from_data(layer.getvalue(), repository=repo, tag="1")
    events = list(docker_api.push(repo, tag="1", stream=True, decode=True,
                                  auth_config={"username": USER, "password": PASSWORD}))
    assert not [e for e in events if "error" in e], events
    docker_api.remove_image(f"{repo}:1", force=True)  # the build must pull it
    return f"{repo}:1", marker


def docker_config(tmp_path: Path, entries: dict) -> str:
    directory = tmp_path / "docker-config"
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps({"auths": entries}))
    return str(directory)


def pull_marker(docker_host: str, ref: str, config_dir: str, out: Path) -> str:
    state = scratch().file(CopyFrom(image(ref).output, "/marker.txt", "/marker.txt"))
    definition = marshal(state).definition
    with connect(f"docker://{docker_host}") as builder:
        with Session(docker_config_dir=config_dir, exporter_sink=DirectoryExport(out)) as session:
            session.attach(builder)
            solve(builder, lambda caps, platform: Plan(definition), exporter=Exporter("local"),
                  session_id=session.id, timeout=120)
    return (out / "marker.txt").read_text()


def test_wrong_credentials_cannot_pull(docker_host, private_image, tmp_path):
    ref, _ = private_image
    host = ref.split("/", 1)[0]
    wrong = base64.b64encode(f"{USER}:not-the-password".encode()).decode()
    with pytest.raises(EngineError) as info:
        pull_marker(docker_host, ref, docker_config(tmp_path, {host: {"auth": wrong}}),
                    tmp_path / "out")
    assert "401" in str(info.value) or "unauthorized" in str(info.value).lower()
    assert not (tmp_path / "out").exists()  # a failed build leaves no partial export


def test_credentials_from_the_docker_config_pull_a_private_image(docker_host, private_image, tmp_path):
    ref, marker = private_image
    host = ref.split("/", 1)[0]
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    got = pull_marker(docker_host, ref, docker_config(tmp_path, {f"http://{host}": {"auth": auth}}),
                      tmp_path / "out")
    assert got == marker


def test_the_up_to_date_check_logs_in_to_a_private_base_with_the_same_credentials(
        docker_host, docker_api, private_image, tmp_path, ca_bundle):
    from dsl.engines.buildkit._registry_head import registry_digest

    ref, _ = private_image
    host = ref.split("/", 1)[0]
    config = docker_config(tmp_path, {host: {"auth": base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}})
    assert registry_digest(ref, docker_config_dir=config, timeout=10) is not None
    (tmp_path / "nobody").mkdir()
    assert registry_digest(ref, docker_config_dir=str(tmp_path / "nobody"), timeout=10) is None  # 401: cannot verify

    project = tmp_path / "proj"
    (project / "src").mkdir(parents=True)
    (project / "src" / "a.txt").write_text("a\n")
    (project / "build.envd").write_text(
        f'def build():\n    base(image="{ref}", dev=False)\n    io.copy(source="src", target="/src")\n')
    env = {k: v for k, v in os.environ.items() if k not in ("BUILDKIT_HOST", "DSL_CONTEXT")}
    env.update(DOCKER_HOST=docker_host, DOCKER_CONFIG=config, XDG_CONFIG_HOME=str(tmp_path / "cfg"),
               XDG_CACHE_HOME=str(tmp_path / "cache"))
    tag = f"dsl-auth-uptodate:{uuid.uuid4().hex[:8]}"
    results = []
    try:
        for _ in range(3):
            time.sleep(0.25)  # files written just before a build are not trusted for its record
            done = subprocess.run([sys.executable, "-m", "dsl", "build", "-t", tag, "--progress", "plain",
                                   "--ca-bundle", ca_bundle], cwd=project, env=env, capture_output=True,
                                  text=True, timeout=300, check=False)
            assert done.returncode == 0, done.stderr[-2000:]
            results.append(done.stderr)
    finally:
        docker_api.remove_image(tag, force=True)
    assert "up to date" not in results[0]
    assert "up to date" in results[-1] and "#" not in results[-1]  # no progress: nothing was solved
