"""What the runner tests share: one dev image per test module, a private HOME/XDG per test, and
``dsl`` run as a user runs it (a subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.engines.buildkit.test_build_e2e import _build

# Daemons, init scripts and the mount points are built into the image's entrypoint and layers,
# so the tests' build files (run with --image) differ from this one only in what runs: CONFIG.
WEB = '''\
def build():
    base(image="{base}", dev=True)
    runtime.expose(envd_port=8000, service="web")
    runtime.docker.mount(target="/home/envd/cache")
    runtime.daemon(commands=[["python3", "-m", "http.server", "8000", "--directory", "/home/envd/cache"]])
    runtime.init(commands=['sleep "${{SLOW_START:-0}}"'])
    runtime.environ(env={{"CONFIG": "{config}"}})
    runtime.command(commands={{"where": "pwd; echo $CONFIG"}})
'''


ENV_NAME = "upimage"  # projects are directories of this name: SSH sessions start in /home/envd/<name>


@pytest.fixture(scope="module")
def dev_image(docker_host, docker_api, base_image, ca_bundle, tmp_path_factory) -> Iterator[str]:
    """A dev image built by ``dsl build`` once for the module (removed afterwards)."""
    root = tmp_path_factory.mktemp("upimage")
    project = root / ENV_NAME
    project.mkdir()
    (project / "build.envd").write_text(WEB.format(base=base_image, config="image"))
    tag = f"dsl-up-image:{uuid.uuid4().hex[:8]}"
    result = _build(project, docker_host, root, "-t", tag, "--progress", "plain", "--ca-bundle", ca_bundle)
    assert result.returncode == 0, result.stderr[-3000:]
    yield tag
    docker_api.remove_image(tag, force=True)


@pytest.fixture
def image(dev_image, docker_api) -> Iterator[str]:
    """A tag of its own for the module's image: `dsl down --purge` removes the tag it ran."""
    repo, tag = "dsl-up-test", uuid.uuid4().hex[:8]
    docker_api.tag(dev_image, repo, tag)
    yield f"{repo}:{tag}"
    try:
        docker_api.remove_image(f"{repo}:{tag}")
    except Exception:  # noqa: BLE001 - purged by the test already
        pass


@dataclass
class User:
    """A user with a fresh HOME and config/cache dirs, running ``dsl`` in subprocesses."""

    home: Path
    env: dict[str, str]

    def dsl(self, *args: str, cwd: Path | None = None, timeout: float = 180,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "dsl", *args], cwd=cwd or self.home, env=self.env,
                              capture_output=True, text=True, timeout=timeout, input=input)

    def popen(self, *args: str, cwd: Path) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-m", "dsl", *args], cwd=cwd, env=self.env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)

    def ssh(self, alias: str, command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """The system ssh through the config `dsl up` wrote (ssh reads the passwd home, so -F)."""
        return subprocess.run(["ssh", "-F", str(self.home / ".ssh" / "config"), "-o", "BatchMode=yes", alias,
                               command], env=self.env, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)

    @property
    def ssh_dir(self) -> Path:
        return self.home / "cfg" / "envdsl" / "ssh"


@pytest.fixture
def user(tmp_path, docker_host) -> Iterator[User]:
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("BUILDKIT_HOST", "DSL_CONTEXT", "DSL_SSH_KEY",
                                                           "DSL_NO_SSH_CONFIG", "DSL_JUPYTER_TOKEN")}
    repo = str(Path(__file__).resolve().parents[3])
    env.update(HOME=str(home), DOCKER_HOST=docker_host, XDG_CONFIG_HOME=str(home / "cfg"),
               XDG_CACHE_HOME=str(home / "cache"), PYTHONPATH=repo + os.pathsep + env.get("PYTHONPATH", ""))
    u = User(home, env)
    yield u
    # what a failed test left running (only this test's: the engine is shared)
    listed = u.dsl("ls", "--format", "json")
    if listed.returncode == 0:
        import json

        mine = [row["id"] for row in json.loads(listed.stdout) if row["project_dir"].startswith(str(tmp_path))]
        if mine:
            u.dsl("down", "--purge", *mine, timeout=120)


def project(root: Path, body: str, name: str = ENV_NAME) -> Path:
    """A project directory with a build file; its own identity (the directory's path hash)."""
    directory = root / uuid.uuid4().hex[:6] / name
    directory.mkdir(parents=True)
    (directory / "build.envd").write_text(body)
    return directory
