"""Limits that keep a hostile or broken build file from crashing or flooding ``dsl`` (and what
the start-up savings around them must not cost).

The interpreter (starlark-rust) overflows its native stack on deep nesting and writes panic
reports straight to file descriptor 2; these tests pin the guards in ``dsl.lang._limits`` and
``dsl.lang._native_stderr``. Known limitation, by design: a huge repetition whose count is
computed at run time (``n = 2000000000`` then ``"a" * n``) is one interpreter instruction the
time limit cannot interrupt; only literal counts are refused up front (see ``_limits``).
"""

from __future__ import annotations

import os

import pytest

from dsl.errors import BuildFileError
from dsl.lang import evaluate_source
from dsl.lang._limits import MAX_FILE_BYTES, MAX_NESTING, check_nesting
from dsl.lang._native_stderr import native_stderr_filtered, without_panics

_PANIC = (
    b"\nthread '<unnamed>' (31085) panicked at /cargo/starlark/src/values/layout/avalue.rs:112:13:\n"
    b"AlignedSize must not exceed u32::MAX\nstack backtrace:\n   0: __rustc::rust_begin_unwind\n"
    b"   1: core::panicking::panic_fmt\nnote: Some details are omitted, run with `RUST_BACKTRACE=full`\n"
)


def _error(source: str) -> BuildFileError:
    with pytest.raises(BuildFileError) as info:
        evaluate_source(source)
    return info.value


def test_panic_reports_are_dropped_and_other_output_kept() -> None:
    """Both shapes of a Rust panic report go; the text around them stays, in order."""
    short = b"thread '<unnamed>' panicked at src/x.rs:1:2:\nboom\nnote: run with `RUST_BACKTRACE=1`\n"
    data = b"before\n" + _PANIC + b"between\n" + short + b"after\n"
    assert without_panics(data) == b"before\nbetween\nafter\n"
    assert without_panics(b"nothing to drop\n") == b"nothing to drop\n"


def test_a_real_interpreter_panic_leaves_only_our_error(capfd: pytest.CaptureFixture[str]) -> None:
    """starlark-rust panics on this range; the user sees one located error, no panic text."""
    err = _error("def build():\n    step = 1073741824\n    xs = list(range(-2147483648, 2147483647, step))\n")
    assert "evaluation aborted by the interpreter" in err.message
    assert (err.span.line, err.span.col) == (1, 1)
    captured = capfd.readouterr()
    assert "panicked" not in captured.err and "backtrace" not in captured.err


def test_other_writes_to_fd2_are_replayed(capfd: pytest.CaptureFixture[str]) -> None:
    """What is not a panic (a library's message) still reaches stderr after the evaluation."""
    with native_stderr_filtered():
        os.write(2, b"a library says hello\n" + _PANIC)
        with native_stderr_filtered():  # nested/concurrent evaluations share one capture
            os.write(2, b"and goodbye\n")
    assert capfd.readouterr().err == "a library says hello\nand goodbye\n"


def test_a_file_over_one_mib_is_refused() -> None:
    """Size is checked before anything is parsed."""
    source = "def build():\n    pass\n" + "# padding\n" * (MAX_FILE_BYTES // 10 + 1)
    err = _error(source)
    assert "limited to 1,048,576 bytes" in err.message and (err.span.line, err.span.col) == (1, 1)


def test_nesting_limit_is_exact_and_reported_at_the_first_bracket_beyond_it() -> None:
    """MAX_NESTING brackets evaluate; one more is refused at that bracket's column."""
    ok = "X = " + "[" * MAX_NESTING + "]" * MAX_NESTING + "\ndef build():\n    pass\n"
    evaluate_source(ok)
    err = _error("X = " + "[" * (MAX_NESTING + 1) + "]" * (MAX_NESTING + 1) + "\n")
    assert "brackets nest more than 200 levels deep" in err.message
    assert (err.span.line, err.span.col) == (1, 5 + MAX_NESTING)


@pytest.mark.parametrize(
    "source",
    [
        'X = "' + "[" * 5000 + '"\n',  # brackets inside a string
        "# " + "(" * 5000 + "\n",  # ... and inside a comment
        'X = """\n' + "{" * 5000 + '\n"""\n',  # ... and a triple-quoted string
        "X = [" + ", ".join(f'"p{i}" + "x"' for i in range(5000)) + "]\n",  # long but flat
        "X = 3 * 1000000000\n",  # int arithmetic is not a repetition
        'X = "-" * 80\n',
        "S = [4]\nX = S[0] * 1000000000\n",  # a subscript, not a list literal
    ],
)
def test_scan_has_no_false_alarms(source: str) -> None:
    """Strings, comments, long flat lists and ordinary arithmetic pass the pre-scan."""
    check_nesting(source, "build.envd")


@pytest.mark.parametrize(
    ("source", "col"),
    [
        ('X = "ab" * 100000000\n', 10),
        ("X = [0, 1] * 20000000\n", 12),
        ("X = 1000000000 * [0]\n", 16),
    ],
)
def test_literal_repetition_too_large_is_refused_at_the_operator(source: str, col: int) -> None:
    """A literal count is refused before evaluation (no gigabytes, no minutes past the time limit)."""
    err = _error(source)
    assert "builds a value too large" in err.message
    assert (err.span.line, err.span.col) == (1, col)


@pytest.mark.parametrize(("typo", "suggestion"), [("instal", "install"), ("bse", "base"), ("confg", "config")])
def test_unknown_names_still_get_a_builtin_suggestion(typo: str, suggestion: str) -> None:
    """Only the builtins a file names are predeclared (a start-up saving); suggestions still cover all."""
    err = _error(f"def build():\n    {typo}.x()\n")
    assert f"did you mean `{suggestion}`?" in err.message
