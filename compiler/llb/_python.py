"""Python toolchains and packages: a venv on the image's python3, or conda / micromamba.

Debian bookworm's system python3 has no pip and is PEP 668 "externally managed", so pip never
touches it: without ``install.python``/``install.conda`` we create a venv at ``VENV`` (installing
python3 + venv support with the image's package manager only if missing) and put it first on
PATH. With ``install.python`` the interpreter lives in a conda prefix (``CONDA_ENV``), made by
micromamba (mounted from its image, not copied) or by miniconda when ``install.conda`` is used.
"""

from __future__ import annotations

import shlex

from compiler.llb import _validate as check
from compiler.llb._context import CONTEXT_MOUNT, Context
from compiler.llb._layout import CONDA_ENV, CONDA_ROOT, VENV, python_kind
from compiler.llb._ops import BindMount
from compiler.llb._script import install_packages, quote_all
from compiler.llb._state import State, http, image
from dsl.ir import CondaInstall, CondaPackages, PipPackages, PipRequirements, PipWheel, PythonInstall

MICROMAMBA_IMAGE = "ghcr.io/mamba-org/micromamba:2.3.3-debian12-slim"
MINICONDA = "https://repo.anaconda.com/miniconda/Miniconda3-py311_25.9.1-1-Linux-{arch}.sh"
_CONDA_ARCH = {"amd64": "x86_64", "arm64": "aarch64", "ppc64le": "ppc64le", "s390x": "s390x"}


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
    if conda:
        arch = _CONDA_ARCH.get(ctx.platform.architecture, ctx.platform.architecture)
        installer = http(MINICONDA.format(arch=arch), filename="miniconda.sh",
                         platform=ctx.platform, name="download miniconda", span=conda[-1].span)
        state = ctx.run(state, [
            f"bash /run/dsl/miniconda/miniconda.sh -b -u -p {CONDA_ROOT}",
            f"printf 'channels:\\n  - conda-forge\\n' > {CONDA_ROOT}/.condarc",
        ], name="install.conda", span=conda[-1].span,
            mounts=(BindMount("/run/dsl/miniconda", installer.output), ctx.conda_cache(CONDA_ROOT)))
    if pythons:
        py = pythons[-1]
        version = check.version(py.version or "3.11", "python", py.span)
        if version.startswith("2"):
            from dsl.errors import CompileError
            raise CompileError(f"Python {version} is not supported", span=py.span,
                               hint="install.python(version='3.x')")
        if conda:
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


def venv(ctx: Context, state: State) -> State:
    """Create the venv on the image's python3 (after the system packages)."""
    if python_kind(ctx.env) != "venv":
        return state
    ensure = install_packages(
        {"apt": ("python3", "python3-venv"), "apk": ("python3",), "dnf": ("python3",)},
        "a Python for install.python_packages", ca_bundle=ctx.ca_bundle)
    return ctx.run(state, [
        f"if [ ! -x {VENV}/bin/python ]; then",
        "if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then",
        ensure,
        "fi",
        f"python3 -m venv {VENV}",
        "fi",
    ], name=f"python venv {VENV}", span=ctx.env.build.base.span, mounts=ctx.apt_caches())


def packages(ctx: Context, state: State) -> State:
    """pip groups (one step each), requirements, wheels, then conda packages, in that order."""
    py = python_bin(ctx)
    pip = f"{py} -m pip install"
    groups = list(ctx.env.build.steps_of(PipPackages))
    jupyter = ctx.env.runtime.jupyter
    if jupyter is not None and not any(_mentions(g.packages, ("jupyter", "notebook")) for g in groups):
        groups.insert(0, PipPackages(("jupyter",), span=jupyter.span))
    for g in groups:
        words = [w for item in g.packages for w in check.pip_item(item, g.span)]
        if not words:
            continue
        state = ctx.run(state, [f"{pip} {quote_all(words)}"],
                        name=f"install.python_packages {' '.join(g.packages)}"[:200],
                        span=g.span, mounts=(ctx.pip_cache(),))
    for req in ctx.env.build.steps_of(PipRequirements)[-1:]:  # last call wins (envd)
        path = check.context_path(req.path, req.span)
        state = ctx.run(state, [f"{pip} -r {shlex.quote(f'{CONTEXT_MOUNT}/{path}')}"],
                        name=f"install.python_packages requirements={path}", span=req.span,
                        mounts=(ctx.pip_cache(), ctx.context_mount()))
    for wheel in ctx.env.build.steps_of(PipWheel):
        path = check.context_path(wheel.path, wheel.span)
        state = ctx.run(state, [f"{pip} {shlex.quote(f'{CONTEXT_MOUNT}/{path}')}"],
                        name=f"install.python_packages local_wheels={path}", span=wheel.span,
                        mounts=(ctx.pip_cache(), ctx.context_mount()))
    return _conda_packages(ctx, state)


def _mentions(items: tuple[str, ...], names: tuple[str, ...]) -> bool:
    return any(i.split()[0].lower().startswith(names) for i in items if i.strip())


def _conda_packages(ctx: Context, state: State) -> State:
    steps = ctx.env.build.steps_of(CondaPackages)
    if not steps:
        return state
    has_conda = bool(ctx.env.build.steps_of(CondaInstall))
    if has_conda:
        tool, mounts = f"{CONDA_ROOT}/bin/conda", (ctx.conda_cache(CONDA_ROOT),)
    else:
        mamba = image(MICROMAMBA_IMAGE, platform=ctx.platform, span=steps[0].span)
        tool = f"MAMBA_ROOT_PREFIX={CONDA_ROOT} /run/dsl/micromamba/bin/micromamba"
        mounts = (BindMount("/run/dsl/micromamba", mamba.output), ctx.conda_cache(CONDA_ROOT))
    prefix = CONDA_ENV if ctx.env.build.steps_of(PythonInstall) else CONDA_ROOT
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
