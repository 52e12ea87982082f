"""Evaluate the build file a command names: the one place the CLI turns PATH/-f into an IR.

Hermetic by design: envd also executes ``~/.config/envd/config.envd`` before the build file;
we do not, because a per-user file would make the same build file produce different
environments (and content hashes) on different machines.
"""

from __future__ import annotations

import dataclasses
import os
import re
import stat
import sys
from typing import TYPE_CHECKING

from dsl import rules
from dsl.errors import UsageError
from dsl.ir import Environment, Owner

if TYPE_CHECKING:
    from dsl.lang import EvalResult


def read_option_file(path: str, option: str, *, limit: int = 1 << 20) -> str:
    """The UTF-8 text of the small regular file an option names (e.g. ``--ssh-public-key``).

    Opened non-blocking and checked before reading, so a FIFO or a device cannot hang the
    command or fill memory.

    Raises:
        UsageError: not a readable regular file, larger than ``limit`` bytes, or not UTF-8.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise UsageError(f"cannot read {option} {path}: {(exc.strerror or str(exc)).lower()}") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UsageError(f"cannot read {option} {path}: not a regular file", hint=f"{option} takes a regular file")
        if info.st_size > limit:
            raise UsageError(f"cannot read {option} {path}: {info.st_size:,} bytes is too large for it")
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as handle:
            raw = handle.read(limit + 1)
    except OSError as exc:
        raise UsageError(f"cannot read {option} {path}: {(exc.strerror or str(exc)).lower()}") from exc
    finally:
        os.close(fd)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"cannot read {option} {path}: it is not UTF-8 text (byte 0x{raw[exc.start]:02x} "
                         f"at offset {exc.start})", hint=f"{option} takes a text file") from exc


def parse_owner(text: str) -> Owner:
    """``UID[:GID]`` (GID defaults to UID), each 0..65535.

    Raises:
        UsageError: malformed or out of range.
    """
    m = re.fullmatch(r"(\d+)(?::(\d+))?", text.strip())
    if not m:
        raise UsageError(f"invalid --owner {text!r}: expected UID[:GID], e.g. 1000 or 1000:1000")
    uid = int(m.group(1))
    gid = int(m.group(2)) if m.group(2) is not None else uid
    try:
        return Owner(uid=rules.owner_id(uid), gid=rules.owner_id(gid))
    except rules.Invalid as exc:
        raise UsageError(f"invalid --owner {text!r}: {exc.message}") from exc


def load_environment(path: str = ".", from_: str | None = None, *, owner: str | None = None) -> Environment:
    """Evaluate ``path``'s build file (``from_`` = ``FILE:FUNC``) into an :class:`Environment`.

    Deprecation warnings and ``print()`` output go to stderr.

    Args:
        path: build context directory or build file.
        from_: ``FILE:FUNC`` selection (default ``build.envd:build``).
        owner: ``UID[:GID]`` overriding ``config.owner``.

    Raises:
        UsageError: bad path, ``--from`` or ``--owner``.
        BuildFileError: a mistake in the build file.
    """
    return load_evaluation(path, from_, owner=owner)[0]


def invoking_owner() -> Owner | None:
    """The invoking user's UID:GID, as envd gives its dev user, or None for root.

    Root is not taken: the dev user runs sshd as non-root and Kubernetes refuses a root
    ``runAsUser`` under ``runAsNonRoot``, so a build as root keeps the compilers' 1000:1000.
    """
    uid, gid = os.getuid(), os.getgid()
    if uid == 0 or uid > 65535 or gid > 65535:
        return None
    return Owner(uid=uid, gid=gid)


def load_evaluation(path: str = ".", from_: str | None = None, *, owner: str | None = None,
                    default_owner: Owner | None = None) -> tuple[Environment, EvalResult]:
    """:func:`load_environment`, plus the evaluation itself (e.g. the files it read).

    Args:
        default_owner: the dev user's UID:GID when neither ``owner`` nor ``config.owner``
            gives one (``dsl build``: the invoking user).

    Returns:
        ``(environment with the owner override applied, the evaluation's result)``.
    """
    from dsl.lang import evaluate_file

    override = parse_owner(owner) if owner else None
    result = evaluate_file(path, from_)
    for line in (*result.messages, *result.warnings):
        print(line, file=sys.stderr)
    env = result.environment
    if override is None and env.build.owner is None:
        override = default_owner
    if override is not None:
        env = dataclasses.replace(env, build=dataclasses.replace(env.build, owner=override))
    return env, result
