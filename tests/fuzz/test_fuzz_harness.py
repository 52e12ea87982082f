"""The fuzz harness (``fuzz/run.py``): a CI smoke run, a check that it can find anything at
all, and the replay of every input it ever found (``tests/fuzz/regressions/``).

The smoke run is 20,000 executions over evaluation and every compiler on two workers
(about a minute on this project's 2-core machine); docs/fuzzing.md has the long runs.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RUN = REPO / "fuzz" / "run.py"
REGRESSIONS = sorted((Path(__file__).parent / "regressions").glob("*.envd"))


def _needs_atheris() -> None:
    try:
        import atheris  # noqa: F401
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("atheris is missing under CI=true: pip install -e '.[dev]'", pytrace=False)
        pytest.skip("atheris is not installed (pip install -e '.[dev]')")


def _fuzz(tmp_path: Path, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, str(RUN), "--workdir", str(tmp_path / "work"), *args],
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=tmp_path)


def test_the_harness_finds_a_planted_crash_and_a_planted_hang(tmp_path):
    """Without this, a smoke run that finds nothing could be a harness that sees nothing."""
    _needs_atheris()
    proc = _fuzz(tmp_path, "--execs", "600", "--workers", "1", "--timeout", "3", "--plant", timeout=300)
    assert proc.returncode == 1, proc.stderr[-3000:]
    findings = tmp_path / "work" / "findings"
    (crash,) = findings.glob("crash-*.envd")
    (hang,) = findings.glob("hang-*.envd")
    assert b"FUZZ-PLANTED-CRASH" in crash.read_bytes()
    assert "RuntimeError: planted crash" in crash.with_suffix(".txt").read_text()
    assert b"FUZZ-PLANTED-HANG" in hang.read_bytes()
    assert "timeout" in hang.with_suffix(".txt").read_text()
    assert "1 crashes, 1 hangs" in proc.stderr and str(crash) in proc.stderr and str(hang) in proc.stderr


def test_smoke_run_finds_no_crash_and_no_hang(tmp_path):
    _needs_atheris()
    proc = _fuzz(tmp_path, "--execs", "20000", "--workers", "2", "--seed", "7", timeout=900)
    done = re.search(r"fuzz: done: (\d+) executions in ([\d.]+)s \((\d+)/s\).*", proc.stderr)
    assert done, proc.stderr[-3000:]
    assert proc.returncode == 0, proc.stderr[-6000:]
    assert int(done.group(1)) >= 20_000 and "0 crashes, 0 hangs, 0 native/oom" in done.group(0), done.group(0)
    assert not list((tmp_path / "work" / "findings").iterdir())


@pytest.mark.parametrize("path", REGRESSIONS, ids=[p.name for p in REGRESSIONS])
def test_found_input_now_ends_in_a_result_or_a_dsl_error(path):
    """Each input the fuzzer found (a crash or a hang once) is replayed through the same
    property, in a child process so a hang that comes back fails instead of stalling."""
    code = ("import sys, json; from fuzz.target import run_one;"
            "print(json.dumps(run_one(open(sys.argv[1], 'rb').read())))")
    proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=20,
                          env=dict(os.environ, PYTHONPATH=str(REPO)), cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert '"eval"' in proc.stdout
