"""The warm client (``dsl.warm``): a command run by the warm server behaves as the same command
run in a fresh interpreter (output, exit status, terminal, directory, environment, signals),
and the server never outlives its code, its idle time or a refused directory."""

from __future__ import annotations

import os
import pty
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "dev-workspace"
BAD_FILE = 'def build():\n    base(image="debian:bookworm")\n    install.apt_packages(name=[1])\n'


class Warm:
    """``python -m dsl`` with a private runtime directory, and what its server says."""

    def __init__(self, tmp: Path, package_root: Path = REPO) -> None:
        self.runtime = tmp / "xdg-run"
        self.runtime.mkdir(mode=0o700)
        self.root = package_root
        self.env = {**os.environ, "XDG_RUNTIME_DIR": str(self.runtime), "PYTHONPATH": str(package_root)}
        self.env.pop("DSL_WARM", None)

    def run(self, *args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
        # `-m` searches the working directory first: run from the root whose package we mean
        return subprocess.run([sys.executable, "-m", "dsl", *args], cwd=cwd or self.root, env={**self.env, **env},
                              capture_output=True, text=True, timeout=60)

    def popen(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        """Started as from a terminal: SIGINT as Python expects it, whatever the test runner's
        (a background job of a script ignores SIGINT, and its children inherit that)."""
        return subprocess.Popen([sys.executable, "-m", "dsl", *args], cwd=REPO, env=env or self.env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))

    def sockets(self) -> list[Path]:
        return sorted((self.runtime / "envdsl").glob("dsl-*.sock"))

    def status(self) -> list[dict]:
        """Every answering server's status (pid, served)."""
        from dsl.warm import _wire

        answers = (_wire.ask(str(p), "status") for p in self.sockets())
        return [a for a in answers if a and "pid" in a]

    def wait_for_server(self, served: int | None = None, timeout: float = 20.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.status()
            if found and (served is None or found[0]["served"] == served):
                return found[0]
            time.sleep(0.05)
        raise AssertionError(f"no warm server in {self.runtime} (log: {self.log()})")

    def log(self) -> str:
        return "\n".join(p.read_text() for p in (self.runtime / "envdsl").glob("*.log"))

    def stop(self) -> None:
        subprocess.run([sys.executable, "-m", "dsl", "warm", "stop"], env=self.env, capture_output=True, timeout=30)


@pytest.fixture
def warm(tmp_path: Path) -> Iterator[Warm]:
    w = Warm(tmp_path)
    yield w
    w.stop()


def _started(warm: Warm) -> dict:
    """The first eligible command runs in-process and starts the server; wait for it."""
    first = warm.run("check", str(EXAMPLE))
    assert first.returncode == 0, first.stderr
    return warm.wait_for_server(served=0)


def test_a_warm_command_prints_and_exits_exactly_as_in_a_fresh_interpreter(warm: Warm, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "build.envd").write_text(BAD_FILE)
    _started(warm)
    for args in (("check", str(EXAMPLE)), ("compile", "--target", "k8s", str(EXAMPLE)), ("check", str(bad))):
        here = warm.run(*args, DSL_WARM="0")
        served = warm.run(*args)
        assert (served.returncode, served.stdout, served.stderr) == (here.returncode, here.stdout, here.stderr)
    assert served.returncode == 2 and "build.envd:3:" in served.stderr and "Traceback" not in served.stderr
    assert warm.status()[0]["served"] == 3  # they really ran in the server


def test_the_command_gets_the_callers_directory_environment_and_umask(warm: Warm, tmp_path: Path) -> None:
    _started(warm)
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.run([sys.executable, "-c", "import os, sys, runpy; os.umask(0o077); sys.argv = ['dsl', *sys.argv[1:]];"
                           " runpy.run_module('dsl', run_name='__main__')",
                           "compile", "--target", "k8s", "-o", "manifests", str(EXAMPLE)],
                          cwd=out, env=warm.env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    written = sorted((out / "manifests").iterdir())
    assert written and all(p.stat().st_mode & 0o077 == 0 for p in written)  # our umask, not the server's
    assert warm.status()[0]["served"] == 1
    # the environment of each call, not of the call that started the server
    for name in ("first", "second"):
        proc = warm.run("build", str(EXAMPLE), "--builder", "docker", DOCKER_HOST=f"unix://{tmp_path}/{name}.sock")
        assert proc.returncode == 1 and f"{name}.sock" in proc.stderr, proc.stderr
    assert warm.status()[0]["served"] == 3


def test_the_server_keeps_none_of_the_environment_that_started_it(warm: Warm) -> None:
    """Each command gets its caller's environment; the long-lived server holds no token of the
    command that happened to start it."""
    first = warm.run("check", str(EXAMPLE), REGISTRY_TOKEN="s3cret-token")
    assert first.returncode == 0, first.stderr
    server = warm.wait_for_server(served=0)
    environ = Path(f"/proc/{server['pid']}/environ").read_bytes()
    assert b"s3cret-token" not in environ and b"PYTHONPATH=" in environ


def test_the_command_writes_to_the_callers_terminal(warm: Warm) -> None:
    """stdout is the caller's tty itself: binary LLB is refused there, as in-process."""
    _started(warm)
    results = []
    for flag in ("0", "1"):
        leader, follower = pty.openpty()
        proc = subprocess.run([sys.executable, "-m", "dsl", "compile", "--target", "llb", str(EXAMPLE)],
                              cwd=REPO, env={**warm.env, "DSL_WARM": flag}, stdout=follower,
                              stderr=subprocess.PIPE, text=True, timeout=60)
        os.close(follower)
        os.close(leader)
        results.append((proc.returncode, proc.stderr))
    assert results[0] == results[1]
    assert results[1][0] == 2 and "terminal" in results[1][1]
    assert warm.status()[0]["served"] == 1


class _SilentEngine:
    """A Docker socket that accepts and never answers: a build blocks on it. Records the pid of
    each process that connects (the process really running the build)."""

    def __init__(self, path: Path) -> None:
        self.listener = socket.socket(socket.AF_UNIX)
        self.listener.bind(str(path))
        self.listener.listen(8)
        self.peers: list[int] = []
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
            self.peers.append(struct.unpack("3i", creds)[0])
            self.conns.append(conn)

    def wait_for_peer(self) -> int:
        deadline = time.monotonic() + 20
        while not self.peers and time.monotonic() < deadline:
            time.sleep(0.02)
        assert self.peers, "the build never connected to the engine"
        return self.peers[0]


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its parent has finished)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _gone(pid: int, timeout: float = 10.0) -> bool:
    """Whether ``pid`` has finished within ``timeout`` (it may be writing its last bytes)."""
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return not _alive(pid)


def test_ctrl_c_reaches_the_command_and_cancels_it(warm: Warm, tmp_path: Path) -> None:
    _started(warm)
    warm.env["DOCKER_HOST"] = f"unix://{tmp_path}/docker.sock"
    seen = []
    for flag in ("0", "1"):
        engine = _SilentEngine(tmp_path / "docker.sock")
        proc = warm.popen("build", str(EXAMPLE), "--builder", "docker", env={**warm.env, "DSL_WARM": flag})
        worker = engine.wait_for_peer()
        assert (worker == proc.pid) == (flag == "0")  # warm: the build runs in the server's child
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
        seen.append((proc.returncode, err))
        assert _gone(worker)
        engine.listener.close()
        (tmp_path / "docker.sock").unlink()
    assert seen[0] == seen[1] and seen[1][0] == 130, seen


def test_a_signal_the_caller_ignores_is_ignored_by_its_command_too(warm: Warm, tmp_path: Path) -> None:
    """`nohup`, or `dsl build &` in a script: SIGINT is ignored, in-process and warm alike."""
    _started(warm)
    warm.env["DOCKER_HOST"] = f"unix://{tmp_path}/docker.sock"
    engine = _SilentEngine(tmp_path / "docker.sock")
    proc = subprocess.Popen([sys.executable, "-m", "dsl", "build", str(EXAMPLE), "--builder", "docker"],
                            cwd=REPO, env=warm.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    worker = engine.wait_for_peer()
    assert worker != proc.pid
    proc.send_signal(signal.SIGINT)
    time.sleep(1.0)
    assert proc.poll() is None and _alive(worker)
    proc.kill()
    proc.wait(timeout=10)
    assert _gone(worker)


def test_a_caller_killed_outright_takes_its_command_with_it(warm: Warm, tmp_path: Path) -> None:
    _started(warm)
    engine = _SilentEngine(tmp_path / "docker.sock")
    warm.env["DOCKER_HOST"] = f"unix://{tmp_path}/docker.sock"
    proc = warm.popen("build", str(EXAMPLE), "--builder", "docker")
    worker = engine.wait_for_peer()
    proc.kill()
    proc.wait(timeout=10)
    assert _gone(worker)


def test_a_server_whose_code_changed_steps_aside(tmp_path: Path) -> None:
    """After an upgrade or a checkout the old server must not run the new code's commands."""
    root = tmp_path / "checkout"
    for package in ("dsl", "compiler", "stdlib"):
        shutil.copytree(REPO / package, root / package, ignore=shutil.ignore_patterns("__pycache__"))
    warm = Warm(tmp_path, package_root=root)
    try:
        old = _started(warm)
        changed = root / "dsl" / "cli" / "check.py"
        changed.write_text(changed.read_text().replace('"""', '"""Edited. ', 1))
        proc = warm.run("check", str(EXAMPLE))
        assert proc.returncode == 0, proc.stderr
        new = warm.wait_for_server(served=0)
        assert new["pid"] != old["pid"] and _gone(old["pid"])
        assert warm.run("check", str(EXAMPLE)).returncode == 0
        assert warm.status()[0]["served"] == 1
    finally:
        warm.stop()


def test_an_idle_server_exits_and_removes_its_socket(warm: Warm) -> None:
    warm.env["DSL_WARM_IDLE"] = "1"
    server = _started(warm)
    assert _gone(server["pid"], timeout=15) and warm.sockets() == []


def test_dsl_warm_0_and_ineligible_commands_start_no_server(warm: Warm) -> None:
    assert warm.run("check", str(EXAMPLE), DSL_WARM="0").returncode == 0
    assert warm.run("version").returncode == 0
    time.sleep(1.0)
    assert warm.sockets() == []


def test_a_runtime_directory_others_can_enter_is_not_used(warm: Warm) -> None:
    (warm.runtime / "envdsl").mkdir(mode=0o700)
    (warm.runtime / "envdsl").chmod(0o755)
    assert warm.run("check", str(EXAMPLE)).returncode == 0
    time.sleep(1.0)
    assert warm.sockets() == []


def test_warm_status_and_stop(warm: Warm) -> None:
    assert "no warm server" in warm.run("warm", "status").stdout
    server = _started(warm)
    listing = warm.run("warm", "status").stdout
    assert str(server["pid"]) in listing and str(REPO / "dsl") in listing
    stopped = warm.run("warm", "stop")
    assert f"stopped 1 warm server(s): pid {server['pid']}" in stopped.stdout
    assert _gone(server["pid"]) and warm.sockets() == []
