"""The evaluator: dialect, function selection, load(), include(), limits, spans, names."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from dsl.errors import BuildFileError, UsageError
from dsl.lang import env_name, evaluate_file, evaluate_source, resolve_target


@pytest.mark.parametrize(
    ("source", "where", "needle"),
    [
        ("def build():\n    while True:\n        pass\n", "build.envd:2:5", "while"),
        ("def build():\n    x = set()\n", "build.envd:2:9", "set"),
        ("if True:\n    pass\ndef build():\n    pass\n", "build.envd:1:1", "outside `def`"),
        ("x = 1\nx = 2\ndef build():\n    pass\n", "build.envd:2:1", "cannot reassign global 'x' (first defined at build.envd:1:1)"),
        ("X = [1]\nX += [2]\ndef build():\n    pass\n", "build.envd:2:1", "cannot reassign global 'X'"),
        ("def build():\n    x = f'{1}'\n", "build.envd:2:9", "f-strings"),
        ("def build(:\n", "build.envd:1:11", "Parse error"),
        ("def build():\n    install.pyton()\n", "build.envd:2:5", "install has no builtin 'pyton', did you mean 'python'?"),
        ("def build():\n    struct(a=1)\n", "build.envd:2:5", "Variable `struct` not found"),
        ("def build():\n    install.python(versio='3.9')\n", "build.envd:2:5", "extra named parameter"),
    ],
)
def test_dialect_errors(source: str, where: str, needle: str) -> None:
    with pytest.raises(BuildFileError) as info:
        evaluate_source(source)
    assert str(info.value.span) == where and needle in str(info.value)


def test_recursion_allowed_and_syntax_header() -> None:
    src = "# syntax=v1\ndef pkgs(n):\n    return [] if n == 0 else pkgs(n - 1) + ['p%d' % n]\ndef build():\n    install.python_packages(pkgs(3))\n"
    assert evaluate_source(src).environment.build.steps[0].packages == ("p1", "p2", "p3")


def test_v0_is_rejected_with_the_v1_equivalent() -> None:
    with pytest.raises(BuildFileError) as info:
        evaluate_source("# syntax=v0\ndef build():\n    pass\n")
    assert str(info.value.span) == "build.envd:1:1" and "syntax=v0" in str(info.value)
    with pytest.raises(BuildFileError) as info:
        evaluate_source('def build():\n    base(os="ubuntu20.04", language="python3.8")\n')
    assert str(info.value) == "build.envd:2:5: base: v0 syntax: base(os=..., language=...) was removed in envd v1"
    assert info.value.hint == 'write: base(dev=True) + install.conda() + install.python(version="3.8")'


def test_limits_end_runaway_code_cleanly() -> None:
    with pytest.raises(BuildFileError) as info:
        evaluate_source("def f(n):\n    return f(n + 1)\ndef build():\n    f(0)\n")
    assert str(info.value.span) == "build.envd:2:12" and "call stack overflow" in str(info.value)
    started = time.monotonic()
    with pytest.raises(BuildFileError) as info:
        evaluate_source("def build():\n    x = [i for i in range(1000000000)]\n", timeout=0.5)
    assert time.monotonic() - started < 3
    assert info.value.span.line == 2 and "cancelled" in str(info.value) and "time limit" in info.value.hint


def test_function_selection_errors() -> None:
    src = "def build():\n    pass\ndef gpu():\n    install.cuda('12.2.2')\n"
    assert evaluate_source(src, function="gpu").environment.build.cuda.version == "12.2.2"
    with pytest.raises(BuildFileError) as info:
        evaluate_source(src, function="serve")
    assert "has no function 'serve' (functions defined: build, gpu)" in str(info.value)
    with pytest.raises(BuildFileError, match="'build' is not a function"):
        evaluate_source("build = 1\n")
    with pytest.raises(BuildFileError, match=r"build\(\) must take no arguments"):
        evaluate_source("def build(x):\n    pass\n")


def test_spans_point_at_the_users_call_not_the_stdlib() -> None:
    src = "def helper():\n    x = 1; install.python_packages(name=[1])\ndef build():\n    helper()\n"
    with pytest.raises(BuildFileError) as info:
        evaluate_source(src)
    assert str(info.value.span) == "build.envd:2:12"
    env = evaluate_source("def build():\n    i = install\n    i.python()\n").environment
    assert str(env.build.steps[0].span) == "build.envd:3:5"


def test_non_utf8_and_print() -> None:
    with pytest.raises(BuildFileError) as info:
        evaluate_source(b"def build():\n    x = '\xff'\n")
    assert str(info.value.span) == "build.envd:2:10"
    assert evaluate_source("def build():\n    print('hi', 1)\n").messages == ("build.envd:2:5: hi 1",)


def test_load_relative_to_the_loading_file_then_cwd() -> None:
    files = {
        "lib/common.star": 'load("pkgs.star", "PKGS")\ndef common():\n    install.python_packages(PKGS)\n',
        "lib/pkgs.star": 'PKGS = ["numpy"]\n',
        "top.star": "X = 1\n",
    }
    src = 'load("lib/common.star", "common")\nload("top.star", "X")\ndef build():\n    common()\n'
    env = evaluate_source(src, files=files).environment
    assert env.build.steps[0].packages == ("numpy",)
    assert str(env.build.steps[0].span) == "lib/common.star:3:5"


def test_load_cycle_and_missing_target() -> None:
    files = {"a.star": 'load("b.star", "B")\nA = 1\n', "b.star": 'load("a.star", "A")\nB = 1\n'}
    with pytest.raises(BuildFileError) as info:
        evaluate_source('load("a.star", "A")\ndef build():\n    pass\n', files=files)
    assert "load cycle: a.star -> b.star -> a.star" in str(info.value)
    assert str(info.value.span) == "b.star:1:1"
    with pytest.raises(BuildFileError) as info:
        evaluate_source('load("nope.star", "x")\ndef build():\n    pass\n')
    assert str(info.value) == "build.envd:1:1: load: cannot find 'nope.star'"
    files = {"bad.star": "def f(:\n"}
    with pytest.raises(BuildFileError) as info:
        evaluate_source('load("bad.star", "f")\ndef build():\n    pass\n', files=files)
    assert info.value.span.file == "bad.star" and "Parse error" in str(info.value)


def _git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args], cwd=cwd, check=True, capture_output=True)


def test_include_of_a_local_git_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "envdlib"
    (repo / "src").mkdir(parents=True)
    (repo / "src" / "tb.envd").write_text(
        'def tensorboard(host_port = 6006):\n    runtime.expose(envd_port=6006, host_port=host_port, service="tensorboard")\n_hidden = 1\n')
    (repo / "src" / "more.envd").write_text('VERSION = "1"\n')
    _git("init", "-q", cwd=repo)
    _git("add", "-A", cwd=repo)
    _git("commit", "-qm", "lib", cwd=repo)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    src = f'lib = include("file://{repo}")\ndef build():\n    lib.tensorboard(host_port=8000)\n    print(lib.VERSION)\n'
    for _ in range(2):  # the second run updates the cached clone with git pull
        result = evaluate_source(src)
        port = result.environment.runtime.ports[0]
        assert (port.container_port, port.host_port, str(port.span)) == (6006, 8000, "build.envd:3:5")
        assert result.messages == ("build.envd:4:5: 1",)
    assert len(list((tmp_path / "cache" / "envdsl" / "include").iterdir())) == 1
    with pytest.raises(BuildFileError, match="has no attribute|_hidden"):
        evaluate_source(src.replace("lib.VERSION", "lib._hidden"))


def test_include_into_an_unwritable_cache_is_a_build_file_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "lib"
    repo.mkdir()
    (repo / "a.envd").write_text("def f():\n    pass\n")
    _git("init", "-q", cwd=repo)
    _git("add", "-A", cwd=repo)
    _git("commit", "-qm", "x", cwd=repo)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker / "cache"))
    with pytest.raises(BuildFileError) as info:
        evaluate_source(f'lib = include("file://{repo}")\ndef build():\n    lib.f()\n')
    assert str(info.value).startswith(f"build.envd:1:7: include: cannot fetch file://{repo}: cannot write the include cache")
    assert "XDG_CACHE_HOME" in (info.value.hint or "")


def test_include_duplicate_names_and_unreachable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    started = time.monotonic()
    with pytest.raises(BuildFileError) as info:
        evaluate_source('lib = include("https://nonexistent.invalid/envdlib")\ndef build():\n    pass\n')
    assert time.monotonic() - started < 25
    assert str(info.value).startswith("build.envd:1:7: include: cannot fetch https://nonexistent.invalid/envdlib")
    repo = tmp_path / "dup"
    repo.mkdir()
    (repo / "a.envd").write_text("def f():\n    pass\n")
    (repo / "b.envd").write_text("def f():\n    pass\n")
    _git("init", "-q", cwd=repo)
    _git("add", "-A", cwd=repo)
    _git("commit", "-qm", "x", cwd=repo)
    with pytest.raises(BuildFileError, match="duplicated object name 'f' in a.envd and b.envd"):
        evaluate_source(f'lib = include("file://{repo}")\ndef build():\n    pass\n')
    with pytest.raises(BuildFileError, match="must be a string literal"):
        evaluate_source('U = "https://x/y"\ndef build():\n    include(U)\n')


def test_target_resolution_and_env_name(tmp_path: Path) -> None:
    proj = tmp_path / "My Project!"
    proj.mkdir()
    (proj / "build.envd").write_text("def build():\n    pass\ndef gpu():\n    pass\n")
    (proj / "other.envd").write_text("def build():\n    pass\n")
    assert resolve_target(str(proj), ":gpu").function == "gpu"
    assert resolve_target(str(proj), "other.envd").file == str(proj / "other.envd")
    assert resolve_target(str(proj / "build.envd")).context_dir == str(proj)
    with pytest.raises(UsageError):
        resolve_target(str(proj), "a:b:c")
    with pytest.raises(UsageError, match="no build file 'missing.envd'"):
        resolve_target(str(proj), "missing.envd:build")
    assert env_name(str(proj)) == "My-Project-"
    assert env_name("/x/" + "a" * 40) == "a" * 30
    env = evaluate_file(str(proj), ":gpu", cwd=str(tmp_path)).environment
    assert (env.name, env.source, env.function) == ("My-Project-", os.path.join("My Project!", "build.envd"), "gpu")


def test_repeated_evaluations_do_not_share_state() -> None:
    a = evaluate_source("def build():\n    install.python()\n").environment
    b = evaluate_source("def build():\n    pass\n").environment
    assert a.build.steps and not b.build.steps
