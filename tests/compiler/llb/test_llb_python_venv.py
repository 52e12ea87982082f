"""The venv on the image's python3: where python3, the venv and pip come from, in how many steps.

Every exec step costs a container start (0.3–0.7 s on dockerd's BuildKit), and ensurepip costs
seconds, so python3 is checked for, and the venv made ``--without-pip``, inside the apt step (or
the one step that stands in for it): a changed package list re-runs its pip step only, never the
venv (see docs/llb.md, Python).
"""

from __future__ import annotations

import pytest

from compiler.llb import compile_environment
from dsl.ir import AptPackages, BaseImage, BuildGraph, Environment, PipPackages, PipWheel, Run, RuntimeSpec, Span
from tests.compiler.llb._decode import decode
from tests.compiler.llb.test_llb_compile import PARALLEL, _exec_named, _script

VENV_CREATE = "python3 -m venv --without-pip --system-site-packages /opt/dsl/python"


def _env(*steps, dev: bool = False) -> Environment:
    return Environment("proj", BuildGraph(base=BaseImage("debian:bookworm", dev=dev, span=Span("build.envd", 2, 5)),
                                          steps=steps), RuntimeSpec())


def _bench_env() -> Environment:
    """bench/build.py's environment: apt, one pip group, one run."""
    return _env(AptPackages(("jq", "python3-pip")), PipPackages(("six", "idna")),
                Run(("echo envdsl-bench > /tmp/bench-marker",)))


@pytest.mark.parametrize("caps", [frozenset(), PARALLEL])
def test_apt_pip_run_is_three_exec_steps_like_the_dockerfile(caps) -> None:
    dec = decode(compile_environment(_bench_env(), caps=caps).definition)
    names = [dec.name(d) for d, _ in dec.execs()]
    assert names == ["install.apt_packages jq python3-pip", "install.python_packages six idna",
                     "run echo envdsl-bench > /tmp/bench-marker"]


def test_apt_step_installs_python3_and_pip_only_when_missing() -> None:
    dec = decode(compile_environment(_bench_env(), ca_bundle=True).definition)
    lines = _script(_exec_named(dec, "install.apt_packages")).splitlines()
    user_install = next(i for i, ln in enumerate(lines) if ln.startswith("apt-get install") and "jq" in ln)
    check = lines.index(next(ln for ln in lines if ln.startswith("if ! python3 -c ")))
    assert user_install < check  # the user's packages may bring python3-pip themselves
    assert 'find_spec("venv")' in lines[check] and 'find_spec("ensurepip")' in lines[check]
    assert lines[check + 1] == ("apt-get install -y --no-install-recommends -o Dpkg::Options::=--force-unsafe-io"
                                " -o Acquire::https::CAInfo=/run/dsl/ca-bundle.crt python3 python3-venv python3-pip")


def test_the_venv_is_made_before_the_pip_steps_so_a_new_package_does_not_remake_it() -> None:
    env = _env(PipPackages(("six",)), PipPackages(("idna",)), PipWheel("w/x-1.0-py3-none-any.whl"))
    dec = decode(compile_environment(env).definition)
    python = _script(_exec_named(dec, "install.python_packages: python3 and pip"))
    assert VENV_CREATE in python and "ensurepip" in python
    # the system pip serves the venv through launchers on PATH; ensurepip only without one
    assert "exec /opt/dsl/python/bin/python -m pip" in python
    scripts = [_script(op) for d, op in dec.execs() if dec.name(d).startswith("install.python_packages ")]
    assert len(scripts) == 3 and not any("venv" in s for s in scripts)


@pytest.mark.parametrize("caps", [frozenset(), PARALLEL])
def test_adding_a_package_changes_only_its_pip_step(caps) -> None:
    """BuildKit re-runs what changed: the apt step that made the venv stays cached."""
    def digests(packages: tuple[str, ...]) -> tuple[set[str], set[str]]:
        """(the steps that make the venv, every exec step)"""
        env = _env(AptPackages(("jq", "python3-pip")), PipPackages(packages))
        dec = decode(compile_environment(env, caps=caps).definition)
        return {d for d, op in dec.execs() if VENV_CREATE in _script(op)}, {d for d, _ in dec.execs()}

    (venv_before, before), (venv_after, after) = digests(("six", "idna")), digests(("six", "idna", "certifi"))
    assert len(venv_before) == 1 and venv_before == venv_after
    assert len(before - after) == 1  # the pip step, and nothing else


def test_without_apt_packages_python3_gets_its_own_step_for_any_package_manager() -> None:
    dec = decode(compile_environment(_env(PipPackages(("six",)))).definition)
    names = [dec.name(d) for d, _ in dec.execs()]
    assert names == ["install.python_packages: python3 and pip", "install.python_packages six"]
    script = _script(_exec_named(dec, "install.python_packages: python3 and pip"))
    assert "apk add --no-cache python3 py3-pip" in script and "dnf install -y python3 python3-pip" in script
    assert "needs a package manager" in script


def test_no_pip_step_means_no_python_steps() -> None:
    dec = decode(compile_environment(_env(AptPackages(("jq",)))).definition)
    assert "python3" not in _script(_exec_named(dec, "install.apt_packages"))


def test_empty_package_list_still_makes_the_venv() -> None:
    dec = decode(compile_environment(_env(AptPackages(("jq",)), PipPackages(()))).definition)
    assert VENV_CREATE in _script(_exec_named(dec, "install.apt_packages"))
    assert [dec.name(d) for d, _ in dec.execs()] == ["install.apt_packages jq"]


@pytest.mark.parametrize("apt", [(), ("jq",)])
def test_dev_images_get_python3_like_other_images_not_from_the_dev_layer(apt) -> None:
    """The dev layer never runs the image's package manager: python3 for the venv comes in the
    apt step, else in a step of its own, as for a non-dev image."""
    steps = (AptPackages(apt),) if apt else ()
    dec = decode(compile_environment(_env(*steps, PipPackages(("six",)), dev=True)).definition)
    names = [dec.name(d) for d, _ in dec.execs()]
    dev_steps = [_script(op) for d, op in dec.execs() if dec.name(d).startswith("dev:")]
    assert dev_steps and not any("python3" in s or "apt-get" in s for s in dev_steps)
    if apt:
        assert "install.python_packages: python3 and pip" not in names
        assert "if ! python3 -c " in _script(_exec_named(dec, "install.apt_packages"))
    else:
        assert "if ! python3 -c " in _script(_exec_named(dec, "install.python_packages: python3 and pip"))


def test_dev_venv_is_given_to_the_user_at_the_end_of_the_last_pip_step() -> None:
    env = _env(PipPackages(("six",)), PipPackages(("idna",)), Run(("true",)), dev=True)
    dec = decode(compile_environment(env).definition)
    names = [dec.name(d) for d, _ in dec.execs()]
    assert not [n for n in names if n.startswith("dev: give")]
    assert names[-3:] == ["install.python_packages six", "install.python_packages idna", "run true"]
    first, last = (_script(_exec_named(dec, f"install.python_packages {p}")) for p in ("six", "idna"))
    assert last.endswith("-m pip install idna\nchown -R 1000:1000 /opt/dsl/python")
    assert "chown" not in first
