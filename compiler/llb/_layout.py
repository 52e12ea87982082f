"""Where things live in the images we build, and the environment every step and the image get.

One module so the LLB compiler, the dev layer and the image config agree on paths and PATH.
"""

from __future__ import annotations

from compiler._names import DEFAULT_UID, DEV_HOME
from compiler._runtime import workdir
from dsl.ir import (
    CondaInstall,
    Environment,
    GoInstall,
    JuliaInstall,
    NodejsInstall,
    PipPackages,
    PipRequirements,
    PipWheel,
    PythonInstall,
    RustInstall,
    UvInstall,
)


DEV_USER = "envd"
VENV = "/opt/dsl/python"  # the venv on top of the system python3 (PEP 668 safe)
CONDA_ROOT = "/opt/conda"
CONDA_ENV = "/opt/conda/envs/envd"
ENTRYPOINT = "/usr/local/bin/dsl-entrypoint"
LOGIN = "/usr/local/bin/dsl-login"  # sshd's ForceCommand: session environment and directory
ACTIVITY = "/usr/local/bin/dsl-activity"  # the SSH activity record `dsl gc` reads (templates/activity.sh.j2)
ACTIVITY_DIR = "/run/dsl"  # the dev user's: where dsl-activity keeps its record
ACTIVITY_SWEEP_SECONDS = 10  # how late a logout (or a killed session) is noticed at most
PROFILE_HOOK = "/etc/profile.d/dsl-environment.sh"
SSHD_CONFIG = "/etc/dsl/sshd/sshd_config"
LOG_DIR = "/var/log/dsl"
CA_BUNDLE_PATH = "/run/dsl/ca-bundle.crt"
CA_SECRET_ID = "dsl-ca-bundle"
CONTEXT_NAME = "context"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
LABEL_PREFIX = "dev.envdsl"
# The dev runtime bundle (compiler/llb/_bundle.py): sshd, sftp-server, ssh, busybox, git, curl
# and every library they load, under one prefix, whatever the image's libc is.
RUNTIME_PREFIX = "/opt/envdsl/runtime"
RUNTIME_BIN = f"{RUNTIME_PREFIX}/bin"  # last on PATH: the image's own tools win
RUNTIME_SH = f"{RUNTIME_BIN}/sh"  # busybox: the shell of the dev layer's steps and scripts
RUNTIME_SSHD = f"{RUNTIME_PREFIX}/sbin/sshd"
RUNTIME_SFTP_SERVER = f"{RUNTIME_PREFIX}/libexec/sftp-server"
RUNTIME_LABEL = f"{LABEL_PREFIX}.runtime.bundle"  # the bundle's digest, on every dev image
# shell(name) -> the login shell of the dev user and SHELL (envd's paths; the dev layer links
# the packaged shell there where a distribution puts it elsewhere, see _dev._shell_lines).
LOGIN_SHELLS = {"bash": "/bin/bash", "zsh": "/usr/bin/zsh", "fish": "/usr/bin/fish"}
_TOOL_BIN = {GoInstall: "/usr/local/go/bin", NodejsInstall: "/opt/nodejs/bin",
             JuliaInstall: "/opt/julia/bin", RustInstall: "/opt/rust/bin"}


def python_kind(env: Environment) -> str:
    """Which Python the pip steps use: ``conda`` (install.python / install.conda), ``venv``
    (a venv at ``VENV`` made from the image's python3) or ``none`` (no pip step at all)."""
    build = env.build
    if build.steps_of(PythonInstall) or build.steps_of(CondaInstall):
        return "conda"
    if (build.steps_of(PipPackages) or build.steps_of(PipRequirements)
            or build.steps_of(PipWheel) or env.runtime.jupyter is not None):
        return "venv"
    return "none"


def login_shell(env: Environment) -> str:
    """The dev user's login shell (``shell()``): also ``SHELL`` in the image.

    Raises:
        CompileError: a shell the dev layer cannot install (the language refuses it earlier).
    """
    path = LOGIN_SHELLS.get(env.build.shell)
    if path is None:
        from dsl.errors import CompileError

        raise CompileError(f"shell {env.build.shell!r} is not supported",
                           hint="shell() takes " + ", ".join(repr(s) for s in LOGIN_SHELLS))
    return path


def uses_micromamba(env: Environment) -> bool:
    """``install.conda(use_mamba=True)``: micromamba is the conda of the image (last call wins)."""
    conda = env.build.steps_of(CondaInstall)
    return bool(conda) and conda[-1].use_mamba


def conda_prefix(env: Environment) -> str:
    """Where conda packages go: the envd environment with ``install.python``, else the root."""
    return CONDA_ENV if env.build.steps_of(PythonInstall) else CONDA_ROOT


def path_entries(env: Environment) -> tuple[str, ...]:
    """PATH directories our installs add, highest priority first (before the base PATH)."""
    out: list[str] = [*env.runtime.extra_path]
    kind = python_kind(env)
    if kind == "conda":
        out += [f"{CONDA_ENV}/bin", f"{CONDA_ROOT}/bin"]
    elif kind == "venv":
        out.append(f"{VENV}/bin")
    out += [_TOOL_BIN[type(s)] for s in env.build.steps if type(s) in _TOOL_BIN]
    if env.build.base.dev:
        out.append(f"{DEV_HOME}/.local/bin")
    if env.build.cuda is not None:
        out += ["/usr/local/nvidia/bin", "/usr/local/cuda/bin"]
    return tuple(dict.fromkeys(out))


def trailing_path_entries(env: Environment) -> tuple[str, ...]:
    """PATH directories that come after the base PATH: the dev runtime's, so an image's own
    git, curl or sh is found first and the bundle's only where the image has none."""
    return (RUNTIME_BIN,) if env.build.base.dev else ()


def join_path(first: tuple[str, ...], base_path: str = DEFAULT_PATH, last: tuple[str, ...] = ()) -> str:
    """``first`` entries, then the base image's PATH, then ``last``, without duplicates."""
    parts = [*first, *base_path.split(":"), *last]
    return ":".join(p for p in dict.fromkeys(parts) if p)


def toolchain_env(env: Environment) -> tuple[tuple[str, str], ...]:
    """Variables the toolchains need in build steps and in the image (as envd sets them).

    uv: copy instead of hard links (which fail across the cache and image filesystems), and
    only the Python uv installed, never the image's. ``MAMBA_ROOT_PREFIX``/``MAMBA_TARGET_PREFIX``
    let ``conda`` (micromamba) find its root and install where the build put the packages;
    ``JULIA_PKG_SERVER`` is ``config.julia_pkg_server`` (Pkg's mirror).
    """
    out: list[tuple[str, str]] = []
    if env.build.steps_of(UvInstall):
        out += [("UV_LINK_MODE", "copy"), ("UV_PYTHON_PREFERENCE", "only-managed")]
    if uses_micromamba(env):
        out += [("MAMBA_ROOT_PREFIX", CONDA_ROOT), ("MAMBA_TARGET_PREFIX", conda_prefix(env))]
    if env.build.julia_pkg_server is not None:
        out.append(("JULIA_PKG_SERVER", env.build.julia_pkg_server.value))
    return tuple(out)


def build_env(env: Environment, base_path: str | None = None) -> tuple[tuple[str, str], ...]:
    """The environment of every build step (root steps and the dev user's ``run()`` steps).

    ``base_path`` is the base image's own PATH when the caller knows it (its config), so tools
    the base image puts on PATH (e.g. ``/opt/conda/bin``) are found by build steps too.
    """
    return (
        ("PATH", join_path(path_entries(env), base_path or DEFAULT_PATH, trailing_path_entries(env))),
        ("DEBIAN_FRONTEND", "noninteractive"),
        ("LANG", "C.UTF-8"),
        ("LC_ALL", "C.UTF-8"),
        ("PIP_DISABLE_PIP_VERSION_CHECK", "1"),
        ("PIP_ROOT_USER_ACTION", "ignore"),
        *toolchain_env(env),
    )
