"""SSH key pairs envdsl makes with ``ssh-keygen``: the user's client key and one host key per
environment.

Both live under ``$XDG_CONFIG_HOME/envdsl/ssh`` (a 0700 directory). A key is generated into a
temporary directory and renamed into place, so two ``dsl up`` racing to create the same key
both end up using one of them, never half of each. Private keys never leave this directory:
the client key is handed to ``ssh`` by path; a host key is bind-mounted (read-only) into its
environment's container, which is the only place besides here that it exists.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from dsl.errors import UsageError

_KEY_TYPE = "ed25519"
USER_KEY_NAME = "id_ed25519"
HOST_KEY_NAME = "ssh_host_ed25519_key"
_PUBLIC_LINE = re.compile(r"^(?:ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(?:256|384|521)|sk-ssh-ed25519@openssh\.com|"
                          r"sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+=*(?: .*)?$")
_ENV_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A private key file and its public key line (``type base64 [comment]``)."""

    private: Path
    public: str

    @property
    def public_key(self) -> str:
        """``type base64`` without the comment, as known_hosts and authorized_keys compare it."""
        return " ".join(self.public.split()[:2])


def ssh_dir() -> Path:
    """envdsl's SSH directory: ``$XDG_CONFIG_HOME/envdsl/ssh`` (created 0700)."""
    from dsl.contexts import config_dir

    path = config_dir() / "ssh"
    _private_dir(path)
    return path


def _private_dir(path: Path) -> None:
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        if path.stat().st_mode & 0o077:
            path.chmod(0o700)
    except OSError as exc:
        raise UsageError(f"cannot create {path}: {exc.strerror or exc}",
                         hint="make the config directory writable (or set XDG_CONFIG_HOME)") from exc


def _keygen(directory: Path, name: str, comment: str) -> None:
    ssh_keygen = shutil.which("ssh-keygen")
    if ssh_keygen is None:
        raise UsageError("ssh-keygen is not installed; it makes the SSH keys of environments",
                         hint="install OpenSSH's client (e.g. apt-get install openssh-client)")
    proc = subprocess.run([ssh_keygen, "-q", "-t", _KEY_TYPE, "-N", "", "-C", comment, "-f", str(directory / name)],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
    if proc.returncode != 0:
        raise UsageError(f"ssh-keygen failed: {proc.stderr.strip().splitlines()[-1:] or proc.returncode}")


def _pair(directory: Path, name: str, comment: str) -> KeyPair:
    """The key pair ``directory/name`` (+ ``.pub``), generated on first use (race-free)."""
    private = directory / name
    if not private.is_file():
        _private_dir(directory.parent)
        scratch = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}-"))
        try:
            _keygen(scratch, name, comment)
            try:
                os.rename(scratch, directory)  # atomic; fails if another process got there first
            except OSError:
                if not private.is_file():
                    raise
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return KeyPair(private, _read_public(private.with_name(name + ".pub")))


def _read_public(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the public key {path}: {getattr(exc, 'strerror', None) or exc}",
                         hint="an SSH key is given as its private key file with FILE.pub beside it") from exc
    if not _PUBLIC_LINE.match(text) or "\n" in text:
        raise UsageError(f"{path} is not an OpenSSH public key",
                         hint="it should hold one line like 'ssh-ed25519 AAAA... comment'")
    return text


def user_key(explicit: str | None = None) -> KeyPair:
    """The client key ``dsl up``/``dsl ssh`` log in with.

    Args:
        explicit: the user's own private key file (``--ssh-key``, or a context setting); its
            public key must be beside it as ``FILE.pub``. None: envdsl's own ed25519 key,
            created on first use in ``ssh_dir()/key``.

    Raises:
        UsageError: the given file or its ``.pub`` is missing or not a key; ssh-keygen failed.
    """
    if explicit:
        private = Path(explicit).expanduser().absolute()
        if not private.is_file():
            raise UsageError(f"--ssh-key {explicit}: no such file", hint="give the private key file (FILE.pub beside it)")
        if private.suffix == ".pub":
            raise UsageError(f"--ssh-key {explicit} is a public key", hint="give the private key; FILE.pub must be beside it")
        return KeyPair(private, _read_public(private.with_name(private.name + ".pub")))
    return _pair(ssh_dir() / "key", USER_KEY_NAME, "envdsl")


def host_key_dir(env_id: str) -> Path:
    """Where environment ``env_id``'s host key lives (``ssh_dir()/hosts/<env_id>``)."""
    if not _ENV_ID.match(env_id):
        raise UsageError(f"invalid environment id {env_id!r}")
    return ssh_dir() / "hosts" / env_id


def host_key(env_id: str, *, reader: tuple[int, int] | None = None) -> KeyPair:
    """Environment ``env_id``'s SSH host key, generated on its first ``dsl up`` and kept after.

    Args:
        env_id: the environment's id (its container name).
        reader: uid and gid the container reads the bind-mounted file as. The directories
            above the file are 0700, so the host's other users never reach it; the file itself
            must be readable by the container's user: root hands it over (chown), the same user
            keeps 0600, another uid gets 0644 (still only reachable through the 0700 parents).

    Raises:
        UsageError: ssh-keygen failed or the directory cannot be written.
    """
    pair = _pair(host_key_dir(env_id), HOST_KEY_NAME, env_id)
    if reader is not None:
        _hand_over(pair.private, *reader)
    return pair


def _hand_over(path: Path, uid: int, gid: int) -> None:
    info = path.stat()
    if os.geteuid() == 0:
        if (info.st_uid, info.st_gid) != (uid, gid):
            os.chown(path, uid, gid)
        mode = 0o600
    else:
        mode = 0o600 if info.st_uid == uid else 0o644
    if info.st_mode & 0o777 != mode:
        path.chmod(mode)


def remove_host_key(env_id: str) -> bool:
    """Delete an environment's host key (``dsl down --purge``); True if there was one."""
    directory = host_key_dir(env_id)
    if not directory.exists():
        return False
    shutil.rmtree(directory)
    return True
