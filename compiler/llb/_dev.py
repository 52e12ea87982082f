"""The dev runtime layer (``base(dev=True)``): user ``envd``, OpenSSH, the entrypoint.

sshd runs as the unprivileged dev user on port 2222 with its own configuration (no PAM, keys
only, host key and pid file in the user's state directory), so the image works in a Pod that
runs as non-root with every capability dropped. No key and no Jupyter token is baked in: the
entrypoint reads them at start (see templates/entrypoint.sh.j2 for the contract).
"""

from __future__ import annotations

import shlex
from functools import cache
from typing import TYPE_CHECKING

from compiler.llb._context import Context
from compiler.llb._layout import (
    CONDA_ROOT,
    DEFAULT_UID,
    DEV_HOME,
    DEV_USER,
    ENTRYPOINT,
    LOG_DIR,
    LOGIN,
    LOGIN_SHELLS,
    PROFILE_HOOK,
    SFTP_SERVERS,
    SSHD_CONFIG,
    login_shell,
    python_kind,
    workdir,
)
from compiler.llb._ops import Mkdir, Mkfile, Owner
from compiler.llb._python import python_lines
from compiler.llb._script import install_packages
from compiler.llb._state import State
from dsl import rules
from dsl.errors import CompileError
from dsl.ir import JUPYTER_PORT, RSTUDIO_PORT, SSH_PORT, Environment

if TYPE_CHECKING:
    import jinja2

DEV_PACKAGES = {
    "apt": ("openssh-server", "bash", "ca-certificates", "sudo", "git", "curl", "procps", "less"),
    "apk": ("openssh-server", "openssh-keygen", "bash", "ca-certificates", "sudo", "git", "curl",
            "procps", "shadow"),
    "dnf": ("openssh-server", "openssh-clients", "bash", "ca-certificates", "sudo", "git", "curl",
            "procps-ng", "shadow-utils"),
}


ZSHRC = b"# envdsl: shell(\"zsh\"). Your zsh settings go here.\n"


def dev_packages(env: Environment) -> dict[str, tuple[str, ...]]:
    """The dev layer's packages per package manager, with the ``shell()`` that is not bash
    (zsh and fish have the same package name in Debian, Alpine and Fedora)."""
    name = env.build.shell
    login_shell(env)  # refuses an unknown shell before anything is built
    if name == "bash":
        return DEV_PACKAGES
    return {manager: (*pkgs, name) for manager, pkgs in DEV_PACKAGES.items()}


def _shell_lines(env: Environment, o: Owner) -> list[str]:
    """After the packages: the shell at envd's path (``LOGIN_SHELLS``), listed in
    /etc/shells, and root's login shell when the dev user is root (envd's root mode)."""
    name = env.build.shell
    if name == "bash":
        return []
    path = LOGIN_SHELLS[name]
    lines = [
        # Alpine puts zsh in /bin; SHELL and the passwd entry name one path on every distro
        f"[ -x {path} ] || ln -s \"$(command -v {name})\" {path}",
        f"grep -qx {path} /etc/shells 2>/dev/null || echo {path} >> /etc/shells",
    ]
    if o.uid == 0:
        lines.append(f"usermod -s {path} root")  # every DEV_PACKAGES set brings usermod
    return lines


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


def prepare(ctx: Context, state: State) -> State:
    """Stable, cache-friendly first steps: sshd and basic tools (and python3 for the venv),
    then the user."""
    span = ctx.env.build.base.span
    python = python_lines(ctx, apt_only=False) if python_kind(ctx.env) == "venv" else []
    o = owner(ctx.env)
    extra = "" if ctx.env.build.shell == "bash" else f" and {ctx.env.build.shell}"
    state = ctx.run(state, [install_packages(dev_packages(ctx.env), "the dev layer (OpenSSH server)",
                                             ca_bundle=ctx.ca_bundle), *_shell_lines(ctx.env, o), *python],
                    name=f"dev: install OpenSSH server{extra} and basic tools", span=span,
                    mounts=ctx.apt_caches())
    if o.uid == 0:  # envd's root mode: stay root, but keep the usual home (a FileOp: no container)
        return state.file(Mkdir(DEV_HOME, 0o755), name=f"dev: user root, home {DEV_HOME}", span=span)
    return ctx.run(state, _user_script(o, login_shell(ctx.env)),
                   name=f"dev: user {DEV_USER} ({o.uid}:{o.gid})", span=span)


def give_to_user(env: Environment, prefix: str) -> tuple[str, ...]:
    """One recursive chown (as envd does) so ``pip install`` works for the user at run time;
    no lines when the dev user is root."""
    o = owner(env)
    return (f"chown -R {o.uid}:{o.gid} {prefix}",) if env.build.base.dev and o.uid != 0 else ()


def _user_script(o: Owner, login: str) -> list[str]:
    u, g = o.uid, o.gid
    # an existing user of that name keeps its entry but gets the login shell of shell()
    keep = [] if login == "/bin/bash" else [
        f"if command -v usermod >/dev/null 2>&1; then usermod -s {login} \"$name\"; fi"]
    return [
        f"uid={u} gid={g} name={DEV_USER} home={DEV_HOME}",
        # reuse (rename) an existing user/group with our ids, e.g. ubuntu:24.04's "ubuntu"
        "group=$(awk -F: -v id=\"$gid\" '$3 == id {print $1; exit}' /etc/group)",
        "user=$(awk -F: -v id=\"$uid\" '$3 == id {print $1; exit}' /etc/passwd)",
        "if command -v useradd >/dev/null 2>&1; then",
        "  if [ -z \"$group\" ]; then groupadd -g \"$gid\" \"$name\";"
        " elif [ \"$group\" != \"$name\" ]; then groupmod -n \"$name\" \"$group\"; fi",
        f"  if [ -z \"$user\" ]; then useradd -m -d \"$home\" -s {login} -u \"$uid\" -g \"$gid\" \"$name\";"
        f" elif [ \"$user\" != \"$name\" ]; then usermod -l \"$name\" -d \"$home\" -m -g \"$gid\" -s {login} \"$user\"; fi",
        "else",
        "  [ -n \"$group\" ] || addgroup -g \"$gid\" \"$name\"",
        f"  [ -n \"$user\" ] || adduser -D -h \"$home\" -s {login} -u \"$uid\" -G \"$name\" \"$name\"",
        "fi",
        *keep,
        "mkdir -p \"$home\" && chown \"$uid:$gid\" \"$home\"",
        "if [ -d /etc/sudoers.d ]; then",
        "  echo \"$name ALL=(ALL) NOPASSWD:ALL\" > /etc/sudoers.d/\"$name\" && chmod 440 /etc/sudoers.d/\"$name\"",
        "fi",
    ]


def finish(ctx: Context, state: State) -> State:
    """Hand the toolchains to the user and add sshd config, entrypoint and directories."""
    env, o = ctx.env, owner(ctx.env)
    span = env.build.base.span
    if python_kind(env) == "conda" and o.uid != 0:  # the venv's chown ends its last pip step
        state = ctx.run(state, give_to_user(env, CONDA_ROOT),
                        name=f"dev: give {CONDA_ROOT} to {DEV_USER}", span=span)
    files = [
        Mkdir("/etc/dsl/sshd", 0o755),
        Mkfile(SSHD_CONFIG, render_sshd_config().encode(), 0o644),
        Mkfile(ENTRYPOINT, render_entrypoint(env).encode(), 0o755),
        Mkfile(LOGIN, render_login().encode(), 0o755),
        Mkdir(PROFILE_HOOK.rsplit("/", 1)[0], 0o755),
        Mkfile(PROFILE_HOOK, _templates().get_template("profile.sh.j2").render().encode(), 0o644),
        Mkdir(LOG_DIR, 0o755, owner=o),
        Mkdir(workdir(env), 0o755, owner=o),
    ]
    if env.build.shell == "zsh":  # without a ~/.zshrc, zsh's first start runs a setup wizard
        files.append(Mkfile(f"{DEV_HOME}/.zshrc", ZSHRC, 0o644, owner=o))
    gc = env.build.git_config
    if gc is not None and (gc.name or gc.email or gc.editor):
        files.append(Mkfile(f"{DEV_HOME}/.gitconfig", _gitconfig(gc.name, gc.email, gc.editor), 0o644, owner=o))
    return state.file(*files, name="dev: sshd config, entrypoint, work directory", span=span)


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
def _templates() -> jinja2.Environment:
    import jinja2  # only dev images need it; keeps `dsl compile` of other images fast

    return jinja2.Environment(
        loader=jinja2.PackageLoader("compiler.llb", "templates"),
        autoescape=False, undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
    )


def render_sshd_config() -> str:
    """The sshd configuration (same for every image)."""
    return _templates().get_template("sshd_config.j2").render(port=SSH_PORT)


def render_login() -> str:
    """The script sshd runs for every session (same for every image): it restores the
    container's environment and working directory, or starts the sftp server."""
    return _templates().get_template("login.sh.j2").render(sftp_servers=SFTP_SERVERS)


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
    return _templates().get_template("entrypoint.sh.j2").render(
        home=DEV_HOME, log_dir=q(LOG_DIR), workdir=q(workdir(env)), init_scripts=init,
        daemons=daemons, jupyter=jupyter, rstudio=rt.rstudio, rstudio_port=RSTUDIO_PORT,
        sshd_config=q(SSHD_CONFIG), login=q(LOGIN),
    )
