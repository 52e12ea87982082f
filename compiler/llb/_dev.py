"""The dev layer (``base(dev=True)``): the runtime bundle, user ``envd``, the entrypoint.

Everything it runs comes from the runtime bundle (_bundle.py: sshd, busybox, git, curl under
``/opt/envdsl/runtime``), so it works on any Linux image: glibc or musl or no libc, with or
without a package manager or a shell. The image's package manager is used only for a
``shell()`` the image lacks; everything else it installs is what the build file asks for.

sshd runs as the unprivileged dev user on port 2222 with its own configuration (no PAM, keys
only, host key and pid file in the user's state directory), so the image works in a Pod that
runs as non-root with every capability dropped. No key and no Jupyter token is baked in: the
entrypoint reads them at start (see templates/entrypoint.sh.j2 for the contract).
"""

from __future__ import annotations

import shlex
from functools import cache
from typing import TYPE_CHECKING

from compiler.llb._account import account_script
from compiler.llb._bundle import join_runtime
from compiler.llb._context import Context
from compiler.llb._layout import (
    ACTIVITY,
    ACTIVITY_DIR,
    ACTIVITY_SWEEP_SECONDS,
    CONDA_ROOT,
    DEFAULT_UID,
    DEV_HOME,
    DEV_USER,
    ENTRYPOINT,
    LOG_DIR,
    LOGIN,
    LOGIN_SHELLS,
    PROFILE_HOOK,
    RUNTIME_BIN,
    RUNTIME_SFTP_SERVER,
    RUNTIME_SH,
    RUNTIME_SSHD,
    SSHD_CONFIG,
    login_shell,
    python_kind,
    workdir,
)
from compiler.llb._ops import Mkdir, Mkfile, Owner
from compiler.llb._script import install_packages
from compiler.llb._state import State
from dsl import rules
from dsl.errors import CompileError
from dsl.ir import JUPYTER_PORT, RSTUDIO_PORT, SSH_PORT, AptPackages, Environment

if TYPE_CHECKING:
    import jinja2

ZSHRC = b"# envdsl: shell(\"zsh\"). Your zsh settings go here.\n"


def shell_packages(env: Environment) -> dict[str, tuple[str, ...]]:
    """The image packages the dev layer asks for: only ``shell()`` when it is not bash (zsh and
    fish have the same package name in Debian, Alpine and Fedora); the rest is the runtime's."""
    name = env.build.shell
    login_shell(env)  # refuses an unknown shell before anything is built
    if name == "bash":
        return {}
    return {manager: (name,) for manager in ("apt", "apk", "dnf")}


def _shell_lines(env: Environment, ca_bundle: bool) -> list[str]:
    """The shell of ``shell()`` from the image's package manager unless the image has it, at
    envd's path (``LOGIN_SHELLS``; Alpine puts zsh in /bin) and listed in /etc/shells."""
    name = env.build.shell
    path = LOGIN_SHELLS[name]
    install = install_packages(shell_packages(env), f'shell("{name}")', ca_bundle=ca_bundle)
    return [
        f"if [ ! -x {path} ] && ! command -v {name} >/dev/null 2>&1; then",
        install,
        "fi",
        f"[ -x {path} ] || ln -s \"$(command -v {name})\" {path}",
        f"grep -qx {path} /etc/shells 2>/dev/null || echo {path} >> /etc/shells",
    ]


def owner(env: Environment) -> Owner:
    """UID/GID of the dev user: ``build.owner`` (config.owner or --owner), else 1000:1000."""
    o = env.build.owner
    if o is None:
        return Owner(DEFAULT_UID, DEFAULT_UID)
    try:
        rules.owner_id(o.uid), rules.owner_id(o.gid)
    except rules.Invalid as exc:
        raise CompileError(f"owner {o.uid}:{o.gid} is out of range: {exc.message}", span=o.span,
                           hint="config.owner(uid, gid) takes numbers 0..65535") from exc
    return Owner(o.uid, o.gid)


def prepare(ctx: Context, state: State, *, parallel: bool) -> State:
    """Stable, cache-friendly first steps: the runtime bundle (cached once per builder), the
    shell of ``shell()`` when it is not bash, then the user's account."""
    span = ctx.env.build.base.span
    o = owner(ctx.env)
    state = join_runtime(state, parallel=parallel, base=ctx.runtime_base)
    if shell_packages(ctx.env):
        state = ctx.run(state, _shell_lines(ctx.env, ctx.ca_bundle), name=f"dev: install {ctx.env.build.shell}",
                        span=span, mounts=ctx.apt_caches(), shell=RUNTIME_SH)
    name = "root" if o.uid == 0 else DEV_USER
    # /run/dsl is the dev user's, so its sshd sessions can record activity there (dsl-activity);
    # made here, as root, since a later step's CA mount under it may leave a root-owned stub
    activity_dir = [f"mkdir -p {ACTIVITY_DIR} && chown {o.uid}:{o.gid} {ACTIVITY_DIR} && chmod 755 {ACTIVITY_DIR}"]
    return ctx.run(state, account_script(o, name, DEV_HOME, login_shell(ctx.env)) + activity_dir,
                   name=f"dev: user {name} ({o.uid}:{o.gid}), home {DEV_HOME}", span=span, shell=RUNTIME_SH)


def give_to_user(env: Environment, prefix: str) -> tuple[str, ...]:
    """One recursive chown (as envd does) so ``pip install`` works for the user at run time;
    no lines when the dev user is root."""
    o = owner(env)
    return (f"chown -R {o.uid}:{o.gid} {prefix}",) if env.build.base.dev and o.uid != 0 else ()


def finish(ctx: Context, state: State) -> State:
    """Hand the toolchains to the user and add sshd config, entrypoint and directories."""
    env, o = ctx.env, owner(ctx.env)
    span = env.build.base.span
    if python_kind(env) == "conda" and o.uid != 0:  # the venv's chown ends its last pip step
        state = ctx.run(state, give_to_user(env, CONDA_ROOT),
                        name=f"dev: give {CONDA_ROOT} to {DEV_USER}", span=span)
    files = [
        Mkdir(ENTRYPOINT.rsplit("/", 1)[0], 0o755),  # images without /usr/local/bin (busybox, ...)
        Mkdir("/etc/dsl/sshd", 0o755),
        Mkfile(SSHD_CONFIG, render_sshd_config().encode(), 0o644),
        Mkfile(ENTRYPOINT, render_entrypoint(env).encode(), 0o755),
        Mkfile(LOGIN, render_login().encode(), 0o755),
        Mkfile(ACTIVITY, render_activity().encode(), 0o755),
        Mkdir(PROFILE_HOOK.rsplit("/", 1)[0], 0o755),
        Mkfile(PROFILE_HOOK, templates().get_template("profile.sh.j2").render().encode(), 0o644),
        Mkdir(LOG_DIR, 0o755, owner=o),
        Mkdir(workdir(env), 0o755, owner=o),
    ]
    if env.build.shell == "zsh":  # without a ~/.zshrc, zsh's first start runs a setup wizard
        files.append(Mkfile(f"{DEV_HOME}/.zshrc", ZSHRC, 0o644, owner=o))
    gc = env.build.git_config
    if gc is not None and (gc.name or gc.email or gc.editor):
        files.append(Mkfile(f"{DEV_HOME}/.gitconfig", _gitconfig(gc.name, gc.email, gc.editor), 0o644, owner=o))
    if o.uid != 0 and "sudo" in _apt_packages(env):  # sudo is the build file's, not the runtime's
        files += [Mkdir("/etc/sudoers.d", 0o755),
                  Mkfile(f"/etc/sudoers.d/{DEV_USER}", f"{DEV_USER} ALL=(ALL) NOPASSWD:ALL\n".encode(), 0o440)]
    return state.file(*files, name="dev: sshd config, entrypoint, work directory", span=span)


def _apt_packages(env: Environment) -> set[str]:
    return {p for s in env.build.steps_of(AptPackages) for p in s.packages}


def _gitconfig(name: str, email: str, editor: str) -> bytes:
    def val(v: str) -> str:  # git-config quoting: wrap, escape backslash and quote
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'
    lines = ["[user]"]
    lines += [f"\tname = {val(name)}"] if name else []
    lines += [f"\temail = {val(email)}"] if email else []
    if editor:
        lines += ["[core]", f"\teditor = {val(editor)}"]
    return ("\n".join(lines) + "\n").encode()


@cache
def templates() -> jinja2.Environment:
    import jinja2  # only dev images need it; keeps `dsl compile` of other images fast

    return jinja2.Environment(
        loader=jinja2.PackageLoader("compiler.llb", "templates"),
        autoescape=False, undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
    )


def render_sshd_config() -> str:
    """The sshd configuration (same for every image)."""
    return templates().get_template("sshd_config.j2").render(port=SSH_PORT)


def render_login() -> str:
    """The script sshd runs for every session (same for every image): it restores the
    container's environment and working directory, or starts the sftp server."""
    return templates().get_template("login.sh.j2").render(runtime_sh=RUNTIME_SH, activity=ACTIVITY,
                                                           sftp_server=RUNTIME_SFTP_SERVER)


def render_activity() -> str:
    """The SSH activity record's script (same for every image): what ``dsl gc`` reads."""
    return templates().get_template("activity.sh.j2").render(runtime_sh=RUNTIME_SH, runtime_bin=RUNTIME_BIN,
                                                              sweep_seconds=ACTIVITY_SWEEP_SECONDS)


def render_entrypoint(env: Environment) -> str:
    """The entrypoint script for ``env`` (init commands, daemons, Jupyter/RStudio, sshd).

    Every value from the build file is passed through ``shlex.quote``.
    """
    rt = env.runtime
    q = shlex.quote
    init = [q("\n".join(("set -euo pipefail", *s.commands))) for s in rt.init]
    daemons = [{"name": q(f"daemon-{i}"), "argv": " ".join(q(a) for a in d.args)}
               for i, d in enumerate(rt.daemons, 1) if d.args]
    # the token is never rendered (the IR does not hold it): the script reads it at start
    jupyter = None if rt.jupyter is None else {"port": JUPYTER_PORT, "auth": rt.jupyter.auth}
    return templates().get_template("entrypoint.sh.j2").render(
        home=DEV_HOME, log_dir=q(LOG_DIR), workdir=q(workdir(env)), init_scripts=init,
        daemons=daemons, jupyter=jupyter, rstudio=rt.rstudio, rstudio_port=RSTUDIO_PORT,
        sshd_config=q(SSHD_CONFIG), login=q(LOGIN), runtime_sh=RUNTIME_SH, runtime_bin=RUNTIME_BIN,
        sshd=RUNTIME_SSHD, activity=q(ACTIVITY), sweep_seconds=ACTIVITY_SWEEP_SECONDS,
    )
