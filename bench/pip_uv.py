"""Python installs: ``pip install`` (as ``install.python_packages`` does it) against ``uv pip install``.

    python bench/pip_uv.py [--rounds N] [--docker-host URL] [--packages "numpy pandas ..."] [--no-compile]
                           [--json FILE]

Two images from the same base (the test base ``debian:bookworm`` + apt ``python3 python3-venv
python3-pip``), built on the same dockerd BuildKit (the private one of ``bench/build.py``
unless ``--docker-host``), installing the same realistic ML set into the same venv:

* **pip** — the step ``compiler/llb`` compiles for ``install.python_packages``: the venv lines
  (``--without-pip --system-site-packages``, Debian's pip inside it) and
  ``/opt/dsl/python/bin/python -m pip install …``, with the pip cache mount ``dsl-pip-cache-amd64``
  on ``/root/.cache/pip``, the same ``ENV`` and the CA bundle as a secret mount;
* **uv** — the same step with ``uv pip install --python /opt/dsl/python/bin/python
  --compile-bytecode …`` (pip byte-compiles too, so both images hold the same files) and a uv
  cache mount. uv is PyPI's static binary: a stage ``pip install --target`` s the ``uv`` wheel
  and the step bind-mounts it, so uv never lands in the image (as it could ride in the runtime
  bundle: fetched once per builder, reported apart).

Scenarios, per tool and round: **cold** — ``docker builder prune -af`` (cache mounts included),
the stages before the install step built untimed, then the install; **warm** — the same graph
with only the install step's command changed (a token), so it re-runs with warm cache mounts.
Both report the install step's own duration (BuildKit's ``DONE`` time) and the build's wall time
(the image export included). Then ``pip freeze`` of the two images must be identical.

``--no-compile`` makes both skip byte-compilation (pip ``--no-compile``, uv without
``--compile-bytecode``): the images are then equal again, without ``.pyc`` files, and the
figures show how much of either install is compiling.

Adopt uv only if it is ≥ 2× faster cold and warm and the freezes match; this prints the figures,
the ratios and whether that criterion is met, and never asserts. Needs root, like
``bench/build.py``; PyPI goes through the CA bundle of ``scripts/engines`` (``DSL_TEST_CA_BUNDLE``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _build_engine import Engine, engine, log_tail, run_logged  # noqa: E402

ML_SET = ("numpy", "pandas", "scipy", "scikit-learn", "matplotlib")
VENV = "/opt/dsl/python"  # compiler/llb/_layout.py's VENV
CA = "/run/dsl/ca-bundle.crt"  # compiler/llb/_layout.py's CA_BUNDLE_PATH
UV_DIR = "/opt/uv"
MARKER = "envdsl-bench-install"  # names the timed step in BuildKit's progress
TOOLS = ("pip", "uv")
TARGET_RATIO = 2.0

# The image config compiler/llb gives every step of a venv build (its `env` in the LLB).
ENV_LINES = (f"ENV PATH={VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\\n"
             "    DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 LC_ALL=C.UTF-8 \\\n"
             "    PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore\n")
# compiler/llb/_python.py's _venv_lines, as the first pip step runs them.
VENV_LINES = (
    f"if [ ! -x {VENV}/bin/python ]; then",
    f"python3 -m venv --without-pip --system-site-packages {VENV}",
    f"if {VENV}/bin/python -c 'import pip' >/dev/null 2>&1; then",
    f"for n in pip pip3; do printf '#!/bin/sh\\nexec {VENV}/bin/python -m pip \"$@\"\\n' > {VENV}/bin/$n; "
    f"chmod 755 {VENV}/bin/$n; done",
    "else",
    f"{VENV}/bin/python -m ensurepip --default-pip >/dev/null",
    "fi",
    "fi",
)
SECRET = f"--mount=type=secret,id=ca,target={CA}"
APT_STAGE = (
    "RUN --mount=type=cache,target=/var/cache/apt,id=dsl-apt-cache-debian-bookworm-amd64,sharing=locked \\\n"
    "    --mount=type=cache,target=/var/lib/apt,id=dsl-apt-lists-debian-bookworm-amd64,sharing=locked \\\n"
    "    rm -f /etc/apt/apt.conf.d/docker-clean && apt-get update -o Acquire::Languages=none && \\\n"
    "    apt-get install -y --no-install-recommends python3 python3-venv python3-pip\n"
)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _dockerfile(base: str, tool: str, packages: Sequence[str], token: str, compile_pyc: bool = True) -> str:
    """The Dockerfile for one tool; ``token`` changes only the install step's command."""
    words = " ".join(packages)
    if tool == "pip":
        install = f"PIP_CERT={CA} SSL_CERT_FILE={CA} {VENV}/bin/python -m pip install {'' if compile_pyc else '--no-compile '}{words}"
        mounts = "--mount=type=cache,target=/root/.cache/pip,id=dsl-pip-cache-amd64"
    else:
        install = (f"SSL_CERT_FILE={CA} UV_LINK_MODE=copy UV_CACHE_DIR=/root/.cache/uv "
                   f"/run/uv/bin/uv pip install --python {VENV}/bin/python {'--compile-bytecode ' if compile_pyc else ''}{words}")
        mounts = (f"--mount=type=bind,from=uv,source={UV_DIR},target=/run/uv "
                  "--mount=type=cache,target=/root/.cache/uv,id=envdsl-bench-uv-cache")
    script = "\n".join(("set -euo pipefail", f": {MARKER} {token}", *VENV_LINES, install))
    uv_stage = (
        "FROM python AS uv\n"
        f"RUN --mount=type=cache,target=/root/.cache/pip,id=envdsl-bench-uv-fetch {SECRET} \\\n"
        f"    PIP_CERT={CA} python3 -m pip install -q --break-system-packages --no-deps --target {UV_DIR} uv\n"
    ) if tool == "uv" else ""
    return (f"FROM {base} AS python\n{ENV_LINES}{APT_STAGE}{uv_stage}"
            f"FROM python\nRUN {mounts} {SECRET} {json.dumps(['bash', '-c', script])}\n")


@dataclass
class Timed:
    """One timed build: wall time and the install step's own duration."""

    wall: float
    step: float | None
    ok: bool
    log: Path


@dataclass
class Runs:
    """Every round of one tool."""

    cold: list[Timed] = field(default_factory=list)
    warm: list[Timed] = field(default_factory=list)
    uv_fetch: list[float] = field(default_factory=list)
    freeze: str = ""


def _step_seconds(log: Path, marker: str) -> float | None:
    """BuildKit's ``DONE`` time of the step whose name holds ``marker`` (plain progress)."""
    text = log.read_text(errors="replace")
    found = re.search(rf"^#(\d+) \[[^\]]*\] RUN .*{re.escape(marker)}", text, re.MULTILINE)
    if not found:
        return None
    done = re.search(rf"^#{found.group(1)} DONE (\d+(?:\.\d+)?)s$", text, re.MULTILINE)
    return float(done.group(1)) if done else None


class Bench:
    """Builds the two images on one engine; a log per build under ``work/logs``."""

    def __init__(self, eng: Engine, work: Path, packages: Sequence[str], compile_pyc: bool) -> None:
        self.eng, self.packages, self.compile_pyc = eng, tuple(packages), compile_pyc
        self.context = work / "context"
        self.context.mkdir(parents=True, exist_ok=True)
        self.logs = work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self._count = 0

    def tag(self, tool: str) -> str:
        return f"envdsl-bench-{tool}-install:1"

    def build(self, tool: str, token: str, target: str | None = None) -> Timed:
        """``docker build`` of the tool's Dockerfile (up to ``target``); timed, logged."""
        self._count += 1
        log = self.logs / f"{tool}-{self._count:03d}.log"
        dockerfile = self.context / f"Dockerfile.{tool}"
        dockerfile.write_text(_dockerfile(self.eng.base_image, tool, self.packages, token, self.compile_pyc))
        argv = [*self.eng.docker_cli, "build", "--progress", "plain", "-f", str(dockerfile),
                "--secret", f"id=ca,src={self.eng.ca_bundle}", *(["--target", target] if target else []),
                "-t", self.tag(tool) if target is None else f"envdsl-bench-{tool}-{target}:1", str(self.context)]
        start = time.perf_counter()
        code = run_logged(argv, log, env={**self.eng.env(), "DOCKER_BUILDKIT": "1"})
        return Timed(time.perf_counter() - start, _step_seconds(log, MARKER), code == 0, log)

    def freeze(self, tool: str) -> str:
        proc = self.eng.docker("run", "--rm", "--entrypoint", f"{VENV}/bin/python", self.tag(tool),
                               "-m", "pip", "freeze", check=False)
        return proc.stdout if proc.returncode == 0 else f"(pip freeze failed: {proc.stderr.strip()[-300:]})"

    def remove_images(self, tool: str) -> None:
        for ref in (self.tag(tool), f"envdsl-bench-{tool}-python:1", f"envdsl-bench-{tool}-uv:1"):
            self.eng.remove_image(ref)

    def round(self, tool: str, round_no: int, runs: Runs) -> bool:
        """Cold then warm for one tool; False when a build failed (its log tail is printed)."""
        self.remove_images(tool)
        self.eng.prune()
        prefix = "uv" if tool == "uv" else "python"
        setup = self.build(tool, "setup", target=prefix)  # untimed: apt (and fetching uv)
        if not setup.ok:
            _say(f"  {tool}: the stages before the install failed ({setup.log})\n{log_tail(setup.log)}")
            return False
        if tool == "uv" and (fetch := _step_seconds(setup.log, "--target " + UV_DIR)) is not None:
            runs.uv_fetch.append(fetch)
        for scenario, bucket in (("cold", runs.cold), ("warm", runs.warm)):
            result = self.build(tool, f"{scenario}-{round_no}")
            bucket.append(result)
            step = f"step {result.step:6.2f} s" if result.step is not None else "step ?"
            _say(f"  round {round_no + 1} {tool:<3} {scenario}: wall {result.wall:6.2f} s, {step} ({result.log})")
            if not result.ok:
                _say(log_tail(result.log))
                return False
        runs.freeze = self.freeze(tool)
        self.remove_images(tool)
        return True


def _median(values: Sequence[float | None]) -> float | None:
    return statistics.median(values) if values and None not in values else None  # type: ignore[type-var]


def _fmt(value: float | None) -> str:
    return f"{value:.2f}" if value is not None else "—"


def _report(runs: dict[str, Runs], packages: Sequence[str], rounds: int, eng: Engine, compile_pyc: bool) -> str:
    out = ["", f"Python installs, pip vs uv: {' '.join(packages)} into {VENV} on {eng.base_image}; "
               f"{rounds} round(s), seconds, median; "
               + ("both byte-compile" if compile_pyc else "neither byte-compiles (--no-compile)"),
           f"engine: {'private' if eng.private else 'existing'} dockerd ({eng.docker_host})", "",
           f"{'scenario':<10}{'pip step':>10}{'uv step':>10}{'pip / uv':>10}{'pip wall':>11}{'uv wall':>10}{'pip / uv':>10}"]
    met = True
    for scenario in ("cold", "warm"):
        cells = {}
        for tool in TOOLS:
            timed = [t for t in getattr(runs[tool], scenario)] if tool in runs else []
            ok = bool(timed) and all(t.ok for t in timed)
            cells[tool] = (_median([t.step for t in timed]) if ok else None, _median([t.wall for t in timed]) if ok else None)
        ratios = [a / b if a is not None and b else None for a, b in zip(cells["pip"], cells["uv"])]
        met = met and ratios[0] is not None and ratios[0] >= TARGET_RATIO
        out.append(f"{scenario:<10}{_fmt(cells['pip'][0]):>10}{_fmt(cells['uv'][0]):>10}{_fmt(ratios[0]):>10}"
                   f"{_fmt(cells['pip'][1]):>11}{_fmt(cells['uv'][1]):>10}{_fmt(ratios[1]):>10}")
    fetch = _median(runs["uv"].uv_fetch) if "uv" in runs else None
    out.append(f"fetching uv itself (pip install --target, once per builder, not in the figures above): {_fmt(fetch)} s")
    freezes = [runs[t].freeze for t in TOOLS if t in runs]
    same = len(freezes) == 2 and freezes[0] == freezes[1] and "==" in freezes[0]
    if same:
        out.append(f"pip freeze: identical ({len(freezes[0].splitlines())} distributions)")
    elif not all(f and "==" in f for f in freezes):
        out.append("pip freeze: not compared (a build or the freeze failed; see above)")
    else:
        out.append("pip freeze: DIFFERENT (pip | uv):")
        left, right = (set(f.splitlines()) for f in (freezes + ["", ""])[:2])
        out += [f"  {line:<40} | {other}" for line, other in
                zip(sorted(left - right) or ["(nothing only in pip)"], sorted(right - left) or ["(nothing only in uv)"])]
    verdict = "met" if met and same else "not met"
    out.append(f"adopt uv (≥ {TARGET_RATIO:g}× on the install step cold and warm, identical freeze): {verdict}")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds per tool (default 3)")
    parser.add_argument("--docker-host", help="use this dockerd instead of a private one (its build cache is pruned!)")
    parser.add_argument("--packages", default=" ".join(ML_SET), help=f"what to install (default: {' '.join(ML_SET)})")
    parser.add_argument("--no-compile", action="store_true", help="neither pip nor uv byte-compiles")
    parser.add_argument("--json", type=Path, help="also write the raw timings and freezes here")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the private dockerd as Ctrl-C does
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "envdsl" / "bench"
    packages = args.packages.split()
    runs = {tool: Runs() for tool in TOOLS}
    # The private dockerd lives under bench/build like build.py's: one data root, the base loaded once.
    with engine(base / "build", args.docker_host) as eng:
        _say(f"engine: {eng.docker_host}; installing {' '.join(packages)}")
        bench = Bench(eng, base / "pip_uv", packages, compile_pyc=not args.no_compile)
        for round_no in range(args.rounds):
            order = TOOLS if round_no % 2 == 0 else TOOLS[::-1]
            for tool in order:
                if not bench.round(tool, round_no, runs[tool]):
                    break
        eng.prune()  # leave no half-gigabyte cache mounts behind
        print(_report(runs, packages, args.rounds, eng, not args.no_compile))
    if args.json:
        args.json.write_text(json.dumps({tool: {
            "cold": [{"wall": t.wall, "step": t.step, "ok": t.ok} for t in r.cold],
            "warm": [{"wall": t.wall, "step": t.step, "ok": t.ok} for t in r.warm],
            "uv_fetch": r.uv_fetch, "freeze": r.freeze.splitlines()} for tool, r in runs.items()},
            indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
