"""Run benchmark: ``dsl up --detach`` against the machine's floor, on the test dockerd.

    python bench/up.py [--rounds N] [--docker-host URL] [--json FILE]

Two figures, each round, for one dev environment whose image is already built (``dsl build``
once, untimed; every timed ``dsl up`` still runs the build's up-to-date check):

* **to SSH-ready**: ``dsl up --detach`` with no container, until it returns, which is after a
  real SSH login with our key against the pinned host key (target ≤ 2 s);
* **unchanged, running**: ``dsl up --detach`` again (target ≤ 0.3 s).

Beside them, the floor on this machine: ``docker run`` of the same image through the Engine API
(the SDK already imported, in this process) until its sshd sends the first bytes of its banner
on the published port; and, for the no-op, a fresh Python process that imports the SDK and
inspects the container once. It prints medians (and min–max) and the ratio to the floor; it never
asserts (a missed target reads ``MISSED``). A private HOME and XDG directories are used, never
your ``~/.ssh``. The engines come from ``scripts/engines up`` unless ``--docker-host`` is given.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGETS = {"ready": 2.0, "noop": 0.3}
BUILD_FILE = '''\
def build():
    base(image="{base}", dev=True)
    runtime.expose(envd_port=8000, service="web")
'''


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _engines() -> dict[str, str]:
    out = subprocess.run(["bash", str(REPO / "scripts" / "engines"), "up"], capture_output=True, text=True,
                         check=True).stdout
    found = {}
    for line in out.splitlines():
        if line.startswith("export ") and "=" in line:
            key, _, value = line.removeprefix("export ").partition("=")
            found[key] = value.strip("'\"")
    return found


def _timed(argv: list[str], *, cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv[2:])} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return elapsed


def _floor_run(api, image: str, public_key: str) -> float:
    """``docker run`` (create + start, port 2222 published on loopback) until sshd's banner."""
    body = {"Image": image, "Env": [f"DSL_AUTHORIZED_KEYS={public_key}"], "ExposedPorts": {"2222/tcp": {}},
            "HostConfig": {"PortBindings": {"2222/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}}}
    started = time.perf_counter()
    container = api.create_container_from_config(body)["Id"]
    try:
        api.start(container)
        port = int(api.inspect_container(container)["NetworkSettings"]["Ports"]["2222/tcp"][0]["HostPort"])
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                if s.recv(4).startswith(b"SSH-"):
                    return time.perf_counter() - started
            time.sleep(0.005)
    finally:
        api.remove_container(container, force=True)


def _floor_inspect(docker_host: str, container: str) -> float:
    script = ("import docker; docker.APIClient(base_url=%r, version='auto').inspect_container(%r)"
              % (docker_host, container))
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", script], check=True)
    return time.perf_counter() - started


def _row(name: str, ours: list[float], floor: list[float], target: float) -> str:
    med, fmed = statistics.median(ours), statistics.median(floor)
    verdict = "ok" if med <= target else "MISSED"
    return (f"| {name} | {med:.2f} s ({min(ours):.2f}–{max(ours):.2f}) | {fmed:.2f} s "
            f"({min(floor):.2f}–{max(floor):.2f}) | {med / fmed:.2f} | ≤ {target:g} s | {verdict} |")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds (default 5)")
    parser.add_argument("--docker-host", help="use this dockerd (default: the test engines)")
    parser.add_argument("--json", type=Path, help="also write the raw timings here")
    args = parser.parse_args(argv)
    engines = {"DOCKER_HOST": args.docker_host} if args.docker_host else _engines()
    docker_host = engines["DOCKER_HOST"]
    base = engines.get("DSL_TEST_BASE_IMAGE", "debian:bookworm")
    ca_bundle = engines.get("DSL_TEST_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    import docker

    api = docker.APIClient(base_url=docker_host, version="auto", timeout=120)
    with tempfile.TemporaryDirectory(prefix="envdsl-bench-up-") as tmp:
        root = Path(tmp)
        home = root / "home"
        project = root / "benchup"
        home.mkdir()
        project.mkdir()
        (project / "build.envd").write_text(BUILD_FILE.format(base=base))
        env = {k: v for k, v in os.environ.items() if k not in ("BUILDKIT_HOST", "DSL_CONTEXT", "DSL_SSH_KEY")}
        env.update(HOME=str(home), DOCKER_HOST=docker_host, XDG_CONFIG_HOME=str(home / "cfg"),
                   XDG_CACHE_HOME=str(home / "cache"), DSL_CA_BUNDLE=ca_bundle,
                   PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        dsl = [sys.executable, "-m", "dsl"]
        _say(f"engine: {docker_host}; building the image once (untimed)")
        subprocess.run([*dsl, "build", "--progress", "quiet"], cwd=project, env=env, check=True,
                       capture_output=True)
        times: dict[str, list[float]] = {"ready": [], "noop": [], "floor_run": [], "floor_inspect": []}
        try:
            _timed([*dsl, "up", "--detach"], cwd=project, env=env)  # warm the OS caches, make the keys
            public = (home / "cfg" / "envdsl" / "ssh" / "key" / "id_ed25519.pub").read_text().strip()
            for round_no in range(args.rounds):
                subprocess.run([*dsl, "down", "benchup"], cwd=project, env=env, check=True, capture_output=True)
                times["ready"].append(_timed([*dsl, "up", "--detach"], cwd=project, env=env))
                times["noop"].append(_timed([*dsl, "up", "--detach"], cwd=project, env=env))
                listed = json.loads(subprocess.run([*dsl, "ls", "--format", "json"], cwd=project, env=env,
                                                   check=True, capture_output=True, text=True).stdout)
                times["floor_run"].append(_floor_run(api, "benchup:dev", public))
                times["floor_inspect"].append(_floor_inspect(docker_host, listed[0]["id"]))
                _say(f"round {round_no + 1}: ready {times['ready'][-1]:.2f} s, no-op {times['noop'][-1]:.2f} s, "
                     f"floor {times['floor_run'][-1]:.2f} / {times['floor_inspect'][-1]:.2f} s")
        finally:
            subprocess.run([*dsl, "down", "--all", "--purge"], cwd=project, env=env, capture_output=True)
            api.close()
    print("| `dsl up --detach` | median (min–max) | floor | ratio | target | |")
    print("|---|---|---|---|---|---|")
    print(_row("built image → SSH-ready", times["ready"], times["floor_run"], TARGETS["ready"]))
    print(_row("unchanged, running", times["noop"], times["floor_inspect"], TARGETS["noop"]))
    print("floor: docker run + sshd's first bytes (SDK in process); fresh python + SDK import + one inspect")
    if args.json:
        args.json.write_text(json.dumps(times, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
