"""``include(git=URL)``: fetch a repository of ``.envd`` files into the cache.

Like envd, the repository is cloned into a cache directory or updated with ``git pull``;
unlike envd, the clone is shallow, git never prompts (``GIT_TERMINAL_PROMPT=0``) and every
git call has a deadline, so an unreachable repository is an error within seconds, not a hang.
When an update fails but a clone exists, the cached copy is used with a warning.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

GIT_TIMEOUT_S = 20.0
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_URL = re.compile(r"(https?|file|ssh|git)://[^\s'\"\\]+|git@[^\s'\"\\:]+:[^\s'\"\\]+")
_TOP_DEF = re.compile(r"^def\s+([A-Za-z_]\w*)\s*\(", re.M)
_TOP_ASSIGN = re.compile(r"^([A-Za-z_]\w*(?:\s*,\s*[A-Za-z_]\w*)*)\s*=(?!=)", re.M)


class IncludeFailed(Exception):
    """The repository could not be fetched; ``hint`` says what to check."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/envdsl/include`` (default ``~/.cache/envdsl/include``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "envdsl" / "include"


def clone_dir(url: str) -> Path:
    """The cache directory of ``url``: readable name plus a short hash (no collisions)."""
    readable = _SAFE.sub("_", url.split("://", 1)[-1]).strip("_")[:80]
    return cache_root() / f"{readable}-{hashlib.sha256(url.encode()).hexdigest()[:12]}"


def _git(args: list[str], cwd: Path | None, timeout: float) -> None:
    env = dict(os.environ, GIT_TERMINAL_PROMPT="0", GIT_ASKPASS="true", SSH_ASKPASS="true",
               GIT_SSH_COMMAND="ssh -o BatchMode=yes -o ConnectTimeout=5")
    cmd = ["git", "-c", "http.lowSpeedLimit=1000", "-c", "http.lowSpeedTime=10", *args]
    try:
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise IncludeFailed(f"git {args[0]} timed out after {timeout:.0f}s", "check your network or proxy settings") from exc
    except FileNotFoundError as exc:
        raise IncludeFailed("git is not installed", "install git to use include()") from exc
    if proc.returncode != 0:
        detail = (proc.stderr.strip().splitlines() or ["unknown error"])[-1]
        detail = detail.removeprefix("fatal: ")
        raise IncludeFailed(f"git {args[0]} failed: {detail}", "check the URL and that the repository is reachable")


def fetch(url: str, *, timeout: float = GIT_TIMEOUT_S) -> tuple[Path, str | None]:
    """Clone or update ``url``; returns the checkout and a warning (if a stale copy is used).

    Raises:
        IncludeFailed: the URL is malformed or the repository cannot be fetched.
    """
    if not _URL.fullmatch(url):
        raise IncludeFailed(f"not a git repository URL: {url!r}", "use e.g. include(\"https://github.com/tensorchord/envdlib\")")
    target = clone_dir(url)
    if (target / ".git").is_dir():
        try:
            _git(["pull", "--ff-only", "--depth", "1"], target, timeout)
        except IncludeFailed as exc:
            return target, f"include({url!r}): could not update the cached copy ({exc.message}); using it as is"
        return target, None
    partial = target.with_name(target.name + ".partial")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if partial.exists():  # left by an interrupted clone
            shutil.rmtree(partial)
        _git(["clone", "--depth", "1", "--quiet", "--", url, str(partial)], None, timeout)
        partial.rename(target)
    except OSError as exc:  # a read-only or full cache is the user's to fix, not a traceback
        raise IncludeFailed(f"cannot write the include cache {cache_root()}: {exc.strerror or exc}",
                            "set XDG_CACHE_HOME to a writable directory") from exc
    return target, None


def envd_files(root: Path) -> list[Path]:
    """Every ``*.envd`` file of a checkout, sorted, outside ``.git``."""
    return sorted(p for p in root.rglob("*.envd") if ".git" not in p.relative_to(root).parts and p.is_file())


def top_level_names(source: str) -> list[str]:
    """Public globals a file defines at top level (``def`` and assignments), in order."""
    names: list[str] = []
    for m in list(_TOP_DEF.finditer(source)) + list(_TOP_ASSIGN.finditer(source)):
        for name in (n.strip() for n in m.group(1).split(",")):
            if name and not name.startswith("_") and name not in names and name not in ("load",):
                names.append(name)
    return names
