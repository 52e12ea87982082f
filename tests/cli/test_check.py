"""``dsl check`` / ``dsl inspect`` as a user runs them: output, exit codes, determinism, imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD = """# syntax=v1
def build():
    base(dev=True)
    install.python()
    install.python_packages(name=["numpy", "pandas"])
    runtime.environ(env={"B": "2", "A": "1", "C": "3"})
    runtime.command(commands={"z": "echo z", "a": "echo a"})
    runtime.expose(envd_port=8888, service="jupyter")
    install.system_packages(name=["htop"])

def gpu():
    build()
    install.cuda(version="12.2.2")
"""


def dsl(*args: str, cwd: Path, seed: str = "0") -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "dsl", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    proj = tmp_path / "demo"
    proj.mkdir()
    (proj / "build.envd").write_text(BUILD)
    return proj


def test_check_prints_a_summary_and_warnings_on_stderr(project: Path) -> None:
    proc = dsl("check", "demo", cwd=project.parent)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("environment demo  (demo/build.envd:build)")
    assert "ubuntu:22.04 (dev)  [demo/build.envd:3]" in proc.stdout
    assert "PipPackages(packages=numpy pandas)  [demo/build.envd:5]" in proc.stdout
    assert "hash      sha256:" in proc.stdout
    assert "demo/build.envd:9:5: warning: install.system_packages is deprecated" in proc.stderr
    gpu = dsl("check", "demo", "-f", ":gpu", cwd=project.parent)
    assert gpu.returncode == 0 and "cuda      12.2.2" in gpu.stdout


def test_check_summary_shows_every_runtime_and_dev_setting(tmp_path: Path) -> None:
    (tmp_path / "build.envd").write_text("""# syntax=v1
def build():
    base(image="debian:bookworm", dev=True)
    shell("zsh")
    config.owner(uid=1500, gid=1501)
    git_config(name="Ada", email="ada@example.com", editor="vim")
    runtime.init(commands=["make setup"])
    runtime.daemon(commands=[["redis-server", "--port", "6380"]])
    runtime.command(commands={"test": "pytest -q"})
    install.cuda(version="12.2.2")
    config.gpu(count=2)
    config.shm_size(size=4096)
""")
    proc = dsl("check", ".", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for line in ("  shell     zsh", "  owner     1500:1501", "  git       Ada <ada@example.com> editor=vim",
                 "  init      make setup", "  daemon    redis-server --port 6380", "  command   test: pytest -q",
                 "  gpu       2", "  shm       4096 MB"):
        assert line in out, (line, out)


def test_inspect_is_identical_across_hash_seeds(project: Path) -> None:
    outputs = {dsl("inspect", "--format", "json", cwd=project, seed=seed).stdout for seed in ("0", "1", "12345")}
    assert len(outputs) == 1
    data = json.loads(outputs.pop())
    assert data["hash"].startswith("sha256:") and data["environment"]["name"] == "demo"
    assert data["environment"]["runtime"]["environ"] == {"A": "1", "B": "2", "C": "3"}


@pytest.mark.parametrize(
    ("source", "args", "expected"),
    [
        ("def build():\n    install.python_packages(name=3)\n", (), "build.envd:2:5: install.python_packages: argument 'name': expected a list of strings, got int"),
        ("def build():\n    while True:\n        pass\n", (), "build.envd:2:5: Parse error: cannot use reserved keyword `while`"),
        ("def build():\n    pass\n", ("-f", ":serve"), "build.envd:1:1: build.envd has no function 'serve'"),
        ("def f():\n    return f()\ndef build():\n    f()\n", (), "build.envd:2:12: Starlark call stack overflow"),
    ],
)
def test_bad_input_exits_2_with_location_and_no_traceback(tmp_path: Path, source: str, args: tuple[str, ...], expected: str) -> None:
    (tmp_path / "build.envd").write_text(source)
    for command in ("check", "inspect"):
        proc = dsl(command, *args, cwd=tmp_path)
        assert proc.returncode == 2
        assert proc.stderr.splitlines()[0] == expected or proc.stderr.startswith(expected)
        assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_missing_build_file_is_a_usage_error(tmp_path: Path) -> None:
    proc = dsl("check", cwd=tmp_path)
    assert proc.returncode == 2 and "no build file 'build.envd'" in proc.stderr and "Traceback" not in proc.stderr


def test_owner_override(project: Path) -> None:
    from dsl.cli._load import load_environment
    from dsl.errors import UsageError

    env = load_environment(str(project), None, owner="1234")
    assert (env.build.owner.uid, env.build.owner.gid) == (1234, 1234)
    with pytest.raises(UsageError):
        load_environment(str(project), None, owner="root")


def test_check_imports_nothing_heavy(project: Path) -> None:
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "dsl", "check", str(project)],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "dsl.lang._evaluator" in imported  # the measurement is real
    heavy = sorted(m for m in imported if m.split(".")[0] in ("docker", "kubernetes", "grpc", "jinja2", "rich"))
    assert heavy == []
