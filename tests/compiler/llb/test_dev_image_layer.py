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
from compiler.llb._dev import render_entrypoint, render_login
from dsl.ir import BaseImage, BuildGraph, Environment, Owner, PipPackages
from tests.compiler.llb._decode import decode
from tests.compiler.llb._envs import dev_workspace

DEV_FILES = ("/usr/local/bin/dsl-entrypoint", "/usr/local/bin/dsl-login",
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


@pytest.mark.parametrize(("shell", "path"), [
    ("bash", "/usr/local/bin/dsl-entrypoint"), ("bash", "/usr/local/bin/dsl-login"),
    ("sh", "/etc/profile.d/dsl-environment.sh"),  # read by any login shell: POSIX only
])
def test_dev_scripts_parse(shell: str, path: str, tmp_path: Path) -> None:
    script = tmp_path / "script"
    script.write_bytes(_files(frozenset())[path][0])
    result = subprocess.run([shell, "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_sshd_sessions_go_through_the_login_script() -> None:
    entry = render_entrypoint(dev_workspace())
    assert '-o "ForceCommand=/usr/local/bin/dsl-login $(printf \'%q\' "$state")"' in entry
    # stop signals are handled by the script itself, not left to docker's kill timeout
    assert "trap 'shutdown TERM' TERM" in entry
    login = render_login()
    assert 'exec "$shell" -c "$command"' in login and "/usr/lib/openssh/sftp-server" in login


def test_session_environment_file_is_posix_quoted(tmp_path: Path) -> None:
    """The entrypoint's writer and a POSIX sh reader agree on awkward values."""
    entry = render_entrypoint(dev_workspace())
    start = entry.index("(\n  umask 077\n  for name in $(compgen -e)")
    writer = entry[start:entry.index('mv -f "$state/environment.tmp"', start)]
    value = "it's \"quoted\" $HOME `x` \\ \n second line"
    env = {"PATH": "/usr/bin:/bin", "AWKWARD": value, "DSL_AUTHORIZED_KEYS": "ssh-ed25519 AAAA"}
    subprocess.run(["bash", "-c", f'state={tmp_path}\n{writer}'], env=env, check=True)
    out = subprocess.run(["sh", "-c", f'. {tmp_path}/environment.tmp && printf %s "$AWKWARD"'],
                         env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, check=True).stdout
    assert out == value
    assert "DSL_AUTHORIZED_KEYS" not in (tmp_path / "environment.tmp").read_text()


def _step_path(**kwargs) -> set[str]:
    dec = decode(compile_environment(dev_workspace(), **kwargs).definition)
    return {e.split("=", 1)[1] for _, op in dec.execs() for e in op.exec.meta.env if e.startswith("PATH=")}


def test_build_steps_use_the_base_image_path_when_known() -> None:
    (default,) = _step_path()
    assert default.endswith(":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    (based,) = _step_path(base_path="/opt/base-tool/bin:/usr/bin:/bin")
    assert based.endswith(":/opt/base-tool/bin:/usr/bin:/bin") and "/usr/sbin" not in based
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


def test_root_dev_user_needs_no_user_step_and_no_chown() -> None:
    """envd's root mode (owner 0:0): the home is a FileOp and the venv stays root's."""
    env = Environment("x", BuildGraph(base=BaseImage("debian:bookworm", dev=True), owner=Owner(0, 0),
                                      steps=(PipPackages(("six",)),)))
    dec = decode(compile_environment(env).definition)
    names = [dec.name(d) for d in dec.digests]
    assert names.index("dev: user root, home /home/envd") < names.index("install.python_packages six")
    assert [dec.name(d) for d, _ in dec.execs()] == ["dev: install OpenSSH server and basic tools",
                                                      "install.python_packages six"]
    assert not any("chown" in a for _, op in dec.execs() for a in op.exec.meta.args)
    (home,) = [a.mkdir for d in dec.digests if dec.ops[d].WhichOneof("op") == "file"
               for a in dec.ops[d].file.actions if a.HasField("mkdir") and a.mkdir.path == "/home/envd"]
    assert home.mode == 0o755 and home.makeParents


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
