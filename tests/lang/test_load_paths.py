"""Hermetic ``load()`` and careful reading: what a build file may read, and how failures read.

The bad-input suite (``tests/lang/bad/``) covers the refusals a repository can hold (absolute
paths, ``..``, symbolic links out of the tree, loops); these cases need a temporary tree: a
FIFO, the working-directory fallback, include()d repositories, and messages that must not
quote what they point at.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dsl.errors import BuildFileError
from dsl.lang import evaluate_file, evaluate_source

REPO = Path(__file__).resolve().parents[2]
BUILD = "def build():\n    helper()\n"
PASS = "def build():\n    pass\n"


def dsl_check(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "dsl", "check", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


def test_a_fifo_is_refused_instead_of_read(tmp_path: Path) -> None:
    """open() on a FIFO blocks until a writer comes: `dsl check` hung forever (build file or
    loaded file alike)."""
    os.mkfifo(tmp_path / "lib.star")
    (tmp_path / "build.envd").write_text('load("lib.star", "helper")\n' + BUILD)
    proc = dsl_check(cwd=tmp_path)
    assert (proc.returncode, proc.stderr.splitlines()) == (2, [
        "build.envd:1:1: cannot read lib.star: it is a named pipe (FIFO), not a regular file",
        "  hint: build files and the files they load are regular text files; copy the content into one",
    ])
    os.mkfifo(tmp_path / "pipe.envd")
    proc = dsl_check("-f", "pipe.envd", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.startswith("pipe.envd:1:1: cannot read pipe.envd: it is a named pipe")


def test_the_working_directory_is_a_fallback_only_inside_the_build_files_tree(tmp_path: Path) -> None:
    """envd resolves load() against the working directory; we keep that only where it cannot
    reach outside the tree (it used to read any file of the directory dsl was started in)."""
    project = tmp_path / "project"
    (project / "sub").mkdir(parents=True)
    (project / "build.envd").write_text('load("pkgs.star", "helper")\n' + BUILD)
    (project / "sub" / "pkgs.star").write_text("def helper():\n    install.python_packages(name=['numpy'])\n")
    env = evaluate_file(str(project), cwd=str(project / "sub")).environment
    assert env.build.steps[0].packages == ("numpy",)
    (project / "sub" / "pkgs.star").unlink()
    (tmp_path / "pkgs.star").write_text("def helper():\n    pass\n")  # beside the project, not in it
    with pytest.raises(BuildFileError) as info:
        evaluate_file(str(project), cwd=str(tmp_path))
    assert str(info.value) == "project/build.envd:1:1: load: cannot find 'pkgs.star'"
    assert info.value.hint == "looked next to the loading file, inside the build file's directory (project)"


def test_a_parse_error_never_quotes_the_file() -> None:
    """A file that is not Starlark (a token, a .env) is located, never echoed: starlark quotes
    the offending token ("unexpected identifier 'sk_live_51H8'")."""
    for text in ("token sk_live_51H8\n", 'KEY="a" "sk_live_51H8"\n', "x = $sk_live_51H8\n", 'x = ["a"] sk_live_51H8\n'):
        with pytest.raises(BuildFileError) as info:
            evaluate_source('load("creds.env", "x")\n' + PASS, files={"creds.env": text})
        assert info.value.span.file == "creds.env", text
        assert "sk_live" not in info.value.format() and "Parse error" in info.value.message, info.value.format()


def test_the_include_aggregators_module_names_cannot_be_forged() -> None:
    """``@included:URL|PATH`` is how include() loads a clone's files; from a build file it once
    reached past the clone (or raised a KeyError). It is just a path that does not exist now."""
    with pytest.raises(BuildFileError) as info:
        evaluate_source('load("@included:file:///x|../../etc/passwd", "x")\n' + PASS)
    assert info.value.message == "load: cannot find '@included:file:///x|../../etc/passwd'"


def _git_repo(path: Path, files: dict[str, str], links: dict[str, str] | None = None) -> str:
    path.mkdir(parents=True)
    for rel, text in files.items():
        (path / rel).write_text(text)
    for rel, target in (links or {}).items():
        (path / rel).symlink_to(target)
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "x"]):
        subprocess.run([*git, *args], cwd=path, check=True, capture_output=True)
    return f"file://{path}"


def test_an_included_repository_loads_within_itself_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "host.star").write_text("SECRET = 'from the host'\n")
    url = _git_repo(tmp_path / "lib", {
        "tools.envd": 'load("common.star", "PKGS")\ndef tools():\n    install.python_packages(name=PKGS)\n',
        "common.star": 'PKGS = ["rich"]\n',
    })
    src = f'lib = include("{url}")\ndef build():\n    lib.tools()\n'
    env = evaluate_source(src).environment
    assert env.build.steps[0].packages == ("rich",)

    url = _git_repo(tmp_path / "escaping", {
        "tools.envd": 'load("../../../../host.star", "SECRET")\ndef tools():\n    print(SECRET)\n',
    })
    with pytest.raises(BuildFileError) as info:
        evaluate_source(f'lib = include("{url}")\ndef build():\n    lib.tools()\n')
    assert "the path leaves the repository " + url in info.value.message


def test_an_included_repository_cannot_link_out_of_its_clone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A repository is someone else's content: a committed symlink must not make us evaluate
    (and quote in errors) a file of the machine that clones it."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "host.envd").write_text("def stolen():\n    pass\n")
    url = _git_repo(tmp_path / "lib", {"ok.envd": "def ok():\n    pass\n"}, links={"evil.envd": str(tmp_path / "host.envd")})
    with pytest.raises(BuildFileError) as info:
        evaluate_source(f'lib = include("{url}")\ndef build():\n    lib.ok()\n')
    assert "a symbolic link in the path leads outside the repository " + url in info.value.message


def test_a_huge_build_file_is_refused_without_being_read(tmp_path: Path) -> None:
    """The size limit is checked on the file's size: a sparse 4 GiB file must not be read into
    memory (it was: under a 1 GiB address-space limit, a MemoryError traceback)."""
    import resource

    def limit_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    with open(tmp_path / "build.envd", "wb") as handle:
        handle.truncate(4 << 30)
    proc = subprocess.run([sys.executable, "-m", "dsl", "check"], cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(REPO)),
                          preexec_fn=limit_memory, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines()[0] == (
        "build.envd:1:1: the file is 4,294,967,296 bytes; build files are limited to 1,048,576 bytes (1 MiB)")


def test_a_bug_behind_a_builtin_or_a_load_is_an_internal_error_not_the_users(monkeypatch: pytest.MonkeyPatch) -> None:
    """A handler that raises KeyError is our bug: it used to come back as a BuildFileError
    (exit 2, "your mistake"), which also hid it from a fuzzer. Now it is an InternalError
    (exit 70) at the user's call, with the bug as its cause."""
    from dsl.errors import InternalError
    from dsl.lang import _registry
    from dsl.lang._files import LoadPaths

    def broken(*args: object, **kwargs: object) -> None:
        raise KeyError("oops")

    monkeypatch.setitem(_registry.REGISTRY, "config.pip_index", broken)
    with pytest.raises(InternalError) as info:
        evaluate_source('def build():\n    config.pip_index(url="https://pypi.example/simple")\n')
    assert str(info.value) == "build.envd:2:5: internal error: KeyError: 'oops' (run again with --debug to see where)"
    assert isinstance(info.value.__cause__, KeyError) and info.value.exit_code == 70

    monkeypatch.setattr(LoadPaths, "resolve", broken)
    with pytest.raises(InternalError) as info:
        evaluate_source('load("lib.star", "x")\n' + PASS, files={"lib.star": "x = 1\n"})
    assert str(info.value).startswith("build.envd:1:1: internal error: KeyError: 'oops'")


def test_a_byte_order_mark_is_not_a_parse_error() -> None:
    """Editors on Windows start UTF-8 files with a BOM; starlark stopped at 1:1 ("invalid input")."""
    env = evaluate_source(b'\xef\xbb\xbfdef build():\r\n    install.python_packages(name=["rich"])\r\n').environment
    assert env.build.steps[0].packages == ("rich",) and str(env.build.steps[0].span) == "build.envd:2:5"
