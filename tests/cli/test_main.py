"""``dsl.cli.main``, the last line of defence: every exception ends as one line and an exit code.

The commands are made to fail in process (a monkeypatched callback), as a bug would make them:
no hook exists in the product for this.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

from dsl.cli import main
from dsl.cli.version import version
from dsl.errors import UsageError

REPO = Path(__file__).resolve().parents[2]


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        main(argv)
    return info.value.code, capsys.readouterr().err


def fail_with(monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> None:
    def callback() -> None:
        raise exc

    monkeypatch.setattr(version, "callback", callback)


def test_an_unexpected_exception_is_one_line_and_exit_70(monkeypatch, capsys) -> None:
    monkeypatch.delenv("DSL_DEBUG", raising=False)
    fail_with(monkeypatch, KeyError("a multi-line\nmessage"))
    code, err = run(["version"], capsys)
    assert code == 70
    assert err == "internal error: KeyError: 'a multi-line\\nmessage' (run again with --debug to see where)\n"


def test_debug_shows_the_traceback_then_the_same_line(monkeypatch, capsys) -> None:
    monkeypatch.delenv("DSL_DEBUG", raising=False)
    fail_with(monkeypatch, RuntimeError("boom"))
    code, err = run(["--debug", "version"], capsys)
    assert code == 70
    assert err.startswith("Traceback (most recent call last):") and 'raise exc' in err
    assert err.endswith("RuntimeError: boom\ninternal error: RuntimeError: boom (run again with --debug to see where)\n")
    monkeypatch.setenv("DSL_DEBUG", "1")
    code, err = run(["version"], capsys)
    assert code == 70 and err.startswith("Traceback")


def test_a_dsl_error_keeps_its_cause_for_debug_only(monkeypatch, capsys) -> None:
    """``raise ... from exc`` keeps the foreign error on ``__cause__``: --debug shows it, the
    normal output is still the one line (and hint) and the error's own exit code."""
    monkeypatch.delenv("DSL_DEBUG", raising=False)
    try:
        try:
            open("/nonexistent/x")
        except OSError as cause:
            raise UsageError("cannot read x", hint="check x") from cause
    except UsageError as exc:
        fail_with(monkeypatch, exc)
    code, err = run(["version"], capsys)
    assert (code, err) == (2, "error: cannot read x\n  hint: check x\n")
    code, err = run(["--debug", "version"], capsys)
    assert code == 2
    assert "FileNotFoundError" in err and "The above exception was the direct cause" in err
    assert err.endswith("error: cannot read x\n  hint: check x\n")


def test_debug_after_the_command_is_not_the_global_flag(monkeypatch, capsys) -> None:
    """Only ``dsl --debug CMD`` turns debugging on: a value that happens to read "--debug" later
    on the line must not change how errors print."""
    monkeypatch.delenv("DSL_DEBUG", raising=False)
    monkeypatch.setattr(version, "params", [click.Argument(["rest"], nargs=-1)])

    def callback(rest: tuple[str, ...]) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(version, "callback", callback)
    code, err = run(["version", "--", "--debug"], capsys)
    assert code == 70 and not err.startswith("Traceback")


def test_reading_a_fifo_as_a_public_key_does_not_hang(tmp_path: Path) -> None:
    """click's Path(exists=True) lets a FIFO through, and reading it waited for a writer forever."""
    (tmp_path / "build.envd").write_text("def build():\n    base(dev=True)\n")
    os.mkfifo(tmp_path / "key.pub")
    proc = subprocess.run([sys.executable, "-m", "dsl", "compile", "-t", "k8s", "--image", "ws:1", "--ssh-public-key",
                           "key.pub"], cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(REPO)),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[-2:] == ["error: cannot read --ssh-public-key key.pub: not a regular file",
                                             "  hint: --ssh-public-key takes a regular file"]


def test_a_directory_where_the_build_file_should_be_is_named_as_such(tmp_path: Path) -> None:
    (tmp_path / "demo" / "build.envd").mkdir(parents=True)
    proc = subprocess.run([sys.executable, "-m", "dsl", "check", "demo"], cwd=tmp_path,
                          env=dict(os.environ, PYTHONPATH=str(REPO)), capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stderr.splitlines()) == (2, [
        "demo/build.envd:1:1: cannot read demo/build.envd: it is a directory",
        "  hint: name a file, not a directory",
    ])


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_an_output_that_cannot_be_written_is_one_line_not_a_bug(tmp_path: Path) -> None:
    """`dsl inspect > file` on a full disk: the machine's problem (exit 1), not a traceback."""
    (tmp_path / "build.envd").write_text("def build():\n    base(dev=True)\n")
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "dsl", "inspect"], cwd=tmp_path, stdout=full,
                              stderr=subprocess.PIPE, env=dict(os.environ, PYTHONPATH=str(REPO)), text=True, timeout=60)
    assert (proc.returncode, proc.stderr) == (1, "error: cannot write the output: No space left on device\n")


def test_debug_shows_what_caused_a_build_file_error(tmp_path: Path) -> None:
    """The causes kept by ``raise ... from exc`` (was ``from None``) are what --debug is for;
    without it the error is still the one located line and its hint."""
    (tmp_path / "build.envd").write_bytes(b'def build():\n    base(image="caf\xe9")\n')
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("DSL_DEBUG", None)
    plain = subprocess.run([sys.executable, "-m", "dsl", "check"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert (plain.returncode, plain.stderr.splitlines()) == (2, [
        "build.envd:2:20: the file is not valid UTF-8 (byte 0xe9)", "  hint: save the build file as UTF-8"])
    debug = subprocess.run([sys.executable, "-m", "dsl", "--debug", "check"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=60)
    assert debug.returncode == 2
    assert "UnicodeDecodeError" in debug.stderr and "The above exception was the direct cause" in debug.stderr
    assert debug.stderr.endswith(plain.stderr)
