"""The dev layer's files (entrypoint, SSH login script, profile hook) and what build steps see.

The behaviour of these scripts in a running container is tested on the real dockerd in
tests/engines/buildkit/test_dev_image.py; here: both graph shapes write the same files, the
scripts parse, the base image's PATH reaches build steps, unsupported installs fail clearly.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from compiler.llb import compile_environment
from compiler.llb._bundle import STAGE_NAME
from compiler.llb._dev import render_entrypoint, render_login
from dsl.ir import BaseImage, BuildGraph, Environment, Owner, PipPackages
from tests.compiler.llb._decode import decode
from tests.compiler.llb._envs import dev_workspace

STAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # the runtime stage's own
DEV_FILES = ("/usr/local/bin/dsl-entrypoint", "/usr/local/bin/dsl-login", "/usr/local/bin/dsl-activity",
             "/etc/profile.d/dsl-environment.sh", "/etc/dsl/sshd/sshd_config")


def _files(caps: frozenset[str]) -> dict[str, tuple[bytes, int]]:
    dec = decode(compile_environment(dev_workspace(), caps=caps).definition)
    return {a.mkfile.path: (a.mkfile.data, a.mkfile.mode)
            for d in dec.digests if dec.ops[d].WhichOneof("op") == "file"
            for a in dec.ops[d].file.actions if a.HasField("mkfile")}


def test_both_graph_shapes_write_the_same_dev_files() -> None:
    sequential, parallel = _files(frozenset()), _files(frozenset({"mergeop", "diffop"}))
    assert set(DEV_FILES) <= set(sequential)
    assert {p: sequential[p] for p in DEV_FILES} == {p: parallel[p] for p in DEV_FILES}
    assert sequential["/usr/local/bin/dsl-login"][1] == 0o755
    assert sequential["/etc/profile.d/dsl-environment.sh"][1] == 0o644


@pytest.mark.parametrize(("shell", "path"), [  # POSIX only: the runtime's busybox sh runs them
    ("sh", "/usr/local/bin/dsl-entrypoint"), ("sh", "/usr/local/bin/dsl-login"), ("sh", "/usr/local/bin/dsl-activity"),
    ("sh", "/etc/profile.d/dsl-environment.sh"),  # read by any login shell
])
def test_dev_scripts_parse(shell: str, path: str, tmp_path: Path) -> None:
    script = tmp_path / "script"
    script.write_bytes(_files(frozenset())[path][0])
    result = subprocess.run([shell, "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_sshd_sessions_go_through_the_login_script() -> None:
    entry = render_entrypoint(dev_workspace())
    assert entry.startswith("#!/opt/envdsl/runtime/bin/sh\n")
    assert 'exec /opt/envdsl/runtime/sbin/sshd "$@" -f /etc/dsl/sshd/sshd_config' in entry
    assert '-o "ForceCommand=/usr/local/bin/dsl-login $(quote "$state")"' in entry
    # stop signals are handled by the script itself, not left to docker's kill timeout
    assert "trap 'shutdown TERM' TERM" in entry
    login = render_login()
    assert login.startswith("#!/opt/envdsl/runtime/bin/sh\n")
    assert 'exec "$shell" -c "$command"' in login and "exec /opt/envdsl/runtime/libexec/sftp-server" in login


def test_the_state_directory_is_quoted_for_the_force_command(tmp_path: Path) -> None:
    """sshd hands ForceCommand to the login shell's -c: a state path with quotes stays one word."""
    entry = render_entrypoint(dev_workspace())
    quote = next(line for line in entry.splitlines() if line.startswith("quote() "))
    quote = quote.replace('"$R/sed"', "sed")
    odd = str(tmp_path / "it's a $dir")
    out = subprocess.run(["sh", "-c", f'{quote}\nsh -c "printf %s $(quote "$1")"', "sh", odd],
                         capture_output=True, text=True, check=True).stdout
    assert out == odd


def test_session_environment_file_is_posix_quoted(tmp_path: Path) -> None:
    """The entrypoint's writer and a POSIX sh reader agree on awkward values."""
    entry = render_entrypoint(dev_workspace())
    start = entry.index("(\n  umask 077\n  unset DSL_AUTHORIZED_KEYS")
    writer = entry[start:entry.index('mv -f "$state/environment.tmp"', start)]
    value = "it's \"quoted\" $HOME `x` \\ \n second line"
    env = {"PATH": "/usr/bin:/bin", "AWKWARD": value, "DSL_AUTHORIZED_KEYS": "ssh-ed25519 AAAA"}
    # here the host's POSIX sh writes it; in the image the runtime's busybox sh does (the
    # SSH login tests on the real dockerd read it back through sshd)
    subprocess.run(["sh", "-c", f'state={tmp_path}\n{writer}'], env=env, check=True)
    out = subprocess.run(["sh", "-c", f'. {tmp_path}/environment.tmp && printf %s "$AWKWARD"'],
                         env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, check=True).stdout
    assert out == value
    assert "DSL_AUTHORIZED_KEYS" not in (tmp_path / "environment.tmp").read_text()


def _step_path(**kwargs) -> set[str]:
    dec = decode(compile_environment(dev_workspace(), **kwargs).definition)
    return {e.split("=", 1)[1] for _, op in dec.execs() for e in op.exec.meta.env if e.startswith("PATH=")}


def test_build_steps_use_the_base_image_path_when_known() -> None:
    default, based = (_step_path(base_path=p) - {STAGE_PATH} for p in (None, "/opt/base-tool/bin:/usr/bin:/bin"))
    ((default,), (based,)) = (default, based)
    # the runtime's tools come last: the image's own git, curl or sh win
    assert default.endswith(":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/opt/envdsl/runtime/bin")
    assert based.endswith(":/opt/base-tool/bin:/usr/bin:/bin:/opt/envdsl/runtime/bin") and "/usr/sbin" not in based
    assert based.split(":")[0] == default.split(":")[0]  # our directories still come first


def test_unpinned_extensions_and_codex_check_with_a_warning_and_compile_for_every_target(tmp_path: Path) -> None:
    """What envd files write (no versions): dsl check warns that the latest is fetched at build
    time, and every target compiles (the LLB looks the versions up when it is built)."""
    (tmp_path / "build.envd").write_text(
        'def build():\n    base(image="debian:bookworm", dev=True)\n'
        '    install.vscode_extensions(["ms-python.python"])\n    install.codex()\n')

    def dsl(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([sys.executable, "-m", "dsl", *args], cwd=tmp_path, capture_output=True)

    check = dsl("check")
    assert check.returncode == 0, check.stderr
    stderr = check.stderr.decode()
    assert "build.envd:3:5: warning: install.vscode_extensions: 'ms-python.python' has no version" in stderr
    assert "build.envd:4:5: warning: install.codex: no version" in stderr
    for target in ("llb", "image-config", "docker", "k8s"):
        out = dsl("compile", "--target", target)
        assert out.returncode == 0, (target, out.stderr.decode())
    # the steps themselves: tests/compiler/llb/test_llb_vscode.py, test_llb_codex.py


def test_root_dev_user_needs_no_chown() -> None:
    """envd's root mode (owner 0:0): root's entry is made sure of (an image without /etc/passwd
    needs one for sshd), the home is /home/envd, and the venv stays root's."""
    env = Environment("x", BuildGraph(base=BaseImage("debian:bookworm", dev=True), owner=Owner(0, 0),
                                      steps=(PipPackages(("six",)),)))
    dec = decode(compile_environment(env).definition)
    names = [dec.name(d) for d, _ in dec.execs()]
    assert names == [STAGE_NAME, "dev: user root (0:0), home /home/envd",
                     "install.python_packages: python3 and pip", "install.python_packages six"]
    assert not any("chown -R" in a for _, op in dec.execs() for a in op.exec.meta.args)


def test_named_volume_mount_points_belong_to_the_dev_user() -> None:
    """A named volume copies the owner of the image's mount-point directory on first use; without
    one it is root's, and the dev user cannot write to ``runtime.docker.mount(target=...)``."""
    from dsl.ir import DockerMount, DockerSpec, Mount, RuntimeSpec

    env = Environment("x", BuildGraph(base=BaseImage("debian:bookworm", dev=True), owner=Owner(1000, 1000)),
                      RuntimeSpec(mounts=(Mount("/home/envd/data", host_path="/srv/data"),),
                                  docker=DockerSpec(mounts=(DockerMount("/home/envd/cache"),
                                                            DockerMount("/home/envd/bound", source="/srv/b")))))
    dec = decode(compile_environment(env).definition)
    made = {a.mkdir.path: a.mkdir.owner.user.byID for d in dec.digests if dec.name(d) == "runtime.mount directories"
            for a in dec.ops[d].file.actions if a.HasField("mkdir")}
    assert made == {"/home/envd/data": 1000, "/home/envd/cache": 1000}  # a bind mount brings its own owner
