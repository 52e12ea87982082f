"""The entrypoint's Jupyter part: the token comes only from DSL_JUPYTER_TOKEN at start.

The sections of the rendered script run here in the host's POSIX sh with stand-ins for ``log`` and
``supervise``; the whole image with a stand-in notebook server runs on the real dockerd in
tests/engines/buildkit/test_secret_scan_build.py.
"""

from __future__ import annotations

import subprocess

import pytest

from compiler.llb._dev import render_entrypoint
from dsl.ir import BaseImage, BuildGraph, Environment, Jupyter, RuntimeSpec

STANDINS = """
log() { printf 'dsl-entrypoint: %s\\n' "$*" >&2; }
supervise() { shift; printf 'env=%s\\n' "${JUPYTER_TOKEN-unset}"; printf 'arg=%s\\n' "$@"; }
workdir=/home/envd/proj
"""


def _entrypoint(auth: bool) -> str:
    env = Environment("proj", BuildGraph(base=BaseImage("debian:bookworm", dev=True)),
                      RuntimeSpec(jupyter=Jupyter(auth=auth)))
    return render_entrypoint(env)


def _section(script: str, start: str, end: str) -> str:
    begin = script.index(start)
    return script[begin:script.index(end, begin)]


def _run(auth: bool, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    script = _entrypoint(auth)
    token = _section(script, "# ---- the Jupyter token", "# ---- host key")
    start = _section(script, "# ---- jupyter", "# ---- sshd")
    probe = 'printf "left=%s\\n" "${DSL_JUPYTER_TOKEN-unset}"\n'
    return subprocess.run(["sh", "-c", "set -eu\n" + STANDINS + token + probe + start],
                          env={"PATH": "/usr/bin:/bin", **env}, capture_output=True, text=True)


def test_no_token_is_rendered_into_the_image() -> None:
    for auth in (True, False):
        script = _entrypoint(auth)
        assert 'jupyter_token="${DSL_JUPYTER_TOKEN:-}"' in script
        assert script.count("jupyter_token=") == 1  # read from the variable, never assigned a value


def test_a_required_token_that_is_missing_stops_the_container() -> None:
    proc = _run(True, {})
    assert proc.returncode == 1 and "left=" not in proc.stdout
    assert "no Jupyter token: set DSL_JUPYTER_TOKEN" in proc.stderr and 'token=\\"\\"' not in proc.stderr


def test_an_unreplaced_placeholder_is_not_taken_for_a_token() -> None:
    proc = _run(True, {"DSL_JUPYTER_TOKEN": "${DSL_JUPYTER_TOKEN}"})
    assert proc.returncode == 1 and "placeholder" in proc.stderr and "env=" not in proc.stdout


@pytest.mark.parametrize("auth", [True, False])  # a token given at run time wins over token=""
def test_the_token_reaches_only_the_notebook_and_only_in_its_environment(auth: bool) -> None:
    proc = _run(auth, {"DSL_JUPYTER_TOKEN": "t0ken"})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "left=unset" in lines  # daemons, init scripts and SSH sessions do not see it
    assert "env=t0ken" in lines
    assert not any(line.startswith("arg=") and "t0ken" in line for line in lines)  # not in argv (ps)
    assert "arg=--NotebookApp.token=" not in lines


def test_token_empty_in_the_build_file_runs_without_authentication() -> None:
    proc = _run(False, {})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "env=unset" in lines and lines[-1] == "arg=--NotebookApp.token="
