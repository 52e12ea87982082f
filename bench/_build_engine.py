"""The engine the build benchmark runs on: a dockerd, a registry, a base image, a docker CLI.

By default the benchmark starts its own dockerd (Debian's 20.10, BuildKit v0.8 inside, like the
test engines) with its own data root and its own bridge, because a cold build needs
``docker builder prune -af``: on the shared test dockerd that would wipe the caches of
other test runs mid-flight. The registry, the ``debian:bookworm`` base and the CA bundle
come from ``scripts/engines up`` (the project's test engines), so nothing is set up twice.
``--docker-host`` runs on an existing dockerd instead (its build cache is pruned).
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BRIDGE = "envdslbench0"
BRIDGE_CIDR = "172.29.213.1/24"
# The bridge is machine-wide: a second benchmark would share it and delete it under the first
# (whose builds then lose the network), and the two would skew each other's times anyway.
LOCK = Path(tempfile.gettempdir()) / f"{BRIDGE}.lock"


def run_logged(argv: Sequence[str], log: Path, *, env: dict[str, str], cwd: Path | None = None) -> int:
    """Run a command with stdout+stderr into ``log``; return its exit code."""
    with log.open("w") as out:
        out.write("$ " + " ".join(argv) + "\n")
        out.flush()
        try:
            return subprocess.run(list(argv), stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd).returncode
        except OSError as exc:
            out.write(f"{exc}\n")
            return 127


def log_tail(log: Path, lines: int = 6) -> str:
    """The last lines of a build log, for a failure message."""
    text = log.read_text(errors="replace").strip().splitlines()
    return "\n".join("    " + line for line in text[-lines:])


@dataclass
class Engine:
    """A dockerd with BuildKit, the registry beside it, and how to reach both."""

    docker_host: str
    registry: str
    ca_bundle: str
    base_image: str
    docker_cli: list[str]
    private: bool

    def env(self) -> dict[str, str]:
        """The process environment every tool runs with: this engine's ``DOCKER_HOST``."""
        return {**os.environ, "DOCKER_HOST": self.docker_host}

    def docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run the docker CLI against this engine."""
        return subprocess.run([*self.docker_cli, *args], capture_output=True, text=True,
                              env=self.env(), check=check)

    def prune(self) -> None:
        """Drop the whole BuildKit cache, cache mounts included: the start of a cold build."""
        self.docker("builder", "prune", "-af")

    def remove_image(self, ref: str) -> None:
        """Remove an image if present."""
        self.docker("rmi", "-f", ref, check=False)


def find_docker_cli() -> list[str]:
    """The first ``docker`` on PATH that runs BuildKit builds without the buildx plugin.

    Clients before 23.0 (Debian's 20.10 is ``/usr/bin/docker``) build with BuildKit natively
    when ``DOCKER_BUILDKIT=1``; newer ones refuse without buildx, so use them only if buildx is
    installed.

    Raises:
        RuntimeError: no usable client, with what was found.
    """
    seen = []
    for folder in os.environ.get("PATH", "").split(os.pathsep) + ["/usr/bin"]:
        path = Path(folder or ".") / "docker"
        if not (path.is_file() and os.access(path, os.X_OK)) or str(path.resolve()) in seen:
            continue
        seen.append(str(path.resolve()))
        out = subprocess.run([str(path), "--version"], capture_output=True, text=True).stdout
        m = re.search(r"version (\d+)\.", out)
        if m and int(m.group(1)) < 23:
            return [str(path)]
        if subprocess.run([str(path), "buildx", "version"], capture_output=True).returncode == 0:
            return [str(path)]
    raise RuntimeError(f"no docker client that builds with BuildKit without buildx (found: {seen or 'none'}); "
                       "apt-get install docker.io gives /usr/bin/docker 20.10")


def shared_engines() -> dict[str, str]:
    """Start (or reuse) the project's test engines; return their exported variables."""
    out = subprocess.run(["bash", str(REPO / "scripts" / "engines"), "up"], capture_output=True,
                         text=True, check=True).stdout
    return dict(re.findall(r"^export (\w+)=(.*)$", out, re.M))


@contextlib.contextmanager
def engine(cache: Path, docker_host: str | None) -> Iterator[Engine]:
    """The benchmark's engine: a private dockerd (default) or the one at ``docker_host``."""
    shared = shared_engines()
    cli = find_docker_cli()
    common = dict(registry=shared["DSL_TEST_REGISTRY"], ca_bundle=shared["DSL_TEST_CA_BUNDLE"],
                  base_image=shared["DSL_TEST_BASE_IMAGE"], docker_cli=cli)
    if docker_host:
        yield Engine(docker_host=docker_host, private=False, **common)
        return
    with _private_dockerd(cache / "dockerd") as host:
        eng = Engine(docker_host=host, private=True, **common)
        _copy_base_image(shared["DOCKER_HOST"], eng)
        yield eng


def _copy_base_image(source_host: str, eng: Engine) -> None:
    """``docker save | docker load`` the test base from the shared dockerd: same image id."""
    if eng.docker("image", "inspect", eng.base_image, check=False).returncode == 0:
        return
    save = subprocess.Popen([*eng.docker_cli, "save", eng.base_image], stdout=subprocess.PIPE,
                            env={**os.environ, "DOCKER_HOST": source_host})
    subprocess.run([*eng.docker_cli, "load", "-q"], stdin=save.stdout, env=eng.env(), check=True,
                   stdout=subprocess.DEVNULL)
    if save.wait() != 0:
        raise RuntimeError(f"docker save {eng.base_image} from {source_host} failed")


@contextlib.contextmanager
def _private_dockerd(root: Path) -> Iterator[str]:
    """Run a dockerd with its own socket, data root, exec root and bridge; stop it after."""
    root.mkdir(parents=True, exist_ok=True)
    with _machine_lock():
        yield from _run_private_dockerd(root)


@contextlib.contextmanager
def _machine_lock() -> Iterator[None]:
    """One private-dockerd benchmark per machine at a time: wait for any other to finish."""
    with LOCK.open("a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"another build benchmark holds {LOCK} (bridge {BRIDGE}); waiting for it to finish",
                  file=sys.stderr, flush=True)
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _run_private_dockerd(root: Path) -> Iterator[str]:
    """The dockerd itself (call with the machine lock held)."""
    sock = root / "docker.sock"
    made_bridge = _ensure_bridge()
    log = (root / "dockerd.log").open("w")
    proc = subprocess.Popen(
        ["dockerd", "--host", f"unix://{sock}", "--data-root", str(root / "data"),
         "--exec-root", str(root / "exec"), "--pidfile", str(root / "dockerd.pid"), "--bridge", BRIDGE],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_for_ping(sock, proc, root / "dockerd.log")
        yield f"unix://{sock}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        if made_bridge:
            subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True)


def _wait_for_ping(sock: Path, proc: subprocess.Popen[bytes], log: Path) -> None:
    for _ in range(120):
        if proc.poll() is not None:
            break
        ping = subprocess.run(["curl", "-fsS", "--unix-socket", str(sock), "http://localhost/_ping"],
                              capture_output=True)
        if ping.returncode == 0:
            return
        time.sleep(0.25)
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-10:])
    raise RuntimeError(f"the bench's private dockerd did not start; last log lines:\n{tail}")


def _ensure_bridge() -> bool:
    """Create the private bridge unless it exists; True when we made it.

    Its own bridge keeps the private dockerd's build containers off ``docker0``, where other
    dockerds on this machine hand out addresses from the same pool.
    """
    if Path(f"/sys/class/net/{BRIDGE}").exists():
        return False
    if shutil.which("ip") is None:
        raise RuntimeError("`ip` (iproute2) is needed to create the bench's bridge")
    net = ipaddress.ip_interface(BRIDGE_CIDR).network
    routes = json.loads(subprocess.run(["ip", "-j", "-4", "route"], capture_output=True, text=True).stdout or "[]")
    for route in routes:
        dst = route.get("dst", "default")
        if dst != "default" and ipaddress.ip_network(dst, strict=False).overlaps(net):
            raise RuntimeError(f"{net} is already routed here ({dst} via {route.get('dev')}); "
                               "pass --docker-host to use an existing dockerd")
    for cmd in (["ip", "link", "add", BRIDGE, "type", "bridge"],
                ["ip", "addr", "add", BRIDGE_CIDR, "dev", BRIDGE],
                ["ip", "link", "set", BRIDGE, "up"]):
        subprocess.run(cmd, check=True, capture_output=True)
    return True
