"""The dev runtime bundle on the real dockerd: ``base(dev=True)`` on images that have no package
manager, no libc of glibc's kind, or no shell at all (issue 12).

The bases are made here from Debian packages (the local debian:bookworm runs apt, a rootfs tar
is imported), tagged by the content of the script that makes them, so a rerun reuses them:

- ``debian``: the suite's debian:bookworm (glibc, apt, bash);
- ``busybox``: only Debian's busybox-static (a shell, no libc, no package manager);
- ``musl``: Debian's musl libc and loader with busybox-static as its shell (as Alpine has);
- ``static``: one static binary (Debian's tini-static), nothing else: no shell, no /etc.

For each: SSH with the run-time key works and another key is refused, sftp works, git and curl
run, the user is not root, and the image has nothing new outside the runtime's prefix but the
dev layer's own files (its user, entrypoint, configuration).
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import uuid
from pathlib import Path

import pytest

from tests.engines.buildkit.test_build_e2e import _build
from tests.engines.buildkit.test_dev_image import DevImage, _container, _ssh, _wait_for_sshd, keys  # noqa: F401

pytestmark = pytest.mark.engine

PREFIX = "opt/envdsl/runtime"
ROOTFS_SCRIPT = r"""
set -eu
apt-get update -qq -o Acquire::Languages=none
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends busybox-static musl tini >/dev/null
mkdir -p /out/busybox/bin /out/musl/bin /out/musl/lib /out/static/bin
cp /bin/busybox /out/busybox/bin/busybox
/bin/busybox --install -s /out/busybox/bin 2>/dev/null || true
for f in /out/busybox/bin/*; do [ -L "$f" ] && ln -sf busybox "$f"; done
cp -a /out/busybox/bin/. /out/musl/bin/
mkdir -p /out/musl/usr/lib/x86_64-linux-musl
cp -a /usr/lib/x86_64-linux-musl/. /out/musl/usr/lib/x86_64-linux-musl/
cp -a /lib/ld-musl-x86_64.so.1 /out/musl/lib/
mkdir -p /out/musl/etc && echo 'root:x:0:0:root:/root:/bin/sh' > /out/musl/etc/passwd
echo 'root:x:0:' > /out/musl/etc/group
cp /usr/bin/tini-static /out/static/bin/tini
for name in busybox musl static; do tar -C "/out/$name" -cf "/out/$name.tar" .; done
"""
ALLOWED_OUTSIDE = (  # the dev layer's own files (not the runtime's): account, entrypoint, config
    "etc", "etc/passwd", "etc/group", "etc/shadow", "etc/gshadow", "etc/shells", "etc/dsl",
    "etc/profile.d", "etc/profile.d/dsl-environment.sh", "home", "home/envd", "usr", "usr/local",
    "usr/local/bin", "usr/local/bin/dsl-entrypoint", "usr/local/bin/dsl-login", "usr/local/bin/dsl-activity", "var", "var/log",
    "var/log/dsl", "opt", "opt/envdsl",
    "run", "run/dsl",  # the dev user's SSH activity record (dsl gc); the build-time CA bundle's mount point
)
BUILD_FILE = 'def build():\n    base(image="{base}", dev=True)\n'


@pytest.fixture(scope="module")
def bases(docker_api, base_image) -> dict[str, str]:
    """The four base images (made once per content of ``ROOTFS_SCRIPT``)."""
    digest = hashlib.sha256(ROOTFS_SCRIPT.encode()).hexdigest()[:12]
    refs = {name: f"dsl-test-{name}:{digest}" for name in ("busybox", "musl", "static")}
    if not all(_exists(docker_api, ref) for ref in refs.values()):
        container = docker_api.create_container(base_image, entrypoint=["/bin/sh", "-c"], command=[ROOTFS_SCRIPT])
        try:
            docker_api.start(container)
            status = docker_api.wait(container, timeout=300)["StatusCode"]
            assert status == 0, docker_api.logs(container).decode()[-2000:]
            for name, ref in refs.items():
                stream, _ = docker_api.get_archive(container, f"/out/{name}.tar")
                with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as outer:
                    rootfs = outer.extractfile(f"{name}.tar").read()
                repository, tag = ref.split(":")
                docker_api.import_image_from_data(rootfs, repository=repository, tag=tag)
        finally:
            docker_api.remove_container(container, force=True)
    return {"debian": base_image, **refs}


def _exists(docker_api, ref: str) -> bool:
    import docker

    try:
        docker_api.inspect_image(ref)
    except docker.errors.ImageNotFound:
        return False
    return True


@pytest.fixture(scope="module", params=["debian", "busybox", "musl", "static"])
def dev_image(request, bases, docker_host, docker_api, ca_bundle, tmp_path_factory):
    """A dev image on each base; yields (base ref, image)."""
    base = bases[request.param]
    root = tmp_path_factory.mktemp(f"bundle-{request.param}")
    project = root / "proj"
    project.mkdir()
    (project / "build.envd").write_text(BUILD_FILE.format(base=base))
    tag = f"dsl-bundle-{request.param}:{uuid.uuid4().hex[:8]}"
    result = _build(project, docker_host, root, "-t", tag, "--progress", "plain", "--ca-bundle", ca_bundle)
    assert result.returncode == 0, result.stderr[-3000:]
    yield base, DevImage(tag, project)
    docker_api.remove_image(tag, force=True)


def test_ssh_sftp_git_and_curl_work_as_the_dev_user(docker_api, dev_image, keys, tmp_path):  # noqa: F811
    _, image = dev_image
    pub = keys["good"].with_suffix(".pub").read_text()
    with _container(docker_api, image, env={"DSL_AUTHORIZED_KEYS": pub}) as (cid, port):
        _wait_for_sshd(docker_api, cid, port)
        result = _ssh(keys["good"], port, "id -u; id -un; pwd; git --version; curl --version | head -n 1")
        assert result.returncode == 0, result.stderr + docker_api.logs(cid).decode()
        uid, user, cwd, git, curl = result.stdout.splitlines()
        assert (uid, user, cwd) == ("1000", "envd", "/home/envd/proj")
        assert git.startswith("git version ") and curl.startswith("curl ")
        refused = _ssh(keys["other"], port, "true")
        assert refused.returncode == 255 and "Permission denied" in refused.stderr
        sent = tmp_path / "sent.txt"
        sent.write_text("over sftp\n")
        batch = tmp_path / "batch"
        batch.write_text(f"put {sent} up.txt\nget up.txt {tmp_path / 'back.txt'}\n")
        sftp = subprocess.run(["sftp", "-b", str(batch), "-i", str(keys["good"]), "-P", str(port),
                               "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                               "-o", "BatchMode=yes", "envd@127.0.0.1"], capture_output=True, text=True, timeout=60)
        assert sftp.returncode == 0, sftp.stderr
        assert (tmp_path / "back.txt").read_text() == "over sftp\n"
        assert _ssh(keys["good"], port, "cat ~/proj/up.txt").stdout == "over sftp\n"


def test_ssh_over_an_exec_stream(docker_api, dev_image, keys):  # noqa: F811
    """``dsl-entrypoint --ssh-stdio`` is sshd on stdin/stdout: what a runner without a published
    port (an exec or port-forward stream) connects to."""
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker client to open the exec stream")
    _, image = dev_image
    pub = keys["good"].with_suffix(".pub").read_text()
    with _container(docker_api, image, env={"DSL_AUTHORIZED_KEYS": pub}) as (cid, port):
        _wait_for_sshd(docker_api, cid, port)
        proxy = f"{docker} exec -i {cid} /usr/local/bin/dsl-entrypoint --ssh-stdio"
        result = subprocess.run(["ssh", "-i", str(keys["good"]), "-o", f"ProxyCommand={proxy}",
                                 "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                                 "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "envd@dev", "id -un"],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0 and result.stdout == "envd\n", result.stderr


def test_nothing_of_the_runtime_lies_outside_its_prefix(docker_api, dev_image):
    base, image = dev_image
    added = _files(docker_api, image.tag) - _files(docker_api, base)
    outside = sorted(p for p in added if not (p == PREFIX or p.startswith(PREFIX + "/"))
                     and p not in ALLOWED_OUTSIDE and not p.startswith(("home/envd/", "etc/dsl/")))
    assert outside == []
    assert f"{PREFIX}/sbin/sshd" in added and f"{PREFIX}/bin/sh" in added


def test_the_image_names_its_runtime(docker_api, dev_image):
    from compiler.llb._bundle import bundle_digest
    from compiler.llb._ops import Platform

    _, image = dev_image
    labels = docker_api.inspect_image(image.tag)["Config"]["Labels"]
    assert labels["dev.envdsl.runtime.bundle"] == bundle_digest(Platform(), os.environ["DSL_RUNTIME_BASE"])


def _files(docker_api, ref: str) -> set[str]:
    """Every path in an image's filesystem (from a created, never started, container)."""
    container = docker_api.create_container(ref, command=["/nonexistent"], entrypoint=[])
    try:
        data = b"".join(docker_api.export(container))
    finally:
        docker_api.remove_container(container, force=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name.removeprefix("./").rstrip("/") for m in tar.getmembers()} - {"", "."}


# ---- bring your own image: dsl build --runtime-only, dsl up --image ----------------------------


def _dsl(cwd: Path, docker_host: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    from tests.engines.buildkit.test_build_e2e import _env

    return subprocess.run([sys.executable, "-m", "dsl", *args], cwd=cwd, capture_output=True, text=True,
                          env=_env(tmp_path, docker_host), timeout=600)


def test_runtime_only_derives_a_content_tagged_image_once(bases, docker_host, docker_api, ca_bundle, tmp_path):
    base = bases["busybox"]
    first = _dsl(tmp_path, docker_host, tmp_path, "build", "--runtime-only", base, "--progress", "plain",
                 "--ca-bundle", ca_bundle)
    assert first.returncode == 0, first.stderr[-3000:]
    (derived,) = [line.split(": ", 1)[1] for line in first.stdout.splitlines() if line.startswith("image: ")]
    repo, tag = base.split(":")
    assert derived.startswith(f"{repo}:{tag}-dsl-") and len(derived.rsplit("-", 1)[1]) == 12
    try:
        labels = docker_api.inspect_image(derived)["Config"]["Labels"]
        assert labels["dev.envdsl.dev"] == "true" and "dev.envdsl.runtime.bundle" in labels
        again = _dsl(tmp_path, docker_host, tmp_path, "build", "--runtime-only", base)
        assert again.returncode == 0 and f"image: {derived}" in again.stdout
        assert "exists: not rebuilt" in again.stderr and "steps:" not in again.stderr
        own = _dsl(tmp_path, docker_host, tmp_path, "build", "--runtime-only", derived)
        assert own.returncode == 0 and f"image: {derived}\n" == own.stdout
        assert "carries the dev runtime: used as it is" in own.stderr
    finally:
        docker_api.remove_image(derived, force=True)


def test_dsl_up_image_runs_an_image_built_elsewhere(bases, docker_host, docker_api, ca_bundle, tmp_path):
    """No build file, an image with no envdsl labels: `dsl up --image` adds the runtime and
    logs in with the user's key."""
    from tests.engines.docker.conftest import User

    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("BUILDKIT_HOST", "DSL_CONTEXT", "DSL_SSH_KEY")}
    env.update(HOME=str(home), DOCKER_HOST=docker_host, XDG_CONFIG_HOME=str(home / "cfg"),
               XDG_CACHE_HOME=str(home / "cache"), DSL_CA_BUNDLE=ca_bundle)
    user = User(home, env)
    work = tmp_path / "work"
    work.mkdir()
    up = user.dsl("up", "--image", bases["static"], "-d", "--no-ssh-config", cwd=work, timeout=600)
    assert up.returncode == 0, up.stderr[-3000:]
    derived = [line for line in up.stderr.splitlines() if "+ the dev runtime" in line]
    assert derived, up.stderr
    (env_id,) = [line.split(":", 1)[0] for line in up.stdout.splitlines() if ": created" in line]
    try:
        ssh = user.dsl("ssh", env_id, "--", "id -un; git --version", cwd=work, timeout=60)
        assert ssh.returncode == 0 and ssh.stdout.splitlines()[0] == "envd", ssh.stderr
    finally:
        user.dsl("down", "--purge", env_id, cwd=work, timeout=120)
