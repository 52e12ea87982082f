"""The bad-input suite: every file in ``tests/lang/bad/`` must fail ``dsl check`` cleanly.

Each ``NNN_name.envd`` declares what the user should see in a header comment::

    # expect: LINE:COL SUBSTRING            (the error is in this file)
    # expect: lib/x.star:LINE:COL SUBSTRING (the error is in a loaded file)
    # args: -f :gpu                          (extra ``dsl check`` arguments, optional)
    # known-bug: WHY                         (the evaluator still gets this wrong: strict xfail)

A ``known-bug`` file is a strict expected failure: it documents a real defect without
turning CI red, and fails the suite as soon as the defect is fixed so the line gets removed.

``*`` stands for "any" in LINE or COL where the exact position is the evaluator's choice
(e.g. which frame of an endless recursion is blamed). Every file is run through the real
``dsl check`` in a subprocess (in parallel, to keep the suite quick) and must exit 2 with one
``file:line:col: message`` line, optionally followed by one ``  hint:`` line, and no traceback.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

BAD_DIR = Path(__file__).parent / "bad"
CASES = sorted(BAD_DIR.glob("*.envd"))

_EXPECT = re.compile(rb"^# expect: (?:(?P<file>\S+?):)?(?P<line>\d+|\*):(?P<col>\d+|\*) (?P<text>.+)$", re.M)
_ARGS = re.compile(rb"^# args: (?P<args>.+)$", re.M)
_KNOWN_BUG = re.compile(rb"^# known-bug: (?P<why>.+)$", re.M)
_LOCATED = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?P<message>.+)$")
# An error message is for a human: even a 100 MB argument must not be echoed back whole.
_MAX_STDERR = 1500


@dataclass(frozen=True)
class Expectation:
    """What one bad file declares about its error."""

    file: str
    line: str
    col: str
    text: str
    args: tuple[str, ...]
    known_bug: str | None


def read_expectation(path: Path) -> Expectation:
    """Parse the ``# expect:`` / ``# args:`` header of a bad-input file (read as bytes:
    some files are deliberately not UTF-8)."""
    data = path.read_bytes()
    match = _EXPECT.search(data)
    assert match, f"{path.name}: no '# expect: LINE:COL TEXT' header"
    args = _ARGS.search(data)
    bug = _KNOWN_BUG.search(data)
    return Expectation(
        file=(match["file"] or path.name.encode()).decode(),
        line=match["line"].decode(),
        col=match["col"].decode(),
        text=match["text"].decode(),
        args=tuple(args["args"].decode().split()) if args else (),
        known_bug=bug["why"].decode() if bug else None,
    )


def run_check(path: Path, args: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    """Run the real CLI on one file, from its directory, naming it as a user would."""
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "dsl", "check", path.name, *args],
        cwd=path.parent,
        env=env,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=120,
    )


@pytest.fixture(scope="module")
def results() -> dict[str, subprocess.CompletedProcess[str]]:
    """``dsl check`` on every bad file, run concurrently once for the whole module."""
    workers = max(2, (os.cpu_count() or 2) * 2)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {p.name: pool.submit(run_check, p, read_expectation(p).args) for p in CASES}
        return {name: f.result() for name, f in futures.items()}


def test_suite_is_large_enough() -> None:
    """The issue asks for at least 80 bad-input files."""
    assert len(CASES) >= 80


def _param(path: Path) -> object:
    bug = read_expectation(path).known_bug
    marks = [pytest.mark.xfail(strict=True, reason=f"known evaluator bug: {bug}")] if bug else []
    return pytest.param(path, marks=marks, id=path.stem)


@pytest.mark.parametrize("path", [_param(p) for p in CASES])
def test_bad_file_fails_cleanly(path: Path, results: dict[str, subprocess.CompletedProcess[str]]) -> None:
    """Exit 2, one located error line (+ optional hint), the expected text, no traceback."""
    expect = read_expectation(path)
    proc = results[path.name]
    stderr = proc.stderr
    assert "Traceback" not in stderr and "panicked" not in stderr, stderr
    assert proc.returncode == 2, f"exit {proc.returncode}\nstderr:\n{stderr}"
    assert proc.stdout == "", f"stdout should be empty on error, got:\n{proc.stdout}"
    assert len(stderr) <= _MAX_STDERR, f"error output is {len(stderr)} chars long:\n{stderr[:500]}"
    lines = stderr.rstrip("\n").split("\n")
    assert len(lines) in (1, 2), f"expected one error line and an optional hint:\n{stderr}"
    if len(lines) == 2:
        assert lines[1].startswith("  hint: "), f"second line must be a hint:\n{stderr}"
    located = _LOCATED.match(lines[0])
    assert located, f"error line lacks file:line:col:\n{stderr}"
    if expect.file == path.name:
        assert located["file"] == path.name, stderr
    else:
        assert located["file"].replace(os.sep, "/").endswith(expect.file), stderr
    if expect.line != "*":
        assert located["line"] == expect.line, f"expected line {expect.line}:\n{stderr}"
    if expect.col != "*":
        assert located["col"] == expect.col, f"expected column {expect.col}:\n{stderr}"
    assert expect.text in stderr, f"expected {expect.text!r} in:\n{stderr}"
