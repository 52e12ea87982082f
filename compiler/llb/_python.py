"""Python toolchains and packages: a venv on the image's python3, or conda / micromamba.

Debian bookworm's system python3 has no pip and is PEP 668 "externally managed", so pip never
touches it: without ``install.python``/``install.conda`` the first pip step creates a venv at
``VENV`` (python3 and pip are installed with the image's package manager only if missing, in a
step that already runs it) and it is first on PATH. With ``install.python`` the interpreter
lives in a conda prefix (``CONDA_ENV``), made by micromamba (mounted from its image, not
copied) or by miniconda when ``install.conda`` is used.
"""

from __future__ import annotations

import shlex
from typing import NamedTuple

from compiler.llb import _validate as check
from compiler.llb._context import CONTEXT_MOUNT, Context
from compiler.llb._layout import CONDA_ENV, CONDA_ROOT, VENV, conda_prefix, python_kind, uses_micromamba
from compiler.llb._ops import BindMount, Mkfile, MountSpec
from compiler.llb._pins import PIP_LOCK_DIR, REPORT_DIR
from compiler.llb._script import apt_get_install, install_packages, quote_all
from compiler.llb._state import State, http, image, scratch
from dsl.errors import CompileError
from dsl.ir import CondaInstall, CondaPackages, PipPackages, PipRequirements, PipWheel, PythonInstall, Span

MICROMAMBA_IMAGE = "ghcr.io/mamba-org/micromamba:2.3.3-debian12-slim"
MINICONDA_VERSION = "py311_25.9.1-1"
MINICONDA = "https://repo.anaconda.com/miniconda/Miniconda3-{version}-Linux-{arch}.sh"
# The installers' sha256 as Anaconda lists them (repo.anaconda.com/miniconda/); the same values
# are pinned by envd's get_conda.sh and by other projects' Dockerfiles for this version. Anaconda
# publishes no checksum file beside the installer, so BuildKit checks these (http.checksum).
# Architectures without a pinned hash are refused rather than installed unverified.
MINICONDA_SHA256 = {
    "amd64": ("x86_64", "238abad23f8d4d8ba89dd05df0b0079e278909a36e06955f12bbef4aa94e6131"),
    "arm64": ("aarch64", "4e0723b9d76aa491cf22511dac36f4fdec373e41d2a243ff875e19b8df39bf94"),
}
CONDARC = f"{CONDA_ROOT}/.condarc"  # read by conda and micromamba (the root prefix's rc file)
DEFAULT_CONDARC = "channels:\n  - conda-forge\n"
MICROMAMBA = f"{CONDA_ROOT}/bin/micromamba"
# install.conda(use_mamba=True): `conda` is micromamba, as envd's update-alternatives makes it
_CONDA_LAUNCHER = f'#!/bin/sh\nexec {MICROMAMBA} "$@"\n'.encode()


def python_bin(ctx: Context) -> str:
    """The interpreter every pip step uses."""
    if python_kind(ctx.env) == "venv":
        return f"{VENV}/bin/python"
    if ctx.env.build.steps_of(PythonInstall):
        return f"{CONDA_ENV}/bin/python"
    return f"{CONDA_ROOT}/bin/python"


def toolchain(ctx: Context, state: State) -> State:
    """Install the conda / micromamba Python (independent of apt: may run in parallel)."""
    build = ctx.env.build
    conda = build.steps_of(CondaInstall)
    pythons = build.steps_of(PythonInstall)
    mamba_conda = uses_micromamba(ctx.env)
    if mamba_conda:
        state = _micromamba_as_conda(ctx, state, conda[-1].span)
    elif conda:
        installer = _miniconda(ctx, conda[-1].span)
        state = ctx.run(state, [
            f"bash /run/dsl/miniconda/miniconda.sh -b -u -p {CONDA_ROOT}",
            f"printf 'channels:\\n  - conda-forge\\n' > {CONDA_ROOT}/.condarc",
        ], name="install.conda", span=conda[-1].span,
            mounts=(BindMount("/run/dsl/miniconda", installer.output), ctx.conda_cache(CONDA_ROOT)))
        if build.conda_channel is not None:  # replaces the conda-forge one the step wrote
            # the text as given (as envd writes it): a file op, never a shell line
            state = state.file(Mkfile(CONDARC, build.conda_channel.value.encode()),
                               name="config.conda_channel", span=build.conda_channel.span)
    if pythons:
        py = pythons[-1]
        version = check.version(py.version or "3.11", "python", py.span)
        if version.startswith("2"):
            from dsl.errors import CompileError
            raise CompileError(f"Python {version} is not supported", span=py.span,
                               hint="install.python(version='3.x')")
        if mamba_conda:  # channels from the .condarc (config.conda_channel)
            create = (f"MAMBA_ROOT_PREFIX={CONDA_ROOT} {MICROMAMBA} create -y -p {CONDA_ENV} "
                      f"python={shlex.quote(version)}")
            mounts = (ctx.conda_cache(CONDA_ROOT),)
        elif conda:
            create = f"{CONDA_ROOT}/bin/conda create -y -p {CONDA_ENV} python={shlex.quote(version)}"
            mounts = (ctx.conda_cache(CONDA_ROOT),)
        else:
            mamba = image(MICROMAMBA_IMAGE, platform=ctx.platform, span=py.span)
            create = (f"MAMBA_ROOT_PREFIX={CONDA_ROOT} /run/dsl/micromamba/bin/micromamba create -y "
                      f"-p {CONDA_ENV} -c conda-forge python={shlex.quote(version)}")
            mounts = (BindMount("/run/dsl/micromamba", mamba.output), ctx.conda_cache(CONDA_ROOT))
        state = ctx.run(state, [f"mkdir -p {CONDA_ROOT}", create],
                        name=f"install.python {version}", span=py.span, mounts=mounts)
    return state


def _micromamba_as_conda(ctx: Context, state: State, span: Span | None) -> State:
    """``install.conda(use_mamba=True)``: micromamba at ``/opt/conda/bin`` is the image's
    conda (no Miniconda download), with a ``conda`` launcher and the .condarc."""
    mamba = image(MICROMAMBA_IMAGE, platform=ctx.platform, span=span)
    state = ctx.run(state, [f"mkdir -p {CONDA_ROOT}/bin",
                            f"install -m 0755 /run/dsl/micromamba/bin/micromamba {MICROMAMBA}"],
                    name="install.conda (micromamba)", span=span,
                    mounts=(BindMount("/run/dsl/micromamba", mamba.output),))
    setting = ctx.env.build.conda_channel
    condarc = Mkfile(CONDARC, (setting.value if setting is not None else DEFAULT_CONDARC).encode())
    return state.file(Mkfile(f"{CONDA_ROOT}/bin/conda", _CONDA_LAUNCHER, 0o755), condarc,
                      name="install.conda: conda (micromamba) and .condarc", span=span)


def _miniconda(ctx: Context, span: Span | None) -> State:
    """The Miniconda installer as an http source BuildKit verifies against the pinned sha256."""
    pinned = MINICONDA_SHA256.get(ctx.platform.architecture)
    if pinned is None:
        raise CompileError(
            f"install.conda: no pinned checksum for the Miniconda installer on "
            f"{ctx.platform.os}/{ctx.platform.architecture}",
            span=span, hint="build for linux/amd64 or linux/arm64, or use install.python() "
                            "(micromamba) without install.conda()")
    arch, sha256 = pinned
    return http(MINICONDA.format(version=MINICONDA_VERSION, arch=arch), checksum=f"sha256:{sha256}",
                filename="miniconda.sh", platform=ctx.platform, name="download miniconda", span=span)


# python3 with the venv module and a pip to drive: Debian's pip (python3-pip), or ensurepip
# (python3-venv). One interpreter start checks all three.
_HAS_PYTHON = ("python3 -c 'import importlib.util as u; raise SystemExit(not (u.find_spec(\"venv\")"
               " and (u.find_spec(\"pip\") or u.find_spec(\"ensurepip\"))))' >/dev/null 2>&1")
PYTHON_PACKAGES = {"apt": ("python3", "python3-venv", "python3-pip"), "apk": ("python3", "py3-pip"),
                   "dnf": ("python3", "python3-pip")}


def python_lines(ctx: Context, *, apt_only: bool) -> list[str]:
    """Script lines that install python3 and pip for the venv, only if the image lacks them,
    then create the venv.

    They join the apt step (``apt_only``) when there is one, else run in a step of their own,
    so a base that has them pays one interpreter start, not a step. The venv is made here, not
    in the first pip step, so that changing a package list does not make it again (~0.1-0.2 s
    of every such build, measured by ``bench/build.py``'s "add one package").
    """
    if apt_only:
        install = apt_get_install(PYTHON_PACKAGES["apt"], ca_bundle=ctx.ca_bundle)
    else:
        install = install_packages(PYTHON_PACKAGES, "a Python for install.python_packages",
                                   ca_bundle=ctx.ca_bundle)
    return [f"if ! {_HAS_PYTHON}; then", install, "fi", *_venv_lines()]


def ensure_python(ctx: Context, state: State) -> State:
    """``python_lines`` as a step of its own, when no other step runs the package manager."""
    return ctx.run(state, python_lines(ctx, apt_only=False),
                   name="install.python_packages: python3 and pip", span=ctx.env.build.base.span,
                   mounts=ctx.apt_caches())


def _venv_lines() -> list[str]:
    """Create the venv (unless the base already has one): ``--without-pip`` skips ensurepip's
    install and byte-compilation of pip+setuptools (seconds per build); with
    ``--system-site-packages`` the system's pip (Debian's python3-pip) runs inside the venv and
    installs into it, so ``pip``/``pip3`` are small launchers. Without a system pip, ensurepip
    puts one in the venv."""
    py = f"{VENV}/bin/python"
    launcher = f"'#!/bin/sh\\nexec {py} -m pip \"$@\"\\n'"  # printf expands the \n escapes
    return [
        f"if [ ! -x {py} ]; then",
        f"python3 -m venv --without-pip --system-site-packages {VENV}",
        f"if {py} -c 'import pip' >/dev/null 2>&1; then",
        f"for n in pip pip3; do printf {launcher} > {VENV}/bin/$n; chmod 755 {VENV}/bin/$n; done",
        "else",
        f"{py} -m ensurepip --default-pip >/dev/null",
        "fi",
        "fi",
    ]


class _PipStep(NamedTuple):
    args: str  # shell-quoted arguments of `pip install`
    name: str
    span: Span | None
    mounts: tuple[MountSpec, ...]


def packages(ctx: Context, state: State, *, then: tuple[str, ...] = (), conda: bool = True) -> State:
    """pip groups (one step each), requirements, wheels, then conda packages, in that order.

    With the venv (made by :func:`python_lines`), the last pip step ends with ``then`` (the dev
    layer's chown of the venv): no exec step of its own, and cheap to repeat when that step's
    packages change.
    """
    pip = f"{python_bin(ctx)} -m pip install"
    venv = python_kind(ctx.env) == "venv"
    last = list(then) if venv else []
    steps = _pip_steps(ctx)
    if ctx.pins is not None and len(ctx.pins.python) != len(steps):
        raise CompileError(f"the lock has {len(ctx.pins.python)} pip steps, the build file {len(steps)}",
                           span=ctx.env.build.base.span, hint="run `dsl lock` to update build.envd.lock")
    for i, step in enumerate(steps):
        install, mounts = _install_line(ctx, pip, step, i, last=i == len(steps) - 1)
        lines = [install, *(last if i == len(steps) - 1 else ())]
        state = ctx.run(state, lines, name=step.name, span=step.span, mounts=mounts)
    if last and not steps:  # only empty package lists: the venv is still the dev user's
        state = ctx.run(state, last, name=f"python venv {VENV}", span=ctx.env.build.base.span)
    return _conda_packages(ctx, state) if conda else state


def _install_line(ctx: Context, pip: str, step: _PipStep, i: int, *, last: bool) -> tuple[str, tuple[MountSpec, ...]]:
    """The pip command of step ``i``: as written; from the lock (``--locked``); or with a
    report of what it installs (``dsl lock``: the last step only resolves, ``--dry-run``)."""
    if ctx.pins is not None:
        text = ctx.pins.python[i]
        if not text.strip():  # everything this step asks for was already installed
            return ": nothing to install (build.envd.lock)", step.mounts
        locked = scratch(ctx.platform).file(Mkfile("/requirements.txt", text.encode()),
                                            name="[internal] locked Python requirements", span=step.span)
        return (f"{pip} --require-hashes --no-deps -r {PIP_LOCK_DIR}/requirements.txt",
                (*step.mounts, BindMount(PIP_LOCK_DIR, locked.output)))
    if ctx.resolution is not None:
        report = f"{REPORT_DIR}/pip-{i}.json"
        extra: tuple[MountSpec, ...] = ()
        flags = f"--report {report}" + (" --dry-run" if last else "")
        constraints = ctx.resolution.constraints[i] if i < len(ctx.resolution.constraints) else ""
        if constraints:
            kept = scratch(ctx.platform).file(Mkfile("/constraints.txt", constraints.encode()),
                                              name="[internal] pins kept from build.envd.lock", span=step.span)
            extra = (BindMount(PIP_LOCK_DIR, kept.output),)
            flags += f" -c {PIP_LOCK_DIR}/constraints.txt"
        return f"mkdir -p {REPORT_DIR} && {pip} {flags} {step.args}", (*step.mounts, *extra)
    return f"{pip} {step.args}", step.mounts


def pip_step_args(ctx: Context) -> list[tuple[str, str, Span | None]]:
    """``(step name, pip arguments as written, span)`` of every pip step, in build order:
    what the lock records each step's pins for."""
    return [(s.name, s.args, s.span) for s in _pip_steps(ctx)]


def _pip_steps(ctx: Context) -> list[_PipStep]:
    out: list[_PipStep] = []
    groups = list(ctx.env.build.steps_of(PipPackages))
    jupyter = ctx.env.runtime.jupyter
    if jupyter is not None and not any(_mentions(g.packages, ("jupyter", "notebook")) for g in groups):
        groups.insert(0, PipPackages(("jupyter",), span=jupyter.span))
    for g in groups:
        words = [w for item in g.packages for w in check.pip_item(item, g.span)]
        if words:
            out.append(_PipStep(quote_all(words), f"install.python_packages {' '.join(g.packages)}"[:200],
                                g.span, (ctx.pip_cache(),)))
    from_context = (ctx.pip_cache(), ctx.context_mount())
    for req in ctx.env.build.steps_of(PipRequirements)[-1:]:  # last call wins (envd)
        path = check.context_path(req.path, req.span)
        out.append(_PipStep(f"-r {shlex.quote(f'{CONTEXT_MOUNT}/{path}')}",
                            f"install.python_packages requirements={path}", req.span, from_context))
    for wheel in ctx.env.build.steps_of(PipWheel):
        path = check.context_path(wheel.path, wheel.span)
        out.append(_PipStep(shlex.quote(f"{CONTEXT_MOUNT}/{path}"),
                            f"install.python_packages local_wheels={path}", wheel.span, from_context))
    return out


def _mentions(items: tuple[str, ...], names: tuple[str, ...]) -> bool:
    return any(i.split()[0].lower().startswith(names) for i in items if i.strip())


def _conda_packages(ctx: Context, state: State) -> State:
    steps = ctx.env.build.steps_of(CondaPackages)
    if not steps:
        return state
    has_conda = bool(ctx.env.build.steps_of(CondaInstall)) and not uses_micromamba(ctx.env)
    if has_conda:
        tool, mounts = f"{CONDA_ROOT}/bin/conda", (ctx.conda_cache(CONDA_ROOT),)
    elif uses_micromamba(ctx.env):  # the image's own micromamba (install.conda(use_mamba=True))
        tool, mounts = f"MAMBA_ROOT_PREFIX={CONDA_ROOT} {MICROMAMBA}", (ctx.conda_cache(CONDA_ROOT),)
    else:
        mamba = image(MICROMAMBA_IMAGE, platform=ctx.platform, span=steps[0].span)
        tool = f"MAMBA_ROOT_PREFIX={CONDA_ROOT} /run/dsl/micromamba/bin/micromamba"
        mounts = (BindMount("/run/dsl/micromamba", mamba.output), ctx.conda_cache(CONDA_ROOT))
    prefix = conda_prefix(ctx.env)
    for step in steps:
        if step.env_file:
            path = check.context_path(step.env_file, step.span)
            verb = "env update" if has_conda else "update -y"
            line = (f"{tool} {verb} -p {prefix} --file "
                    f"{shlex.quote(f'{CONTEXT_MOUNT}/{path}')}")
            name, extra = f"install.conda_packages env_file={path}", (ctx.context_mount(),)
        else:
            pkgs = [check.conda_package(p, step.span) for p in step.packages]
            chans = [w for c in step.channels for w in ("-c", check.conda_channel(c, step.span))]
            if not pkgs:
                continue
            line = f"{tool} install -y -p {prefix} {quote_all(chans + pkgs)}"
            name, extra = f"install.conda_packages {' '.join(pkgs)}"[:200], ()
        state = ctx.run(state, [line], name=name, span=step.span, mounts=mounts + extra)
    return state
