"""config.repo on Kubernetes: an init container clones the repository into the dev project
directory (as envd-server's git-cloner), and its script does what it says on a real git."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

import pytest

from compiler.k8s import K8sOptions, compile_k8s
from compiler.k8s._pod import CLONE_CONTAINER, CLONE_SCRIPT
from dsl.ir import Repo
from tests.compiler.k8s.test_k8s_objects import dev_env, pod_of

URL = "https://github.com/tensorchord/envd"
OPTS = K8sOptions(image="registry.example/ws@sha256:" + "a" * 64)


def _with_repo(env, url: str = URL):
    return dataclasses.replace(env, build=dataclasses.replace(env.build, repo=Repo(url, "d")))


def test_dev_pod_clones_the_repo_into_the_project_directory(valid_objects) -> None:
    objects = compile_k8s(_with_repo(dev_env()), OPTS)
    valid_objects(objects)
    spec = pod_of(objects)["spec"]
    (init,) = spec["initContainers"]
    (main,) = spec["containers"]
    assert init["name"] == CLONE_CONTAINER and init["image"] == OPTS.image
    # directory and URL are arguments of the script, never part of its text
    assert init["command"] == ["/bin/sh", "-c", CLONE_SCRIPT, CLONE_CONTAINER, "/home/envd/proj", URL]
    assert URL not in CLONE_SCRIPT
    assert init["volumeMounts"] == [m for m in main["volumeMounts"] if m["mountPath"] == "/home/envd/proj"]
    assert init["volumeMounts"][0]["name"] == "workdir"
    assert init["securityContext"] == main["securityContext"]  # same user (pod level), same limits
    assert {"name": "GIT_TERMINAL_PROMPT", "value": "0"} in init["env"]


@pytest.mark.parametrize("url", ["git@github.com:tensorchord/envd.git", "ssh://git@github.com/tensorchord/envd",
                                 "http://github.com/tensorchord/envd"])
def test_only_https_urls_are_cloned(url: str) -> None:
    assert "initContainers" not in pod_of(compile_k8s(_with_repo(dev_env(), url), OPTS))["spec"]


def test_no_repo_or_no_dev_layer_means_no_init_container() -> None:
    assert "initContainers" not in pod_of(compile_k8s(dev_env(), OPTS))["spec"]
    env = _with_repo(dev_env())
    serving = dataclasses.replace(env, build=dataclasses.replace(
        env.build, base=dataclasses.replace(env.build.base, dev=False)))
    assert "initContainers" not in pod_of(compile_k8s(serving, OPTS))["spec"]


# ---- the script, run with /bin/sh and git on a local repository ------------------------------

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def _git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def origin(tmp_path: Path) -> str:
    work = tmp_path / "origin"
    work.mkdir()
    (work / "README").write_text("hello\n")
    (work / ".env.example").write_text("A=1\n")
    _git("init", "-q", str(work))
    _git("-c", "user.name=t", "-c", "user.email=t@t", "add", ".", cwd=work)
    _git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init", cwd=work)
    return str(work)


def _clone(directory: Path, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["/bin/sh", "-c", CLONE_SCRIPT, CLONE_CONTAINER, str(directory), url],
                          capture_output=True, text=True, timeout=60)


@needs_git
def test_script_clones_into_an_empty_volume_once(tmp_path: Path, origin: str) -> None:
    volume = tmp_path / "workdir"
    (volume / "lost+found").mkdir(parents=True)  # a fresh ext4 volume
    first = _clone(volume, origin)
    assert first.returncode == 0, first.stderr
    assert (volume / "README").read_text() == "hello\n" and (volume / ".env.example").exists()
    assert _git("status", "--porcelain", cwd=volume) == ""
    assert not (volume / ".dsl-clone").exists()
    (volume / "README").write_text("my work\n")
    again = _clone(volume, origin)  # a restarted pod keeps what the user did
    assert again.returncode == 0 and "already" in again.stdout
    assert (volume / "README").read_text() == "my work\n"


@needs_git
def test_script_leaves_a_used_directory_alone_and_fails_on_a_bad_url(tmp_path: Path, origin: str) -> None:
    used = tmp_path / "used"
    used.mkdir()
    (used / "notes.txt").write_text("x")
    result = _clone(used, origin)
    assert result.returncode == 0 and "not empty" in result.stdout
    assert sorted(p.name for p in used.iterdir()) == ["notes.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    bad = _clone(empty, str(tmp_path / "missing"))
    assert bad.returncode != 0  # the Pod shows Init:Error and retries; the log says why
    retry = _clone(empty, origin)  # the half-made clone does not block the next attempt
    assert retry.returncode == 0, retry.stderr
    assert (empty / "README").exists()
