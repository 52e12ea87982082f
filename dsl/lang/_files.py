"""The files an evaluation may read: build files on disk, and hermetic ``load()`` paths.

A build file describes the same environment on every machine, so what it loads must travel
with it: ``load()`` reads only files inside the build file's directory tree (for a file of an
``include()``d repository: inside that repository's clone). An absolute path, a ``..`` that
leaves the tree, or a symbolic link anywhere in the path that resolves outside it is refused
before anything is read, so no host file (``/etc/passwd``, ``~/.ssh/...``) can be evaluated
and have its content echoed back in an error message.

Reading is careful too: only regular files are read (a FIFO would block, a device never end),
and every operating-system failure becomes one :class:`Unreadable` reason a user can act on.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable

from dsl.errors import BuildFileError
from dsl.lang._limits import MAX_FILE_BYTES


class Unreadable(Exception):
    """A file exists but cannot be read as a build file: ``reason`` says why, ``hint`` what to do."""

    def __init__(self, reason: str, hint: str, *, size: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.hint = hint
        self.size = size  # set when the file is larger than MAX_FILE_BYTES


_LOOP_HINT = "a symbolic link on the path points, directly or through others, back at itself; fix or remove it"
_REGULAR_HINT = "build files and the files they load are regular text files; copy the content into one"
_REASONS = {
    errno.ELOOP: ("it is a symbolic link loop", _LOOP_HINT),
    errno.ENAMETOOLONG: ("its name is too long", "use a shorter path"),
    errno.EACCES: ("permission denied", "make the file readable by the user running dsl"),
    errno.EPERM: ("permission denied", "make the file readable by the user running dsl"),
    errno.EISDIR: ("it is a directory", "name a file, not a directory"),
}


def os_reason(exc: OSError) -> tuple[str, str]:
    """A short, path-free reason for an ``OSError`` and its remedy (the message names the path)."""
    known = _REASONS.get(exc.errno or 0)
    if known:
        return known
    return (exc.strerror or type(exc).__name__).lower(), "check the file and the disk it is on"


def _kind(mode: int) -> Unreadable:
    if stat.S_ISDIR(mode):
        return Unreadable(*_REASONS[errno.EISDIR])
    if stat.S_ISFIFO(mode):
        return Unreadable("it is a named pipe (FIFO), not a regular file", _REGULAR_HINT)
    if stat.S_ISSOCK(mode):
        return Unreadable("it is a socket, not a regular file", _REGULAR_HINT)
    return Unreadable("it is a device, not a regular file", _REGULAR_HINT)


def read_file(path: str) -> bytes | None:
    """The bytes of the regular file ``path``, or ``None`` when nothing is there.

    The file is opened non-blocking and checked with ``fstat`` before reading, so a FIFO or
    a device is refused instead of hanging or filling memory.

    Raises:
        Unreadable: something is there but it is not a readable regular file of a sane size.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except (FileNotFoundError, NotADirectoryError) as exc:
        if os.path.islink(path):
            raise Unreadable("it is a symbolic link to a missing file",
                             "point the link at an existing file, or remove it") from exc
        return None
    except ValueError as exc:  # a NUL byte in the path
        raise Unreadable("its name contains a NUL byte", "remove the NUL byte from the path") from exc
    except OSError as exc:
        raise Unreadable(*os_reason(exc)) from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _kind(info.st_mode)
        if info.st_size > MAX_FILE_BYTES:
            raise Unreadable("too large", "", size=info.st_size)
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as handle:
            return handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:  # e.g. EIO, or EISDIR where a directory can be opened
        raise Unreadable(*os_reason(exc)) from exc
    finally:
        os.close(fd)


def _shown(module_id: str) -> str:
    """``module_id`` quoted for a message, cut short: an error line stays one readable line."""
    text = repr(module_id)
    return text if len(text) <= 80 else text[:60] + "..." + text[-12:]


def is_within(path: str, root: str) -> bool:
    """Whether the normalised absolute ``path`` is ``root`` or lies below it."""
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


class LoadPaths:
    """Where ``load()`` may look, for the files of one directory tree.

    Args:
        root: the tree's absolute directory (the build file's directory, or a clone).
        name: how messages name the tree (e.g. "the build file's directory").
        exists: whether a file is there (the file system, or an in-memory dict in tests).
        on_disk: check symbolic links against the real file system.
        cwd: envd resolves load() against the working directory: that fallback is kept only
            when the working directory lies inside the tree (``None``: no fallback).
    """

    def __init__(self, root: str, name: str, exists: Callable[[str], bool], *, on_disk: bool,
                 cwd: str | None = None) -> None:
        self.root = os.path.normpath(root)
        self.name = name
        self.exists = exists
        self.on_disk = on_disk
        self.cwd = cwd if cwd is not None and is_within(os.path.normpath(cwd), self.root) else None
        self.real_root = os.path.realpath(self.root) if on_disk else self.root

    def resolve(self, module_id: str, importer: str) -> str:
        """The absolute path ``load(module_id)`` in ``importer`` reads.

        Next to the importing file first, then (envd compatibility) in the working directory
        when that is inside the tree.

        Raises:
            BuildFileError: the path is absolute, leaves the tree, goes through a symbolic link
                out of it or a loop, or names no file (no span: the caller's load line is used).
        """
        what = f"load({_shown(module_id)})"
        hint = f"load() reads files inside {self.name}; name them relative to the loading file"
        if "\0" in module_id:
            raise BuildFileError(f"{what}: the path contains a NUL byte", hint=hint)
        if not module_id:
            raise BuildFileError(f"{what}: the path is empty", hint=hint)
        if os.path.isabs(module_id):
            raise BuildFileError(f"{what}: absolute paths are not allowed", hint=hint)
        beside = os.path.normpath(os.path.join(os.path.dirname(importer), module_id))
        if not is_within(beside, self.root):
            raise BuildFileError(f"{what}: the path leaves {self.name}", hint=hint)
        candidates = [beside]
        if self.cwd is not None:
            in_cwd = os.path.normpath(os.path.join(self.cwd, module_id))
            if in_cwd != beside and is_within(in_cwd, self.root):
                candidates.append(in_cwd)
        for candidate in candidates:
            self._check_links(candidate, what, hint)
            if self.exists(candidate):
                return candidate
        where = "next to the loading file" + (" and in the working directory" if len(candidates) > 1 else "")
        raise BuildFileError(f"load: cannot find {_shown(module_id)}", hint=f"looked {where}, inside {self.name}")

    def _check_links(self, candidate: str, what: str, hint: str) -> None:
        """Raise when a symbolic link on the way leads out of the tree, or loops."""
        if not self.on_disk:
            return
        try:
            real = os.path.realpath(candidate, strict=True)
        except FileNotFoundError:
            return  # missing, or a dangling link: exists() and the reader tell which
        except OSError as exc:
            reason, remedy = os_reason(exc)
            raise BuildFileError(f"{what}: cannot resolve the path: {reason}", hint=remedy) from exc
        if not is_within(real, self.real_root):
            raise BuildFileError(f"{what}: a symbolic link in the path leads outside {self.name}", hint=hint)
