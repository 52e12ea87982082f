"""build.envd.lock without an engine: its format, staleness and its diff, pip reports,
checksum files, and the errors of ``--locked`` (exit 2, file:line:col, no traceback)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dsl.errors import BuildFileError, EngineError, UsageError
from dsl.lock import (
    constraints_text,
    dumps,
    packages_of_report,
    read_lock,
    requirements_text,
    sha256_from_sums,
    staleness,
)

SHA_A, SHA_B, SHA_GO = "a" * 64, "b" * 64, "c" * 64
DIGEST = "sha256:" + "d" * 64
BUILD_FILE = '''\
def build():
    base(image="registry.example/team/base:1", dev=False)
    install.python_packages(name=["numpy"])
    install.go(version="1.22.5")
'''


def _dsl(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("BUILDKIT_HOST", "DSL_CONTEXT")}
    env.update(XDG_CONFIG_HOME=str(cwd / ".cfg"), XDG_CACHE_HOME=str(cwd / ".cache"),
               DOCKER_HOST=f"unix://{cwd}/no-docker.sock")
    return subprocess.run([sys.executable, "-m", "dsl", *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=60, check=False)


def write_lock_for(project: Path, **overrides) -> dict:
    """A lock for ``project``'s build file as `dsl lock` would write it (without an engine)."""
    from dsl.cli._load import load_evaluation
    from dsl.cli._locked import current_wanted

    cwd = os.getcwd()
    os.chdir(project)
    try:
        env, evaluation = load_evaluation(".", None)
        want = current_wanted(env, evaluation, platform="linux/amd64")
    finally:
        os.chdir(cwd)
    lock = {
        "downloads": {url: {"builtin": what, "checksum_url": sums, "sha256": SHA_GO}
                      for what, url, sums, _shape, _span in want.downloads},
        "envdsl": "0.1.0",
        "images": {want.image[0]: {"digest": DIGEST, "platform": "linux/amd64", "source": "registry",
                                   "reference": f"registry.example/team/base@{DIGEST}"}},
        "inputs": want.inputs, "lock_version": 1,
        "python": [{"args": args, "step": name, "packages": [
            {"name": "numpy", "version": "2.1.0", "url": "https://files.example/numpy-2.1.0.whl",
             "filename": "numpy-2.1.0.whl", "sha256": SHA_A}]} for name, args, _span in want.pip],
        "source_date_epoch": 1700000000,
    }
    lock.update(overrides)
    (project / "build.envd.lock").write_text(dumps(lock))
    return lock


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "build.envd").write_text(BUILD_FILE)
    return tmp_path


# ---- the file -------------------------------------------------------------------------------

def test_the_file_is_sorted_indented_and_ends_with_a_newline():
    text = dumps({"b": 1, "a": {"z": [1], "y": "é"}})
    assert text == '{\n  "a": {\n    "y": "é",\n    "z": [\n      1\n    ]\n  },\n  "b": 1\n}\n'


def test_no_lock_reads_as_none(tmp_path):
    assert read_lock(str(tmp_path / "build.envd.lock")) is None


def test_a_broken_lock_points_at_its_line_and_column(tmp_path):
    path = tmp_path / "build.envd.lock"
    path.write_text('{\n  "images": {,\n}\n')
    with pytest.raises(BuildFileError) as err:
        read_lock(str(path))
    assert err.value.headline().startswith("build.envd.lock:2:14: not valid JSON")


def test_a_lock_without_hashes_is_refused(project):
    lock = write_lock_for(project)
    lock["python"][0]["packages"][0]["sha256"] = "not-a-hash"
    (project / "build.envd.lock").write_text(json.dumps(lock))
    with pytest.raises(BuildFileError, match="python package .* has no name or sha256"):
        read_lock(str(project / "build.envd.lock"))


# ---- staleness ------------------------------------------------------------------------------

def _wanted(project: Path):
    from dsl.cli._load import load_evaluation
    from dsl.cli._locked import current_wanted

    cwd = os.getcwd()
    os.chdir(project)
    try:
        env, evaluation = load_evaluation(".", None)
        return current_wanted(env, evaluation, platform="linux/amd64")
    finally:
        os.chdir(cwd)


def test_a_fresh_lock_is_current(project):
    lock = write_lock_for(project)
    assert not staleness(lock, _wanted(project))


def test_a_new_pip_step_is_named_at_its_call_with_a_diff(project):
    lock = write_lock_for(project)
    (project / "build.envd").write_text(BUILD_FILE.replace('["numpy"]', '["numpy", "pandas"]'))
    stale = staleness(lock, _wanted(project))
    message, span = stale.problems[0]
    assert str(span) == "build.envd:3:5"
    assert message == "install.python_packages numpy pandas: build.envd.lock has no pins for this pip step"
    assert '-    "numpy"' in stale.diff and '+    "numpy pandas"' in stale.diff
    assert stale.diff.startswith("--- build.envd.lock\n+++ build.envd\n")


def test_another_base_image_is_named_at_base(project):
    lock = write_lock_for(project)
    (project / "build.envd").write_text(BUILD_FILE.replace("base:1", "base:2"))
    message, span = staleness(lock, _wanted(project)).problems[0]
    assert str(span) == "build.envd:2:5"
    assert message == "the base image registry.example/team/base:2 is not pinned in build.envd.lock"


def test_a_changed_loaded_file_makes_the_lock_stale(project):
    lock = write_lock_for(project)
    (project / "build.envd").write_text(BUILD_FILE + "# a comment\n")
    stale = staleness(lock, _wanted(project))
    assert [m for m, _s in stale.problems] == ["build.envd.lock was made from other inputs (build.envd changed)"]


def test_a_changed_requirements_file_makes_the_lock_stale(tmp_path):
    (tmp_path / "build.envd").write_text('def build():\n    base(image="registry.example/b:1", dev=False)\n'
                                         '    install.python_packages(requirements="requirements.txt")\n')
    (tmp_path / "requirements.txt").write_text("numpy\n")
    lock = write_lock_for(tmp_path)
    assert not staleness(lock, _wanted(tmp_path))
    (tmp_path / "requirements.txt").write_text("numpy\npandas\n")
    assert "requirements.txt changed" in staleness(lock, _wanted(tmp_path)).problems[0][0]


# ---- pip reports, checksum files ------------------------------------------------------------

REPORT = {"version": "1", "install": [
    {"metadata": {"name": "Dsl_B", "version": "1.0"}, "is_direct": False, "requested": False,
     "download_info": {"url": "http://idx/files/dsl_b-1.0-py3-none-any.whl",
                       "archive_info": {"hash": f"sha256={SHA_B}"}}},
    {"metadata": {"name": "dsl-a", "version": "2.0"}, "is_direct": False, "requested": True,
     "download_info": {"url": "http://idx/files/dsl_a-2.0-py3-none-any.whl",
                       "archive_info": {"hashes": {"sha256": SHA_A}}}},
]}


def test_a_pip_report_becomes_sorted_pins_and_a_hashed_requirements_file():
    pins = packages_of_report(REPORT, step="install.python_packages dsl-a", context_dir="/nowhere")
    assert [(p["name"], p["version"], p["sha256"]) for p in pins] == [("dsl-a", "2.0", SHA_A), ("dsl-b", "1.0", SHA_B)]
    assert pins[1]["filename"] == "dsl_b-1.0-py3-none-any.whl"
    assert requirements_text(pins) == f"dsl-a==2.0 --hash=sha256:{SHA_A}\ndsl-b==1.0 --hash=sha256:{SHA_B}\n"
    assert constraints_text([{"packages": pins}], release={"dsl-b"}) == "dsl-a==2.0\n"


def test_an_index_without_hashes_is_an_error_naming_the_package():
    report = {"install": [{"metadata": {"name": "nohash", "version": "1"},
                           "download_info": {"url": "http://idx/nohash-1.whl", "archive_info": {}}}]}
    with pytest.raises(UsageError, match="the package index gave no sha256 for nohash 1"):
        packages_of_report(report, step="install.python_packages nohash", context_dir="/nowhere")


def test_a_context_wheel_is_hashed_from_the_build_context(tmp_path):
    (tmp_path / "w.whl").write_bytes(b"wheel")
    report = {"install": [{"metadata": {"name": "w", "version": "1"}, "is_direct": True,
                           "download_info": {"url": "file:///run/dsl/context/w.whl", "archive_info": {}}}]}
    (pin,) = packages_of_report(report, step="s", context_dir=str(tmp_path))
    import hashlib

    assert pin["sha256"] == hashlib.sha256(b"wheel").hexdigest()
    assert requirements_text([pin]) == f"w @ file:///run/dsl/context/w.whl --hash=sha256:{pin['sha256']}\n"


def test_checksum_files_are_read_as_the_build_step_reads_them():
    assert sha256_from_sums(SHA_A.upper() + "\n", name="go.tgz", shape="single", url="u") == SHA_A
    listing = f"{SHA_A}  node.tar.xz.asc\n{SHA_B} *node.tar.xz\n"
    assert sha256_from_sums(listing, name="node.tar.xz", shape="listing", url="u") == SHA_B
    with pytest.raises(EngineError, match="lists node.tar.xz 2 times"):
        sha256_from_sums(listing + f"{SHA_A}  node.tar.xz\n", name="node.tar.xz", shape="listing", url="u")


# ---- --locked on the command line -----------------------------------------------------------

def test_build_locked_without_a_lock_exits_2(project):
    result = _dsl(project, "build", "--locked")
    assert result.returncode == 2
    assert "error: --locked: there is no build.envd.lock beside build.envd" in result.stderr
    assert "hint: write it with `dsl lock` and commit it" in result.stderr


def test_build_locked_with_a_stale_lock_exits_2_with_the_diff_and_the_fix(project):
    write_lock_for(project)
    (project / "build.envd").write_text(BUILD_FILE.replace('["numpy"]', '["numpy", "pandas"]'))
    result = _dsl(project, "build", "--locked")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert '+    "numpy pandas"' in result.stderr
    assert ("build.envd:3:5: --locked: install.python_packages numpy pandas: build.envd.lock has no "
            "pins for this pip step (and 1 more difference)") in result.stderr
    assert "hint: update the lock with `dsl lock`" in result.stderr


def test_lock_check_with_a_stale_lock_exits_1(project):
    write_lock_for(project)
    (project / "build.envd").write_text(BUILD_FILE + "# edited\n")
    result = _dsl(project, "lock", "--check")
    # no builder needed to see that the inputs changed
    assert result.returncode == 1, result.stderr
    assert "build.envd.lock is out of date; update it with `dsl lock`" in result.stderr


def test_lock_update_of_an_unknown_name_exits_2(project):
    write_lock_for(project)
    result = _dsl(project, "lock", "--update", "nosuch")
    assert result.returncode == 2, result.stderr
    assert "error: --update nosuch: not a pin of build.envd.lock" in result.stderr


def test_compile_llb_locked_uses_only_the_pins(project):
    write_lock_for(project)
    plain = json.loads(_dsl(project, "compile", "--target", "llb", "--format", "json").stdout)
    locked_run = _dsl(project, "compile", "--target", "llb", "--format", "json", "--locked")
    assert locked_run.returncode == 0, locked_run.stderr
    locked = json.loads(locked_run.stdout)
    text = json.dumps(locked)
    assert locked["base_image"] == f"registry.example/team/base@{DIGEST}"
    assert f"docker-image://registry.example/team/base@{DIGEST}" in text
    assert "--require-hashes --no-deps -r /run/dsl/lock/requirements.txt" in text
    assert f"sha256:{SHA_GO}" in text and "go1.22.5.linux-amd64.tar.gz.sha256" not in text
    assert "SOURCE_DATE_EPOCH=1700000000" in text
    assert "SOURCE_DATE_EPOCH" not in json.dumps(plain) and "go1.22.5.linux-amd64.tar.gz.sha256" in json.dumps(plain)
    # every locked exec step ends by dropping the time-stamped logs; unlocked steps are as before
    execs = [op for op in locked["ops"] if "exec" in json.dumps(op).lower() and "bash" in json.dumps(op)]
    assert execs and all("/var/log/dpkg.log" in json.dumps(op) for op in execs)
    assert "/var/log/dpkg.log" not in json.dumps(plain)


def test_compile_k8s_locked_needs_a_digest_and_records_the_lock(project):
    lock = write_lock_for(project)
    tagged = _dsl(project, "compile", "--target", "k8s", "--locked", "--image", "reg.example/ws:1")
    assert tagged.returncode == 2 and "--locked: the image reg.example/ws:1 is not pinned by digest" in tagged.stderr
    image = f"reg.example/ws@{DIGEST}"
    plain = _dsl(project, "compile", "--target", "k8s", "--image", image)
    first = _dsl(project, "compile", "--target", "k8s", "--locked", "--image", image)
    assert first.returncode == 0, first.stderr
    lock["images"]["registry.example/team/base:1"]["digest"] = "sha256:" + "e" * 64
    (project / "build.envd.lock").write_text(dumps(lock))
    moved = _dsl(project, "compile", "--target", "k8s", "--locked", "--image", image)

    def annotation(out: str) -> str:
        return next(line for line in out.splitlines() if "envdsl/content-hash" in line)

    assert annotation(first.stdout) != annotation(plain.stdout)
    assert annotation(moved.stdout) != annotation(first.stdout)  # a moved pin changes the hash
    assert first.stdout.replace(annotation(first.stdout), "") == plain.stdout.replace(annotation(plain.stdout), "")


def test_update_names_an_image_a_distribution_a_download_or_its_builtin(project):
    from dsl.cli.lock import _release_names

    lock = write_lock_for(project)
    want = _wanted(project)
    keys, python = _release_names(want, lock, {"registry.example/team/base:1", "NumPy", "install.go"})
    assert keys == {"registry.example/team/base:1", "install.go"} and python == {"numpy"}
    # a pip step whose request changed may move what it names, and nothing else
    (project / "build.envd").write_text(BUILD_FILE.replace('["numpy"]', '["numpy", "pandas>=2"]'))
    assert _release_names(_wanted(project), lock, set()) == (set(), {"numpy", "pandas"})
