"""Docker ignore/include pattern semantics (dsl.engines.buildkit.session._patterns)."""

from __future__ import annotations

import fnmatch

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from dsl.engines.buildkit.session import PatternSet, read_ignore_file
from dsl.engines.buildkit.session._patterns import escape_pattern, parse_pattern
from dsl.errors import UsageError


def excluded(patterns: list[str], path: str) -> bool:
    return PatternSet(patterns).matches(path)


@pytest.mark.parametrize(
    ("patterns", "path", "expected"),
    [
        (["*.log"], "a.log", True),
        (["*.log"], "sub/a.log", False),  # '*' does not cross '/'
        (["**/*.log"], "sub/deep/a.log", True),
        (["**/*.log"], "a.log", True),  # '**/' matches zero directories too
        (["a/**/b"], "a/b", True),
        (["a/**/b"], "a/x/y/b", True),
        (["a/**"], "a/x/y", True),
        (["build"], "build/out/x.o", True),  # a matched directory takes its contents
        (["build/"], "build/x", True),  # trailing slash: still the directory 'build'
        (["/build"], "build", True),  # leading slash: relative to the context root
        (["/build"], "src/build", False),
        (["./a//b/"], "a/b/c", True),  # cleaned like a path
        (["?.txt"], "a.txt", True),
        (["?.txt"], "ab.txt", False),
        (["[a-c].txt"], "b.txt", True),
        (["[^a-c].txt"], "b.txt", False),
        (["[^a-c].txt"], "d.txt", True),
        (["\\*.txt"], "*.txt", True),
        (["\\*.txt"], "a.txt", False),
        (["*", "!keep"], "keep", False),  # '!' re-includes
        (["*", "!keep"], "other", True),
        (["docs", "!docs/README.md"], "docs/README.md", False),
        (["docs", "!docs/README.md"], "docs/other.md", True),
        (["!docs/README.md", "docs"], "docs/README.md", True),  # the last match wins
        (["# comment", "", "  "], "# comment", False),
        ([".git"], ".git/config", True),
        (["*"], ".hidden", True),  # no dotfile special case
    ],
)
def test_docker_pattern_semantics(patterns: list[str], path: str, expected: bool) -> None:
    assert excluded(patterns, path) is expected


@pytest.mark.parametrize("bad", ["!", "[abc", "abc\\"])
def test_malformed_patterns_are_usage_errors(bad: str) -> None:
    with pytest.raises(UsageError, match="invalid pattern"):
        parse_pattern(bad)


def test_ignore_file_prefers_dslignore_and_names_the_bad_line(tmp_path) -> None:
    (tmp_path / ".dockerignore").write_text("*.log\n")
    assert read_ignore_file(str(tmp_path)) == ["*.log"]
    (tmp_path / ".dslignore").write_text("# ours\n*.tmp\n[oops\n")
    with pytest.raises(UsageError) as info:
        read_ignore_file(str(tmp_path))
    assert ".dslignore:3:" in info.value.message
    assert read_ignore_file(str(tmp_path / "missing")) == []


def test_an_ignore_file_that_is_not_utf8_is_a_located_usage_error(tmp_path) -> None:
    """``dsl build`` reads the context's ignore file when it opens the session: a stray Latin-1
    byte is the user's to fix, reported at its line and column (it was a UnicodeDecodeError)."""
    from dsl.engines.buildkit.session import Session

    (tmp_path / ".dockerignore").write_bytes(b"*.log\nnot\xe9s/\n")
    with pytest.raises(UsageError) as info:
        Session(context_dir=str(tmp_path))
    assert info.value.message == f"{tmp_path}/.dockerignore:2:4: the ignore file is not valid UTF-8 (byte 0xe9)"
    assert isinstance(info.value.__cause__, UnicodeDecodeError)  # kept for --debug


def test_an_ignore_file_that_is_a_directory_is_a_usage_error(tmp_path) -> None:
    (tmp_path / ".dslignore").mkdir()
    with pytest.raises(UsageError, match=r"\.dslignore: cannot read the ignore file \(Is a directory\)"):
        read_ignore_file(str(tmp_path))


def test_a_byte_order_mark_is_not_part_of_the_first_pattern(tmp_path) -> None:
    (tmp_path / ".dockerignore").write_bytes(b"\xef\xbb\xbf*.log\n")
    assert PatternSet(read_ignore_file(str(tmp_path))).matches("a.log")


# ---- properties -----------------------------------------------------------------------------

NAME = hs.text(alphabet="ab.", min_size=1, max_size=4).filter(lambda s: s not in (".", ".."))
PATH = hs.lists(NAME, min_size=1, max_size=4).map("/".join)
PART = hs.text(alphabet="ab.*?", min_size=1, max_size=4).filter(lambda s: s not in (".", ".."))
PATTERN = hs.lists(hs.one_of(PART, hs.just("**")), min_size=1, max_size=4).map("/".join)


@given(pattern=hs.text(alphabet="ab.*?", min_size=1, max_size=6), name=NAME)
def test_single_component_patterns_agree_with_fnmatch(pattern: str, name: str) -> None:
    """Without '/' or '**', a pattern on a single name behaves like a shell glob."""
    if "**" in pattern or pattern in (".", ".."):
        return
    assert excluded([pattern], name) == fnmatch.fnmatchcase(name, pattern)


@given(path=PATH, below=PATH)
def test_a_literal_path_matches_itself_and_everything_below(path: str, below: str) -> None:
    pattern = escape_pattern(path)
    assert excluded([pattern], path)
    assert excluded([pattern], f"{path}/{below}")
    assert not excluded([pattern], f"zz/{path}")  # anchored at the root
    assert not excluded([pattern], f"{path}x")  # whole names only


@given(pattern=PATTERN, path=PATH)
def test_a_negation_after_the_same_pattern_always_wins(pattern: str, path: str) -> None:
    assert not excluded([pattern, "!" + pattern], path)
    assert excluded(["!" + pattern, pattern], path) == excluded([pattern], path)


@given(pattern=PATTERN, path=PATH)
def test_double_star_prefix_matches_at_any_depth(pattern: str, path: str) -> None:
    if excluded([pattern], path):
        assert excluded(["**/" + pattern], "x/y/" + path)


@settings(max_examples=300)
@given(pattern=PATTERN, path=PATH)
def test_may_match_below_never_prunes_a_directory_holding_a_match(pattern: str, path: str) -> None:
    """The walker skips a directory only when this says nothing inside can match: that must be
    sound for both polarities, or a re-included or included file would silently be lost."""
    parts = path.split("/")
    for positive, lines in ((True, [pattern]), (False, ["*", "!" + pattern])):
        patterns = PatternSet(lines)
        if PatternSet([pattern]).matches(path):
            for depth in range(1, len(parts)):
                directory = "/".join(parts[:depth])
                assert patterns.may_match_below(directory, negated=not positive), (directory, lines)


@settings(max_examples=300)
@given(patterns=hs.lists(hs.one_of(PATTERN, PATTERN.map(lambda p: "!" + p)), min_size=1, max_size=4), path=PATH)
def test_matches_inside_agrees_with_matches_wherever_the_walker_asks(patterns: list[str], path: str) -> None:
    """The walker's one-regex shortcut: for any entry whose parent directories are not matched
    (where the walker calls it), it decides exactly as the full last-match-wins rule."""
    patterns_set = PatternSet(patterns)
    parts = path.split("/")
    if any(patterns_set.matches("/".join(parts[:depth])) for depth in range(1, len(parts))):
        return  # a matched parent: the walker never lists this entry through matches_inside
    assert patterns_set.matches_inside(path) == patterns_set.matches(path)
