#!/usr/bin/env python3
"""Time to compile and marshal a generated 1,000-step environment (target < 50 ms).

Usage: python bench/llb.py [--steps N] [--rounds R]
Prints the median and range of compile_environment() over R rounds, for both graph shapes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from compiler.llb import compile_environment  # noqa: E402
from dsl.ir import AptPackages, BaseImage, BuildGraph, Environment, PipPackages, Run  # noqa: E402

TARGET_MS = 50.0


def generated(steps: int) -> Environment:
    """An environment with ``steps`` build steps: pip groups and run() steps, plus apt."""
    out = [AptPackages(("jq", "curl"))]
    for i in range(steps - 1):
        out.append(PipPackages((f"pkg{i}>=1.{i}",)) if i % 2 else Run((f"echo step {i}",)))
    return Environment("bench", BuildGraph(base=BaseImage("debian:bookworm", dev=True), steps=tuple(out)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    env = generated(args.steps)
    worst = 0.0
    for caps, label in ((frozenset(), "sequential"), (frozenset({"mergeop", "diffop"}), "parallel")):
        compile_environment(env, caps=caps)  # warm-up (imports, templates)
        times = []
        for _ in range(args.rounds):
            t = time.perf_counter()
            res = compile_environment(env, caps=caps)
            times.append((time.perf_counter() - t) * 1000)
        med = statistics.median(times)
        worst = max(worst, med)
        print(f"{label:10s} {args.steps} steps → {len(res.digests)} ops, {len(res.definition):,} bytes: "
              f"median {med:.1f} ms (min {min(times):.1f}, max {max(times):.1f}); "
              f"target {TARGET_MS:.0f} ms → {med / TARGET_MS:.2f}× of target")
    return 0 if worst < TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
