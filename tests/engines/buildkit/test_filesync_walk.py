"""The file list FileSync announces: Go walk order, Go modes, links, and filtering."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from dsl.engines.buildkit.session import PatternSet
from dsl.engines.buildkit.session._walk import (
    GO_DIR,
    GO_PIPE,
    GO_SETUID,
    GO_SYMLINK,
    Filter,
    follow_paths,
    go_mode,
    posix_perm,
    scan,
)
from dsl.errors import UsageError


def tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def paths(root: Path, includes=(), excludes=()) -> list[str]:
    flt = Filter(includes=tuple(PatternSet(i) for i in includes),
                 excludes=tuple(PatternSet(e) for e in excludes))
    return [s.path for s in scan(str(root), flt).stats]


def test_order_is_go_walk_order_with_bytewise_names(tmp_path: Path) -> None:
    tree(tmp_path, {"b/z": "", "b/a": "", "B": "", "a.txt": "", "a/x": "", "\u00e9": "", "_": ""})
    # bytewise: 'B' (0x42) < '_' (0x5f) < 'a' < 'a.txt' < 'b' < 'é' (0xc3...); dirs before contents
    assert paths(tmp_path) == ["B", "_", "a", "a/x", "a.txt", "b", "b/a", "b/z", "\u00e9"]


def test_stats_carry_go_modes_times_sizes_and_links(tmp_path: Path) -> None:
    tree(tmp_path, {"d/run.sh": "#!/bin/sh\n", "data": "12345"})
    os.chmod(tmp_path / "d/run.sh", 0o4755)
    os.symlink("data", tmp_path / "ln")
    os.link(tmp_path / "data", tmp_path / "z-hard")
    os.mkfifo(tmp_path / "pipe")
    os.utime(tmp_path / "data", ns=(1, 1_700_000_000_123_456_789))
    listed = scan(str(tmp_path), Filter())
    stats = {s.path: s for s in listed.stats}
    assert stats["d"].mode == GO_DIR | 0o755 and stats["d"].size == 0
    assert stats["d/run.sh"].mode == GO_SETUID | 0o755
    assert posix_perm(stats["d/run.sh"].mode) == 0o4755
    assert stats["ln"].mode & GO_SYMLINK and stats["ln"].linkname == "data"
    assert stats["pipe"].mode & GO_PIPE
    # utime set the mtime back, so the ctime (now) is announced: see the next test
    assert stats["data"].size == 5 and stats["data"].modTime == os.lstat(tmp_path / "data").st_ctime_ns
    assert stats["d"].modTime == os.lstat(tmp_path / "d").st_mtime_ns  # directories: the mtime
    assert stats["data"].linkname == ""  # the first path of a hardlinked file is sent whole...
    assert stats["z-hard"].linkname == "data" and stats["z-hard"].size == 0  # ...the next links
    assert stats["data"].uid == os.getuid()
    assert listed.sources[[s.path for s in listed.stats].index("data")] == str(tmp_path / "data")


def test_rewritten_content_with_restored_mtime_is_announced_as_changed(tmp_path: Path) -> None:
    """The daemon re-requests a file only when its announced stat changed: same size plus a
    restored mtime must still announce a new time, or the image would keep the old bytes."""
    data = tmp_path / "a.txt"
    data.write_text("AAAA\n")
    plain = os.lstat(data)
    first = scan(str(tmp_path), Filter()).stats[0]
    # a plain write sets mtime and ctime together: exactly the mtime is announced
    assert first.modTime == max(plain.st_mtime_ns, plain.st_ctime_ns)
    if plain.st_ctime_ns == plain.st_mtime_ns:
        assert first.modTime == plain.st_mtime_ns
    time.sleep(0.02)  # beyond the coarse clock's tick, so the kernel's ctime moves
    data.write_text("BBBB\n")
    os.utime(data, ns=(plain.st_atime_ns, plain.st_mtime_ns))
    after = os.lstat(data)
    assert (after.st_size, after.st_mtime_ns) == (plain.st_size, plain.st_mtime_ns)
    second = scan(str(tmp_path), Filter()).stats[0]
    assert second.size == first.size and second.modTime > first.modTime
    assert scan(str(tmp_path), Filter()).stats[0].modTime == second.modTime  # stable while untouched


def test_go_mode_of_a_plain_file_is_just_the_permissions() -> None:
    assert go_mode(0o100644) == 0o644
    assert go_mode(0o040700) == GO_DIR | 0o700


def test_excluded_directories_are_pruned_unless_an_exception_reaches_inside(tmp_path: Path) -> None:
    tree(tmp_path, {"docs/a.md": "", "docs/keep/README.md": "", "docs/keep/x": "", "src/m.py": "",
                    "x.log": "", "src/y.log": ""})
    assert paths(tmp_path, excludes=[["docs", "*.log"]]) == ["src", "src/m.py", "src/y.log"]
    # the excluded directories on the way to a re-included file are recreated for it
    assert paths(tmp_path, excludes=[["docs", "!docs/keep/README.md", "**/*.log"]]) == [
        "docs", "docs/keep", "docs/keep/README.md", "src", "src/m.py"]


def test_include_patterns_send_only_matches_and_their_parents(tmp_path: Path) -> None:
    tree(tmp_path, {"req/requirements.txt": "", "req/other": "", "wheels/a.whl": "",
                    "wheels/sub/b.whl": "", "top.txt": ""})
    assert paths(tmp_path, includes=[["req/requirements.txt", "wheels"]]) == [
        "req", "req/requirements.txt", "wheels", "wheels/a.whl", "wheels/sub", "wheels/sub/b.whl"]
    # two include lists (the session's and the daemon's) must both allow a path
    assert paths(tmp_path, includes=[["wheels"], ["**/b.whl", "top.txt"]]) == [
        "wheels", "wheels/sub", "wheels/sub/b.whl"]
    # and an exclusion still wins over an inclusion
    assert paths(tmp_path, includes=[["wheels"]], excludes=[["wheels/sub"]]) == [
        "wheels", "wheels/a.whl"]


def test_followpaths_add_symlink_targets(tmp_path: Path) -> None:
    tree(tmp_path, {"real/Dockerfile": "FROM x\n", "other": ""})
    os.symlink("real", tmp_path / "alias")
    os.symlink("/real/Dockerfile", tmp_path / "abs")
    assert follow_paths(str(tmp_path), ["alias/Dockerfile", "abs", "other"]) == [
        "alias/Dockerfile", "real/Dockerfile", "abs", "other"]
    assert follow_paths(str(tmp_path), ["../escape"]) == []


def test_a_name_that_is_not_utf8_is_a_usage_error_unless_excluded(tmp_path: Path) -> None:
    """fsutil's wire strings must be UTF-8: such a name was a UnicodeEncodeError in the session's
    server thread (an "Exception iterating responses" from the builder); now it names the file."""
    tree(tmp_path, {"ok.txt": "x"})
    (tmp_path / os.fsdecode(b"caf\xe9.txt")).write_text("x")
    with pytest.raises(UsageError) as info:
        paths(tmp_path)
    assert info.value.message == "cannot send 'caf\\xe9.txt' to the builder: the name is not valid UTF-8"
    assert ".dockerignore" in (info.value.hint or "")
    assert paths(tmp_path, excludes=[["caf*"]]) == ["ok.txt"]
