"""The ``dev=True`` case of bench/build.py: what the dev layer costs a new environment.

A user's first dev environment pays for the dev runtime once per builder; every other one
should not. So, after pruning the builder, an untimed build of one dev environment (it caches
the runtime bundle, and warms the apt cache mounts for the older code), then the timed cold
build of a second, different one. The dev layer's cost is the sum of the ``dev…`` steps'
durations in its ``--progress json`` events (target ≤ 1 s).

The same two builds run with this checkout and with a baseline revision of envdsl (``git
archive`` of ``--dev-baseline``, default ``ae2b7cb``, the last commit before the bundle), where
the dev layer still ran the image's package manager: that is "today's figure for the same file".
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _build_engine import Engine
from _build_peers import REPO

FIRST = 'def build():\n    base(image="{base}", dev=True)\n    install.apt_packages(name=["jq"])\n'
SECOND = ('def build():\n    base(image="{base}", dev=True)\n    install.python_packages(name=["six"])\n'
          '    run(commands=["echo second > /tmp/second"])\n')
DEV_TARGET = 1.0


def baseline_tree(cache: Path, rev: str) -> Path | None:
    """The envdsl source of ``rev`` (extracted once per commit), or None when git cannot."""
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--verify", f"{rev}^{{commit}}"],
                            capture_output=True, text=True)
    if commit.returncode != 0:
        return None
    tree = cache / "baseline" / commit.stdout.strip()
    if not (tree / "dsl").is_dir():
        tree.mkdir(parents=True, exist_ok=True)
        archive = subprocess.Popen(["git", "-C", str(REPO), "archive", commit.stdout.strip()], stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "-C", str(tree)], stdin=archive.stdout, check=True)
        archive.wait()
    return tree


def _build(eng: Engine, source: Path, project: Path, tag: str, text: str) -> tuple[float, float | None, str]:
    """One ``dsl build`` with ``source`` on PYTHONPATH: (wall s, dev steps s or None, log)."""
    project.mkdir(parents=True, exist_ok=True)
    (project / "build.envd").write_text(text.format(base=eng.base_image))
    env = {**eng.env(), "PYTHONPATH": str(source), "DSL_RUNTIME_BASE": eng.base_image,
           "XDG_CACHE_HOME": str(project.parent / "xdg-cache")}
    argv = [sys.executable, "-m", "dsl", "build", str(project), "-t", tag, "--ca-bundle", eng.ca_bundle,
            "--progress", "json"]
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=project)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        return wall, None, proc.stderr[-2000:]
    events = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    dev = sum(e.get("seconds", 0.0) for e in events
              if e.get("event") == "done" and str(e.get("name", "")).startswith("dev"))
    return wall, dev, ""


def dev_case(eng: Engine, work: Path, cache: Path, rev: str, rounds: int) -> list[str]:
    """Run the case for this checkout and the baseline; the report's lines."""
    sources = [("this checkout", REPO)]
    tree = baseline_tree(cache, rev)
    if tree is not None:
        sources.append((f"today ({rev})", tree))
    lines = ["", "dev=True: cold build of a second, different dev environment once the first was built "
                 f"(the runtime cached); {rounds} round(s), seconds, median"]
    for label, source in sources:
        walls, devs, failure = [], [], ""
        for round_no in range(rounds):
            eng.prune()
            for name in ("first", "second"):
                eng.remove_image(f"dsl-bench-dev-{name}:1")
            _build(eng, source, work / "dev" / "first", "dsl-bench-dev-first:1", FIRST)
            wall, dev, failure = _build(eng, source, work / "dev" / "second", "dsl-bench-dev-second:1", SECOND)
            if dev is None:
                break
            walls.append(wall)
            devs.append(dev)
        if failure or not devs:
            lines.append(f"  {label:<22} FAILED: {failure.strip().splitlines()[-1] if failure.strip() else 'no run'}")
            continue
        dev = statistics.median(devs)
        verdict = ("ok" if dev <= DEV_TARGET else "MISSED") if source == REPO else ""
        lines.append(f"  {label:<22} wall {statistics.median(walls):6.2f}   dev layer {dev:6.2f}"
                     + (f"  (≤ {DEV_TARGET:g} s: {verdict})" if verdict else ""))
    if tree is None:
        lines.append(f"  (no baseline: git rev {rev!r} not found)")
    return lines
