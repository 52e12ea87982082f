"""The one line envdsl adds to ``~/.ssh/config``: ``Include <envdsl's own file>``.

The user's file is edited once, and only by inserting that line: before the first ``Host`` or
``Match`` block (an ``Include`` inside a block would apply only to that block), above any
comment lines that sit directly on top of that block, with the file's own line ending (LF or
CRLF). Every other byte is kept. The write is atomic (a temporary file in the same directory,
renamed over the original, with the original's mode). A symlinked file (dotfile managers) or a
read-only one is left alone and reported, so the caller can tell the user the line to add.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

_BOM = b"\xef\xbb\xbf"
# "Keyword args" or "Keyword=args"; keywords are case-insensitive (ssh_config(5)).
_KEYWORD = re.compile(rb"^[ \t]*([A-Za-z]+)(?:[ \t]*=[ \t]*|[ \t]+|$)(.*)$", re.S)


def _keyword(line: bytes) -> tuple[bytes, bytes]:
    """``(lowercased keyword, arguments)`` of a config line; ``(b"", b"")`` for blanks/comments."""
    text = line.rstrip(b"\r\n")
    stripped = text.lstrip(b" \t")
    if not stripped or stripped.startswith(b"#"):
        return b"", b""
    m = _KEYWORD.match(text)
    return (m.group(1).lower(), m.group(2)) if m else (b"", b"")


def _is_comment(line: bytes) -> bool:
    return line.lstrip(b" \t").startswith(b"#")


def includes(data: bytes, targets: tuple[str, ...]) -> bool:
    """True when an ``Include`` line of ``data`` names one of ``targets`` (as written there)."""
    wanted = {t.encode() for t in targets}
    for line in data.splitlines():
        key, args = _keyword(line)
        if key == b"include" and wanted & {a.strip(b'"') for a in args.split()}:
            return True
    return False


def add_include(data: bytes, line: str, *, same_as: tuple[str, ...] = ()) -> bytes | None:
    """``data`` with ``line`` inserted once, or None when it (or an equivalent) is already there.

    Args:
        data: the current bytes of ``~/.ssh/config`` (may be empty).
        line: the full ``Include PATH`` line, without a line ending.
        same_as: other spellings of PATH that count as present (``~/.ssh/x``, absolute, ...).

    Returns:
        The new bytes, or None if nothing needs to change.
    """
    path = line.split(None, 1)[1]
    bom = _BOM if data.startswith(_BOM) else b""
    body = data[len(bom):]
    if includes(body, (path, *same_as)):
        return None
    lines = body.splitlines(keepends=True)
    newline = body.find(b"\n")
    eol = b"\r\n" if newline > 0 and body[newline - 1:newline] == b"\r" else b"\n"  # the file's own
    ours = line.encode() + eol
    first_block = next((i for i, x in enumerate(lines) if _keyword(x)[0] in (b"host", b"match")), None)
    if first_block is None:
        if lines and not lines[-1].endswith((b"\n", b"\r")):
            ours = eol + ours  # the last line had no ending: give it one, then ours
        return bom + body + ours
    at = first_block
    while at > 0 and _is_comment(lines[at - 1]):
        at -= 1  # keep the block's own comment next to it
    return bom + b"".join(lines[:at]) + ours + b"".join(lines[at:])


@dataclass(frozen=True, slots=True)
class IncludeOutcome:
    """What :func:`ensure_include` did: ``added``, ``created``, ``present``, ``symlink`` or ``read-only``."""

    status: str
    path: Path
    line: str
    detail: str = ""

    @property
    def changed(self) -> bool:
        return self.status in ("added", "created")


def ensure_include(config: Path, line: str, *, same_as: tuple[str, ...] = ()) -> IncludeOutcome:
    """Make sure the user's ssh config ``config`` includes envdsl's file, editing it at most once.

    Args:
        config: ``~/.ssh/config``.
        line: the ``Include PATH`` line.
        same_as: other spellings of PATH that count as already present.

    Returns:
        What happened; a symlinked or read-only file is never written (``status`` says why).

    Raises:
        OSError: the file or its directory cannot be read or written for another reason.
    """
    if config.is_symlink():
        target = os.readlink(config)
        data = config.read_bytes() if config.exists() else b""
        status = "present" if add_include(data, line, same_as=same_as) is None else "symlink"
        return IncludeOutcome(status, config, line, detail=target)
    try:
        info = config.stat()
    except FileNotFoundError:
        config.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        _write_atomic(config, line.encode() + b"\n", 0o600)
        return IncludeOutcome("created", config, line)
    data = config.read_bytes()
    new = add_include(data, line, same_as=same_as)
    if new is None:
        return IncludeOutcome("present", config, line)
    # The owner's write bit, not os.access: root may write anything, but a file its owner made
    # read-only says "don't touch".
    if not info.st_mode & stat.S_IWUSR or not os.access(config.parent, os.W_OK):
        return IncludeOutcome("read-only", config, line)
    _write_atomic(config, new, stat.S_IMODE(info.st_mode))
    return IncludeOutcome("added", config, line)


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), mode)
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
