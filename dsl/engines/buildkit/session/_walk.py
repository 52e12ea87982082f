"""The file list a FileSync sender announces: fsutil ``Stat`` records in Go's walk order.

The daemon diffs this list against its previous copy, so the order, the modes (Go
``os.FileMode`` bits, not ``st_mode``) and the times (nanoseconds) must be stable for an
unchanged tree: otherwise unchanged files would look changed and be sent again.

One deliberate difference from BuildKit's own Go client: a regular file's announced
modification time is ``max(mtime, ctime)``. The daemon re-requests only files whose size,
mode, owner or time changed, so content rewritten with the same size and its mtime set back
(``touch -d``, ``os.utime``, ``cp -p``, an editor that keeps times) would otherwise never reach
the image. The kernel moves ctime on every write and nobody can set it back, so the announced
time moves whenever the content may have. The price: anything else that moves ctime (chmod,
chown, rename, a new hard link, an xattr) re-sends that one file once, and a file whose mtime
lies in the past lands in the image with its ctime. The build cache is unaffected: BuildKit's
content checksums leave times out.
"""

from __future__ import annotations

import os
import posixpath
import stat as st
from dataclasses import dataclass, field

from dsl.engines.buildkit.protos import fsutil_types_pb2 as fs
from dsl.engines.buildkit.session._patterns import PatternSet
from dsl.errors import UsageError

# Go os.FileMode type and permission bits.
GO_DIR = 1 << 31
GO_SYMLINK = 1 << 27
GO_DEVICE = 1 << 26
GO_PIPE = 1 << 25
GO_SOCKET = 1 << 24
GO_SETUID = 1 << 23
GO_SETGID = 1 << 22
GO_CHARDEV = 1 << 21
GO_STICKY = 1 << 20
GO_TYPE = GO_DIR | GO_SYMLINK | GO_DEVICE | GO_PIPE | GO_SOCKET | GO_CHARDEV


def go_mode(mode: int) -> int:
    """Convert a POSIX ``st_mode`` to Go's ``os.FileMode`` bits.

    Args:
        mode: ``os.lstat(...).st_mode``.

    Returns:
        The permission bits plus Go's type and special bits.
    """
    out = mode & 0o777
    if mode & st.S_ISUID:
        out |= GO_SETUID
    if mode & st.S_ISGID:
        out |= GO_SETGID
    if mode & st.S_ISVTX:
        out |= GO_STICKY
    kind = st.S_IFMT(mode)
    out |= {
        st.S_IFDIR: GO_DIR,
        st.S_IFLNK: GO_SYMLINK,
        st.S_IFBLK: GO_DEVICE,
        st.S_IFCHR: GO_DEVICE | GO_CHARDEV,
        st.S_IFIFO: GO_PIPE,
        st.S_IFSOCK: GO_SOCKET,
    }.get(kind, 0)
    return out


def posix_perm(mode: int) -> int:
    """The ``chmod`` bits (permissions plus setuid/setgid/sticky) of a Go ``os.FileMode``."""
    out = mode & 0o777
    if mode & GO_SETUID:
        out |= st.S_ISUID
    if mode & GO_SETGID:
        out |= st.S_ISGID
    if mode & GO_STICKY:
        out |= st.S_ISVTX
    return out


@dataclass(slots=True)
class FileList:
    """What a sender announces: ``stats[i]`` has ID ``i``; ``sources[i]`` is its host path."""

    stats: list[fs.Stat] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    directories: list[str] = field(default_factory=list)  # every directory listed ("" = root)


@dataclass(frozen=True, slots=True)
class Filter:
    """Which paths of a directory are sent.

    Attributes:
        includes: inclusion lists; a path is sent only if every non-empty list matches it (or
            a directory above it), e.g. the session's own list and the daemon's
            ``include-patterns``.
        excludes: exclusion lists; a path is skipped if any list excludes it (e.g. the
            context's ignore file and the daemon's ``exclude-patterns``).
    """

    includes: tuple[PatternSet, ...] = ()
    excludes: tuple[PatternSet, ...] = ()


def scan(root: str, flt: Filter) -> FileList:
    """List ``root`` the way fsutil's sender does, applying ``flt``.

    Entries are in Go ``filepath.Walk`` order: names sorted bytewise within a directory, a
    directory before its contents, the root itself omitted. A directory that is not itself
    selected is still listed (just before its first selected descendant) when something inside
    it is selected, so the daemon can recreate the tree.

    Args:
        root: the directory to send.
        flt: include/exclude patterns.

    Returns:
        The announced stats with their host paths.

    Raises:
        OSError: ``root`` cannot be listed.
        UsageError: a name to send is not valid UTF-8 (the wire format's strings must be).
    """
    out = FileList()
    includes = tuple(p for p in flt.includes if p)
    excludes = tuple(p for p in flt.excludes if p)
    _scan_dir(root, "", includes, excludes, out, [], {}, included=not includes)
    return out


def _scan_dir(
    abs_dir: str,
    rel_dir: str,
    includes: tuple[PatternSet, ...],
    excludes: tuple[PatternSet, ...],
    out: FileList,
    pending: list[tuple[fs.Stat, str]],
    inodes: dict[tuple[int, int], str],
    *,
    included: bool,
) -> None:
    with os.scandir(abs_dir) as it:
        entries = sorted(it, key=lambda e: os.fsencode(e.name))
    out.directories.append(rel_dir)
    for entry in entries:
        rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
        info = entry.stat(follow_symlinks=False)
        is_dir = st.S_ISDIR(info.st_mode)
        selected = included or all(p.matches(rel) for p in includes)
        excluded = any(p.matches_inside(rel) for p in excludes)  # abs_dir is excluded by none
        if selected and not excluded:
            for parent_stat, parent_src in pending:
                _emit(out, parent_stat, parent_src)
            pending.clear()
            _emit(out, make_stat(rel, entry.path, info, inodes), entry.path)
            if is_dir:
                _scan_dir(entry.path, rel, includes, excludes, out, pending, inodes,
                          included=selected)
        elif is_dir and _may_enter(rel, selected, excluded, includes, excludes):
            mark = len(pending)
            pending.append((make_stat(rel, entry.path, info, inodes), entry.path))
            _scan_dir(entry.path, rel, includes, excludes, out, pending, inodes,
                      included=selected)
            del pending[mark:]  # nothing inside was selected: drop the placeholder


def _may_enter(
    rel: str,
    selected: bool,
    excluded: bool,
    includes: tuple[PatternSet, ...],
    excludes: tuple[PatternSet, ...],
) -> bool:
    if not selected and not all(
        p.matches(rel) or p.may_match_below(rel, negated=False) for p in includes
    ):
        return False
    # Every list that excludes the directory must have an exception that may re-include
    # something inside it; otherwise nothing below can be sent.
    return not excluded or all(
        p.may_match_below(rel, negated=True) for p in excludes if p.matches(rel)
    )


def _emit(out: FileList, stat: fs.Stat, source: str) -> None:
    out.stats.append(stat)
    out.sources.append(source)


def make_stat(rel: str, path: str, info: os.stat_result, inodes: dict[tuple[int, int], str]) -> fs.Stat:
    """The fsutil ``Stat`` of one entry.

    Args:
        rel: the path relative to the synced root (``/``-separated).
        path: the host path.
        info: its ``lstat`` result.
        inodes: (device, inode) → first path seen, for hardlink detection across the walk.

    Returns:
        The Stat: a regular file's ``modTime`` is ``max(mtime, ctime)``, so rewritten content
        is always re-sent; a second path of a hardlinked regular file carries ``linkname`` =
        the first path and size 0, so the daemon links instead of copying.
    """
    mode = info.st_mode
    stat = fs.Stat(
        path=_utf8(rel, rel),
        mode=go_mode(mode),
        uid=info.st_uid,
        gid=info.st_gid,
        modTime=info.st_mtime_ns,
    )
    if st.S_ISREG(mode):
        # ctime moves on every content write and cannot be set back (see the module docstring).
        stat.modTime = max(info.st_mtime_ns, info.st_ctime_ns)
    if st.S_ISLNK(mode):
        stat.linkname = _utf8(os.readlink(path), rel, "the target of the symbolic link")
        stat.size = info.st_size
    elif st.S_ISREG(mode):
        stat.size = info.st_size
        if info.st_nlink > 1:
            key = (info.st_dev, info.st_ino)
            first = inodes.setdefault(key, rel)
            if first != rel:
                stat.linkname = first
                stat.size = 0
    elif st.S_ISBLK(mode) or st.S_ISCHR(mode):
        stat.devmajor = os.major(info.st_rdev)
        stat.devminor = os.minor(info.st_rdev)
    _add_xattrs(stat, path)
    return stat


def _utf8(text: str, rel: str, what: str = "the name") -> str:
    """``text`` when it is valid UTF-8; file names are bytes, fsutil's protobuf strings are not."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        shown = os.fsencode(rel).decode("utf-8", "backslashreplace")
        raise UsageError(f"cannot send '{shown}' to the builder: {what} is not valid UTF-8",
                         hint="rename it, or exclude it in .dockerignore") from exc
    return text


def _add_xattrs(stat: fs.Stat, path: str) -> None:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return  # filesystem without xattrs
    for name in names:
        try:
            stat.xattrs[name] = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            continue


def follow_paths(root: str, paths: list[str], *, limit: int = 255) -> list[str]:
    """``paths`` plus the targets of the symlinks met along them (fsutil's ``followpaths``).

    Args:
        root: the synced directory; absolute link targets are taken relative to it.
        paths: relative paths whose symlinks the daemon wants resolved.
        limit: the most links followed per path (guards against cycles).

    Returns:
        The relative paths to include, in first-seen order, without duplicates.
    """
    out: dict[str, None] = {}
    for path in paths:
        todo = posixpath.normpath(path).lstrip("/")
        for _ in range(limit):
            if not todo or todo in out or todo.startswith("../") or todo == "..":
                break
            out[todo] = None
            target = _first_link(root, todo)
            if target is None:
                break
            todo = target
    return list(out)


def _first_link(root: str, rel: str) -> str | None:
    """The path ``rel`` resolves to after its first symlink component, or None if it has none."""
    parts = rel.split("/")
    for i in range(len(parts)):
        here = "/".join(parts[: i + 1])
        try:
            link = os.readlink(os.path.join(root, here))
        except OSError:
            continue  # not a link (or missing)
        base = "" if link.startswith("/") else posixpath.dirname(here)
        rest = parts[i + 1:]
        return posixpath.normpath(posixpath.join(base, link.lstrip("/"), *rest)).lstrip("/")
    return None
