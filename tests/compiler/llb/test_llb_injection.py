"""Property-based: no user string reaches a shell line unquoted, or it is rejected."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from packaging.requirements import InvalidRequirement, Requirement

from compiler.llb import compile_environment, describe_definition
from compiler.image_config import image_config
from compiler.llb._dev import render_entrypoint
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

# ---- python package names: the oracle is bash itself -----------------------------------------
#
# The pip line of the compiled exec op is handed to a real bash with the interpreter replaced by
# ``printf '%s\0'``: what bash prints is exactly the argv pip would get, after every expansion
# bash performs. The shell is restricted (``-r``) with an empty PATH, so a successful injection
# can only change the words, never run a program; the working directory holds files that an
# unquoted glob would match and HOME/a variable hold markers, so expansions show in the words.

def _scripts(env: Environment) -> list[str]:
    ops = describe_definition(compile_environment(env).definition)
    return [op["op"]["meta"]["args"][2] for op in ops if op["kind"] == "exec"]


_PIP_PREFIX = "/opt/dsl/python/bin/python -m pip install "


@pytest.fixture(scope="module")
def bash_words(tmp_path_factory):
    """``pip line -> argv`` as bash parses it."""
    root = tmp_path_factory.mktemp("bash")
    (root / "empty-path").mkdir()
    work = root / "work"
    work.mkdir()
    for bait in ("numpy==1.0", "a", "b", "1", "x.whl", "GLOBBED"):
        (work / bait).write_text("")
    env = {"PATH": str(root / "empty-path"), "HOME": "/HOME-EXPANDED", "X": "VAR-EXPANDED",
           "LC_ALL": "C.UTF-8"}

    def run(pip_line: str) -> list[str]:
        assert pip_line.startswith(_PIP_PREFIX), pip_line
        script = "printf '%s\\0' " + pip_line[len(_PIP_PREFIX):]
        proc = subprocess.run(["/bin/bash", "--norc", "--noprofile", "-r", "-c", script], cwd=work,
                              env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
        assert proc.returncode == 0, (pip_line, proc.stderr)
        return proc.stdout.decode("utf-8", "surrogateescape").split("\0")[:-1]

    return run


def _pip_line(name: str) -> str:
    env = Environment("x", BuildGraph(base=BaseImage("debian:bookworm"), steps=(PipPackages((name,)),)))
    (line,) = [s.splitlines()[-1] for s in _scripts(env) if " -m pip install " in s]
    return line


def _is_requirement(text: str) -> bool:
    try:
        Requirement(text)
    except InvalidRequirement:
        return False
    return True


def _outcome(name: str, bash_words) -> str:
    """Compile one item: ``"accepted"`` (and pip gets the user's words), or ``"rejected"``
    (with the one-line error naming the item). Anything else fails the test."""
    try:
        line = _pip_line(name)
    except CompileError as exc:
        assert exc.message.startswith("invalid python package"), exc.message
        assert "\n" not in exc.headline() and exc.hint, exc.headline()
        return "rejected"
    words = bash_words(line)
    assert words and all(words), (name, words)
    if _is_requirement(name.strip()):
        # one PEP 508 requirement reaches pip as one word, byte for byte
        assert words == [name.strip()], (name, words)
    else:
        # requirement(s) and pip options: the user's words, nothing expanded, added or lost
        assert " ".join(words).split() == name.split(), (name, words)
    return "accepted"


_NAME = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,8}[A-Za-z0-9])?", fullmatch=True)
_SUFFIX = r"((a|b|rc)[0-9]{1,2})?(\.post[0-9])?(\.dev[0-9])?"
_VERSION = st.from_regex(rf"[0-9]{{1,3}}(\.[0-9]{{1,3}}){{0,3}}{_SUFFIX}", fullmatch=True)
_SPEC = st.one_of(  # ~= needs a release of two or more parts
    st.tuples(st.sampled_from(["==", "!=", "<=", ">=", "<", ">"]), _VERSION).map("".join),
    st.from_regex(rf"~=[0-9]{{1,3}}(\.[0-9]{{1,3}}){{1,3}}{_SUFFIX}", fullmatch=True))
_MARKER = st.sampled_from(['python_version < "3.13"', "sys_platform == 'linux'",
                           'platform_machine == "x86_64" and python_version >= "3.9"'])


@st.composite
def requirements(draw) -> str:
    """Valid PEP 508 requirements of the forms users write: name, extras, specifiers, marker."""
    out = draw(_NAME)
    extras = draw(st.lists(_NAME, max_size=2))
    if extras:
        out += "[" + ",".join(extras) + "]"
    specs = draw(st.lists(_SPEC, max_size=2))
    if specs:
        out += draw(st.sampled_from(["", " "])) + ",".join(specs)
    if draw(st.booleans()):
        out += draw(st.sampled_from([";", "; ", " ; "])) + draw(_MARKER)
    return out


@settings(max_examples=150, deadline=None)
@given(requirements())
def test_valid_requirements_are_accepted_and_reach_pip_as_one_word(bash_words, name: str) -> None:
    assert _is_requirement(name), name  # the strategy itself is checked by packaging
    assert _outcome(name, bash_words) == "accepted", name


@settings(max_examples=150, deadline=None)
@given(st.one_of(text, st.tuples(requirements(), text).map("".join)))
def test_any_python_package_text_is_rejected_or_reaches_pip_verbatim(bash_words, name: str) -> None:
    event(_outcome(name, bash_words))  # both outcomes assert; the mix shows in --hypothesis-show-statistics


# Items that would inject into the shell or change the words if pasted raw, and ordinary ones.
_SHELL_CORPUS = [
    "numpy", "pandas>=2,<3", "pkg[extra]==1.0", "numpy==1.*", 'x; python_version < "3.12"',
    "torch --index-url https://download.pytorch.org/whl/cpu", "a --pre", "--no-deps a",
    "pkg @ https://example.com/p-1.0.tar.gz",
    "numpy; rm -rf /", "numpy && id", "numpy || id", "numpy | id", "numpy`id`", "numpy$(id)",
    "$(id)", "${X}", "$X", "numpy$X", "~/x", "~", "numpy==1.0 > /tmp/x", "numpy < /etc/passwd",
    "numpy\nid", "numpy\rid", "a\\b", "a'b", 'a"b', "a b'", "*", "?", "[ab]", "numpy==1.?",
    "a{b,c}", "a #comment", "numpy &", "numpy;", "!", "a=$(id)", "--index-url=$(id)",
    "--index-url `id`", "-i http://x/$(id)", "a==1;id", "a; python_version<'3' ; id",
]


def test_shell_metacharacters_are_rejected_or_inert(bash_words) -> None:
    outcomes = {name: _outcome(name, bash_words) for name in _SHELL_CORPUS}
    accepted = [n for n, o in outcomes.items() if o == "accepted"]
    rejected = [n for n, o in outcomes.items() if o == "rejected"]
    # both outcomes happen, in the expected proportions: the first nine are ordinary items
    assert set(_SHELL_CORPUS[:9]) <= set(accepted), outcomes
    assert len(rejected) >= 25, accepted
    for name in ("numpy`id`", "numpy$(id)", "$(id)", "${X}", "numpy && id", "numpy | id", "~"):
        assert outcomes[name] == "rejected", name


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
