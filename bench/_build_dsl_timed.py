"""Run ``dsl`` with a clock around the engine's solve, for ``bench/build.py``.

Usage: ``python bench/_build_dsl_timed.py TIMING.json dsl-args...``. It behaves exactly like
``python -m dsl dsl-args...`` and writes to TIMING.json:

* ``solve_seconds`` — time inside the engine's ``solve`` (Ping, resolving the base image, the
  Solve RPC and its export) minus the client work ``solve`` calls back into while it runs
  (``compile_environment``, ``image_config``): the time this process waited on BuildKit;
* ``client_in_solve_seconds`` — that client work;
* ``inner_seconds`` — from this script's first line to its exit.

Wall time minus ``solve_seconds`` is the client-side overhead: interpreter start, imports,
evaluating build.envd, compiling LLB and the image config, connecting to the builder (counted
as client time, so the figure errs high), printing. ``solve_seconds`` is null when the build
never reached the builder (a skipped no-op build, or a failure before the solve).
"""

from __future__ import annotations

import time

START = time.perf_counter()

import functools  # noqa: E402 - after the clock starts on purpose
import importlib.abc  # noqa: E402
import importlib.machinery  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from typing import Any  # noqa: E402


# module -> (function to clock, what its time is)
TARGETS = {
    "dsl.engines.buildkit._solve": ("solve", "solve"),
    "compiler.llb": ("compile_environment", "client"),
    "compiler.image_config": ("image_config", "client"),
}


class _ClockOnImport(importlib.abc.MetaPathFinder):
    """Wrap each target the moment its module loads, before anything binds the name.

    Patching lazily keeps the runner free: a build that never solves (a skipped no-op) never
    imports the engine, and neither does the runner.
    """

    def __init__(self) -> None:
        self.spent: dict[str, list[float]] = {"solve": [], "client": []}
        self.clocked = False
        self.solving = 0  # client work counts only while solve() waits on it

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name not in TARGETS:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        run_module = spec.loader.exec_module

        def exec_module(module: Any) -> None:
            run_module(module)
            self._wrap(module, *TARGETS[name])

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec

    def _wrap(self, module: Any, attr: str, kind: str) -> None:
        original = getattr(module, attr, None)
        if original is None:
            return
        spent = self.spent[kind]
        clock = self

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            counted = kind == "solve" or clock.solving > 0
            clock.solving += kind == "solve"
            began = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                clock.solving -= kind == "solve"
                if counted:
                    spent.append(time.perf_counter() - began)

        setattr(module, attr, timed)
        self.clocked = self.clocked or kind == "solve"


def main() -> int:
    timing_path, argv = sys.argv[1], sys.argv[2:]
    clock = _ClockOnImport()
    sys.meta_path.insert(0, clock)
    from dsl.cli import main as dsl_main

    code = 0
    try:
        dsl_main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        with open(timing_path, "w") as out:
            solve, client = sum(clock.spent["solve"]), sum(clock.spent["client"])
            json.dump({"solve_seconds": solve - client if clock.spent["solve"] else None,
                       "client_in_solve_seconds": client, "clocked": clock.clocked,
                       "inner_seconds": time.perf_counter() - START}, out)
    return code


if __name__ == "__main__":
    sys.exit(main())
