"""``dsl`` and ``python -m dsl``: the warm server runs the command if it takes it, else we do."""

from __future__ import annotations

import os
import sys


def main() -> None:
    argv = sys.argv[1:]
    from dsl import warm

    if warm.wanted(argv):
        from dsl.warm._front import run

        code = run(argv)
        if code is not None:
            sys.stderr.flush()
            os._exit(code)  # nothing of ours to tear down; the command's process has flushed
    from dsl.cli import main as run_here

    run_here()


if __name__ == "__main__":
    main()
