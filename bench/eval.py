"""Evaluation speed: in-process time per corpus file and cold ``dsl check`` against ``python -c pass``.

Run: ``python bench/eval.py [--runs N]``. Prints figures and ratios; asserts nothing
(targets: <= 5 ms median per file in process, cold ``dsl check`` <= 120 ms).

* In process: every ``.envd`` file of ``../shared/envd-corpus`` is evaluated through
  ``dsl.cli._load.load_environment`` (what ``dsl check`` runs), once to warm up, then N times;
  the per-file median is kept. Files that do not evaluate (v0 syntax, remote include(), ...)
  are counted and skipped.
* Cold: ``dsl check examples/apt-pip`` and the bare interpreter floor ``python -c pass`` are
  started alternately N times each (so drift in machine load hits both equally); medians,
  their difference and ratio are printed. The package's bytecode is compiled first, as
  ``pip install`` does: in a checkout run with ``PYTHONDONTWRITEBYTECODE=1`` every start
  would otherwise recompile each module from source and measure the compiler instead.
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO.parent / "shared" / "envd-corpus"
EXAMPLE = REPO / "examples" / "apt-pip"
TARGET_MS_PER_FILE = 5.0
TARGET_COLD_MS = 120.0


def in_process(runs: int) -> None:
    """Median in-process evaluation time per corpus file."""
    sys.path.insert(0, str(REPO))
    from dsl.cli._load import load_environment
    from dsl.errors import DslError

    files = sorted(CORPUS.glob("*.envd"))
    if not files:
        print(f"in-process: corpus not found at {CORPUS}; skipped")
        return
    medians: dict[str, float] = {}
    failed = 0
    for path in files:
        try:
            load_environment(str(path.parent), f"{path.name}:build")
        except DslError:
            failed += 1
            continue
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            load_environment(str(path.parent), f"{path.name}:build")
            times.append((time.perf_counter() - start) * 1000)
        medians[path.name] = statistics.median(times)
    values = sorted(medians.values())
    p90 = values[int(0.9 * (len(values) - 1))]
    print(f"in-process evaluation, {len(values)} corpus files ({failed} do not evaluate), {runs} runs each:")
    print(f"  median of per-file medians {statistics.median(values):7.3f} ms   (target <= {TARGET_MS_PER_FILE} ms)")
    print(f"  p90                        {p90:7.3f} ms")
    print(f"  slowest                    {values[-1]:7.3f} ms")
    for name, ms in sorted(medians.items(), key=lambda kv: -kv[1])[:5]:
        print(f"    {ms:7.3f} ms  {name}")


def cold(runs: int) -> None:
    """Cold ``dsl check`` wall time against the interpreter's own start-up."""
    for package in ("dsl", "compiler", "stdlib"):
        compileall.compile_dir(str(REPO / package), quiet=1)
    dsl = shutil.which("dsl")
    check = [dsl] if dsl else [sys.executable, "-m", "dsl"]
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "dsl check": [*check, "check", str(EXAMPLE)],
    }
    env = dict(os.environ)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs + 1):  # the first round warms the OS file cache and is dropped
        for name, argv in commands.items():
            start = time.perf_counter()
            proc = subprocess.run(argv, env=env, capture_output=True)
            times[name].append((time.perf_counter() - start) * 1000)
            if proc.returncode != 0:
                print(f"{name} failed (exit {proc.returncode}):\n{proc.stderr.decode(errors='replace')}")
                return
    floor = statistics.median(times["python -c pass"][1:])
    check_ms = statistics.median(times["dsl check"][1:])
    print(f"cold start, {runs} alternating runs each ({' '.join(commands['dsl check'][-2:])}):")
    print(f"  python -c pass  {floor:7.1f} ms  (floor)")
    print(f"  dsl check       {check_ms:7.1f} ms  (target <= {TARGET_COLD_MS:.0f} ms)")
    print(f"  difference      {check_ms - floor:7.1f} ms   ratio {check_ms / floor:5.2f}x")


def main() -> None:
    """Parse options and print both figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21, help="runs per measurement (default 21)")
    args = parser.parse_args()
    in_process(args.runs)
    cold(args.runs)


if __name__ == "__main__":
    main()
