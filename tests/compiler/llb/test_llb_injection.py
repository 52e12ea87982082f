"""Property-based: no user string reaches a shell line unquoted, or it is rejected."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.llb import compile_environment, describe_definition
from compiler.image_config import image_config
from compiler.llb._dev import render_entrypoint
from compiler.llb._validate import pip_item
from dsl.errors import CompileError
from dsl.ir import (
    BaseImage,
    BuildGraph,
    Copy,
    Daemon,
    Environment,
    InitScript,
    PipPackages,
    Run,
    RuntimeSpec,
)

text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), min_size=1, max_size=40)


def _scripts(env: Environment) -> list[str]:
    ops = describe_definition(compile_environment(env).definition)
    return [op["op"]["meta"]["args"][2] for op in ops if op["kind"] == "exec"]


@settings(max_examples=150, deadline=None)
@given(text)
def test_python_package_names_are_valid_and_quoted_or_rejected(name: str) -> None:
    env = Environment("x", BuildGraph(base=BaseImage("debian:bookworm"), steps=(PipPackages((name,)),)))
    try:
        scripts = _scripts(env)
    except CompileError:
        return
    pip_line = next(s for s in scripts if " -m pip install " in s).splitlines()[-1]
    words = shlex.split(pip_line)
    assert words[:4] == ["/opt/dsl/python/bin/python", "-m", "pip", "install"]
    # accepted names carry no shell metacharacters, and the line splits back into exactly
    # the validated words: nothing was interpreted by the shell
    assert not any(c in name for c in "`$|&\n\\"), name
    assert tuple(words[4:]) == pip_item(name, None)


@settings(max_examples=150, deadline=None)
@given(st.lists(text, min_size=1, max_size=3))
def test_run_commands_reach_bash_verbatim_as_one_argument(commands: list[str]) -> None:
    env = Environment("x", BuildGraph(base=BaseImage("debian:bookworm"), steps=(Run(tuple(commands)),)))
    ops = describe_definition(compile_environment(env).definition)
    (run,) = [op for op in ops if op["kind"] == "exec"]
    assert run["op"]["meta"]["args"] == ["bash", "-c", "\n".join(["set -euo pipefail", *commands])]


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1, max_size=30).filter(lambda s: "\0" not in s and "\n" not in s and "\r" not in s))
def test_copy_paths_are_rejected_or_stay_inside_the_context(path: str) -> None:
    env = Environment("x", BuildGraph(base=BaseImage("debian:bookworm"), steps=(Copy(path, "/opt/x"),)))
    try:
        res = compile_environment(env)
    except CompileError:
        return
    for src in res.local_sources:
        for inc in src.include:
            assert not inc.startswith(("/", "../")) and inc != ".."


@settings(max_examples=100, deadline=None)
@given(st.lists(text, min_size=1, max_size=3), st.lists(text, min_size=1, max_size=3), text)
def test_entrypoint_values_are_quoted(init: list[str], daemon: list[str], value: str) -> None:
    env = Environment("x", BuildGraph(base=BaseImage("debian:bookworm", dev=True)),
                      RuntimeSpec(init=(InitScript(tuple(init)),), daemons=(Daemon(tuple(daemon)),),
                                  environ=(("K", value),)))
    script = render_entrypoint(env)
    assert _words_after(script, "\nrun_init 1 ", 1) == ["\n".join(["set -euo pipefail", *init])]
    assert _words_after(script, "\nsupervise daemon-1 ", len(daemon)) == daemon
    env_list = image_config(env, base_config=None)["config"]["Env"]
    assert f"K={value}" in env_list  # env values go to the image config verbatim, never a script


def _words_after(script: str, marker: str, n: int) -> list[str]:
    """The next ``n`` shell words after ``marker``, parsed as bash would (POSIX quoting)."""
    lexer = shlex.shlex(script[script.index(marker) + len(marker):], posix=True)
    lexer.whitespace_split = True
    lexer.whitespace = " \t\n"  # quoted newlines stay inside their word
    return [lexer.get_token() for _ in range(n)]


def test_a_long_environment_marker_is_decided_in_linear_time() -> None:
    """The marker grammar once backtracked exponentially: 40 letters and a stray character
    kept ``compile_environment`` busy for hours. Run in a child so a regression times out
    instead of hanging the suite."""
    code = ("from compiler.llb._validate import pip_item\n"
            "for n in (40, 4000):\n"
            "    try: pip_item('a;' + 'a' * n + '!', None)\n"
            "    except Exception as exc: assert 'invalid python package' in str(exc)\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=20,
                   env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[3])))
