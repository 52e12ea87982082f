"""envdsl's own known_hosts file: the pinned host key of every environment.

Entries are keyed by the environment's ``HostKeyAlias`` (``<id>.dsl``), never by
``127.0.0.1:<port>``: the port changes between runs, the key does not. The CLI writes an entry
when it makes (or reuses) an environment's host key, so the first connection is already
checked (``StrictHostKeyChecking yes``); nothing ever trusts a key on first use.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dsl.ssh._keys import ssh_dir


def known_hosts_file() -> Path:
    """``ssh_dir()/known_hosts``."""
    return ssh_dir() / "known_hosts"


@contextmanager
def locked(directory: Path) -> Iterator[None]:
    """An exclusive lock for read-modify-write of files in ``directory`` (parallel ``dsl up``)."""
    fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _hosts(line: str) -> set[str]:
    fields = line.split()
    return set(fields[0].split(",")) if fields and not line.startswith(("#", "@")) else set()


def pinned(alias: str) -> str | None:
    """The ``type base64`` pinned for ``alias``, or None."""
    try:
        lines = known_hosts_file().read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return None
    for line in lines:
        if alias in _hosts(line):
            return " ".join(line.split()[1:3])
    return None


def pin(alias: str, public_key: str) -> None:
    """Record ``public_key`` (``type base64``) as the only key of ``alias``."""
    _rewrite(alias, f"{alias} {' '.join(public_key.split()[:2])}")


def unpin(alias: str) -> None:
    """Forget ``alias``'s key (``dsl down --purge``, with the host key itself)."""
    _rewrite(alias, None)


def _rewrite(alias: str, entry: str | None) -> None:
    path = known_hosts_file()
    with locked(path.parent):
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            lines = []
        kept = [line for line in lines if alias not in _hosts(line)]
        if entry is not None:
            kept.append(entry)
        if kept == lines:
            return
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".known_hosts.")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write("".join(line + "\n" for line in kept))
        os.replace(tmp, path)
