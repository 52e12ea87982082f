"""envdsl's SSH config: one ``Host <env>.dsl`` block per environment, for editors and tools.

Layout (everything under ``~/.ssh/envdsl``, 0700)::

    ~/.ssh/config                 + one line: Include ~/.ssh/envdsl/config
    ~/.ssh/envdsl/config          Include .../envdsl/hosts/*.conf (written once)
    ~/.ssh/envdsl/hosts/ID.conf   one environment's block; written by `dsl up`, removed by `dsl down`

One file per environment makes adding and removing a block a single atomic rename or unlink,
so parallel ``dsl up`` never lose each other's blocks. A block never goes stale: its
``ProxyCommand`` (``dsl ssh --stdio ID``) looks the environment's live address up each time.

ssh reads ``~`` and relative ``Include`` paths against the account's home directory from the
password database, not ``$HOME``; when the two differ (tests, sandboxes) every path written is
absolute, so what ssh reads is what we wrote.
"""

from __future__ import annotations

import os
import pwd
import shlex
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from dsl.errors import UsageError
from dsl.ssh._include import IncludeOutcome, ensure_include

_HEADER = "# Written by envdsl (`dsl up`); `dsl down` removes it. Edits are lost.\n"


@dataclass(frozen=True, slots=True)
class HostBlock:
    """The ssh_config block of one environment."""

    env_id: str
    aliases: tuple[str, ...]
    user: str
    identity_file: Path
    known_hosts: Path
    host_key_alias: str
    proxy_command: tuple[str, ...]
    comment: str = ""

    def render(self) -> str:
        """The block's text (absolute, quoted paths; ``%`` escaped where ssh expands tokens)."""
        proxy = " ".join(shlex.quote(a) for a in self.proxy_command).replace("%", "%%")
        lines = [_HEADER.rstrip("\n")]
        if self.comment:
            lines.append(f"# {self.comment}")
        lines += [
            f"Host {' '.join(self.aliases)}",
            f"  User {self.user}",
            f"  IdentityFile {_path(self.identity_file)}",
            "  IdentitiesOnly yes",
            f"  UserKnownHostsFile {_path(self.known_hosts)}",
            f"  HostKeyAlias {self.host_key_alias}",
            "  StrictHostKeyChecking yes",
            f"  ProxyCommand {proxy}",
        ]
        return "\n".join(lines) + "\n"


def _path(path: Path) -> str:
    text = str(path)
    if '"' in text or "\n" in text:
        raise UsageError(f"cannot write the path {text!r} into an ssh config", hint="move the config directory")
    text = text.replace("%", "%%")
    return f'"{text}"' if any(c.isspace() for c in text) else text


def dsl_command() -> tuple[str, ...]:
    """How ssh's ProxyCommand runs this very ``dsl``: its script by absolute path when it was
    started as one (an editor's ssh has no activated virtualenv), else ``python -m dsl``."""
    script = sys.argv[0] if sys.argv else ""
    if os.path.basename(script) == "dsl" and os.path.isfile(script):
        return (os.path.abspath(script),)
    return (sys.executable, "-m", "dsl")


def ssh_home() -> Path:
    """``$HOME/.ssh``."""
    return Path.home() / ".ssh"


def envdsl_dir() -> Path:
    """``~/.ssh/envdsl``."""
    return ssh_home() / "envdsl"


def _homes_agree() -> bool:
    try:
        return os.path.realpath(pwd.getpwuid(os.getuid()).pw_dir) == os.path.realpath(Path.home())
    except KeyError:
        return False


def include_line() -> str:
    """The line for ``~/.ssh/config``: ``Include ~/.ssh/envdsl/config`` (absolute when ssh's
    idea of ``~`` is not ``$HOME``)."""
    main = envdsl_dir() / "config"
    return f"Include {'~/.ssh/envdsl/config' if _homes_agree() else _path(main)}"


def _same_include() -> tuple[str, ...]:
    main = envdsl_dir() / "config"
    return ("~/.ssh/envdsl/config", "envdsl/config", str(main))


def _write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)  # mkstemp made it 0600, which ssh requires of a config file
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _prepare() -> Path:
    hosts = envdsl_dir() / "hosts"
    try:
        hosts.mkdir(mode=0o700, parents=True, exist_ok=True)
        main = envdsl_dir() / "config"
        text = _HEADER + f"Include {_path(hosts)}/*.conf\n"
        if not main.is_file() or main.read_text(encoding="utf-8") != text:
            _write(main, text)
    except OSError as exc:
        raise UsageError(f"cannot write envdsl's ssh config under {envdsl_dir()}: {exc.strerror or exc}",
                         hint="make ~/.ssh writable, or pass --no-ssh-config") from exc
    return hosts


def write_host(block: HostBlock) -> Path:
    """Write (or replace) an environment's block; returns its file."""
    hosts = _prepare()
    path = hosts / f"{block.env_id}.conf"
    text = block.render()
    try:
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            _write(path, text)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}", hint="pass --no-ssh-config") from exc
    return path


def remove_host(env_id: str) -> bool:
    """Remove an environment's block; True if it had one."""
    path = envdsl_dir() / "hosts" / f"{env_id}.conf"
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def host_aliases() -> dict[str, str]:
    """``alias -> env id`` of every block written, to keep a short alias unique."""
    out: dict[str, str] = {}
    for path in sorted((envdsl_dir() / "hosts").glob("*.conf")):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("Host "):
                for alias in line.split()[1:]:
                    out.setdefault(alias, path.stem)
    return out


def ensure_user_include() -> IncludeOutcome:
    """Add the ``Include`` line to ``~/.ssh/config`` once (see :mod:`dsl.ssh._include`).

    Raises:
        UsageError: the file or directory cannot be read or written.
    """
    config = ssh_home() / "config"
    try:
        from dsl.ssh._known_hosts import locked

        ssh_home().mkdir(mode=0o700, exist_ok=True)
        envdsl_dir().mkdir(mode=0o700, exist_ok=True)
        with locked(envdsl_dir()):
            return ensure_include(config, include_line(), same_as=_same_include())
    except OSError as exc:
        raise UsageError(f"cannot update {config}: {exc.strerror or exc}",
                         hint=f"add `{include_line()}` before its first Host line yourself, or pass --no-ssh-config") from exc
