"""A non-dev environment without ``config.entrypoint`` stays up: its container runs a small
keep-alive PID 1 instead of the base image's own command (which, for ``bash``, exits at once
and restarts for ever).

On the test dockerd the compiled body's container keeps running, ``exec`` works, orphans of
exec sessions are reaped, and ``docker stop`` ends it at once instead of after the kill
timeout — on ``debian:bookworm`` and on an image holding nothing but ``/bin/sh`` and libc.
"""

from __future__ import annotations

import io
import secrets
import tarfile
import time

import pytest

from compiler._runtime import KEEP_ALIVE_COMMAND
from compiler.docker import DockerOptions, compile_container, compose_file
from dsl.ir import BaseImage, BuildGraph, Environment

OPTS = DockerOptions(image="svc:1", build_dir="/src/svc", home="/home/ada")


def serving(entrypoint: tuple[str, ...] = (), dev: bool = False) -> Environment:
    return Environment(name="svc", build=BuildGraph(base=BaseImage(dev=dev), entrypoint=entrypoint),
                       source="svc/build.envd")


def test_a_non_dev_body_without_an_entrypoint_gets_the_keep_alive_pid_1():
    body = compile_container(serving(), OPTS)
    assert body["Entrypoint"] == list(KEEP_ALIVE_COMMAND)
    assert KEEP_ALIVE_COMMAND[:2] == ("/bin/sh", "-c")  # nothing but /bin/sh assumed
    assert "Cmd" not in body  # an Entrypoint in the body already drops the image's Cmd
    compose = compose_file("svc", body)["services"]["svc"]
    # Compose would interpolate $$ and $! itself: doubled, they reach the shell as written.
    assert compose["entrypoint"][2] == KEEP_ALIVE_COMMAND[2].replace("$", "$$")


@pytest.mark.parametrize("env", [serving(entrypoint=("python3", "-m", "http.server")), serving(dev=True)],
                         ids=["config.entrypoint", "dev"])
def test_an_entrypoint_of_the_build_file_or_the_dev_image_is_kept(env):
    body = compile_container(env, OPTS)
    assert "Entrypoint" not in body and "Cmd" not in body
    assert "entrypoint" not in compose_file("svc", body)["services"]["svc"]


# ---- on the test dockerd -------------------------------------------------------------------

def _run(api, image: str, entrypoint: list[str] | None = None) -> str:
    body = compile_container(serving(), DockerOptions(image=image, build_dir="/src/svc", home="/home/ada"))
    if entrypoint is not None:
        body["Entrypoint"] = entrypoint
    created = api.create_container_from_config(body, name=f"dsltest-keepalive-{secrets.token_hex(4)}")
    api.start(created["Id"])
    return created["Id"]


def _exec(api, cid: str, script: str) -> tuple[int, str]:
    run = api.exec_create(cid, ["/bin/sh", "-c", script])
    out = api.exec_start(run["Id"]).decode(errors="replace")
    return api.exec_inspect(run["Id"])["ExitCode"], out


# Every process as "pid (comm) state ppid", with shell builtins only (read, echo).
_PROCESSES = 'for p in /proc/[0-9]*; do read -r s < "$p/stat" && echo "$s"; done'
# An exec session that leaves a child behind: it is re-parented to PID 1 and exits shortly.
_ORPHAN = '/bin/sh -c "i=0; while [ \\$i -lt 20000 ]; do i=\\$((i+1)); done" & echo $!'


def _children_of_pid_1(api, cid: str) -> list[list[str]]:
    _, out = _exec(api, cid, _PROCESSES)
    return [row for row in (line.split() for line in out.splitlines()) if row[3] == "1"]


def _zombies(api, cid: str) -> list[str]:
    """The zombie children of PID 1 once an exec session's orphan has exited."""
    code, out = _exec(api, cid, _ORPHAN)
    assert code == 0
    orphan = out.strip()
    deadline = time.monotonic() + 10
    while any(row[0] == orphan and row[2] != "Z" for row in _children_of_pid_1(api, cid)):  # still counting
        assert time.monotonic() < deadline, "the orphan never finished"
        time.sleep(0.1)
    time.sleep(0.5)  # a reaping PID 1 collects it at once; give it a moment
    return [" ".join(row[:4]) for row in _children_of_pid_1(api, cid) if row[2] == "Z"]


def _cpu_ticks_of_pid_1(api, cid: str) -> int:
    """utime + stime + cutime + cstime of PID 1 (its reaped children count too)."""
    _, out = _exec(api, cid, 'read -r s < /proc/1/stat; echo "$s"')
    return sum(int(field) for field in out.split()[13:17])


def _check_keep_alive(api, cid: str) -> None:
    time.sleep(1.5)  # long enough for an image's own `bash` to have exited
    info = api.inspect_container(cid)
    assert info["State"]["Running"] and info["RestartCount"] == 0, info["State"]
    assert _exec(api, cid, "echo entered") == (0, "entered\n")
    assert _zombies(api, cid) == []
    before = _cpu_ticks_of_pid_1(api, cid)
    time.sleep(1)
    assert _cpu_ticks_of_pid_1(api, cid) - before < 10, "PID 1 is busy (a loop that does not block)"
    started = time.monotonic()
    api.stop(cid, timeout=10)
    assert time.monotonic() - started < 5, "PID 1 ignored SIGTERM: docker stop waited for the kill timeout"
    assert api.inspect_container(cid)["State"]["ExitCode"] == 0


@pytest.mark.engine
def test_the_keep_alive_container_stays_up_reaps_and_stops_at_once(docker_api, base_image):
    cid = _run(docker_api, base_image)
    try:
        _check_keep_alive(docker_api, cid)
    finally:
        docker_api.remove_container(cid, force=True)


@pytest.mark.engine
def test_the_zombie_check_sees_a_pid_1_that_does_not_reap(docker_api, base_image):
    """The check above can fail: with ``sleep`` as PID 1 the orphan stays a zombie."""
    cid = _run(docker_api, base_image, entrypoint=["sleep", "60"])
    try:
        assert _zombies(docker_api, cid)
    finally:
        docker_api.remove_container(cid, force=True)


# An image with /bin/sh (dash) and libc only: no sleep, no coreutils, no init.
_SH_ONLY = ("bin", "lib", "lib64", "usr/bin/sh", "usr/bin/dash", "usr/lib/x86_64-linux-gnu/libc.so.6",
            "usr/lib64/ld-linux-x86-64.so.2", "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")


@pytest.fixture
def sh_only_image(docker_api, base_image):
    source = docker_api.create_container(base_image, command=["true"])
    out = io.BytesIO()
    try:
        with tarfile.open(fileobj=io.BytesIO(b"".join(docker_api.export(source["Id"])))) as exported:
            members = {m.name.lstrip("./"): m for m in exported.getmembers()}
            if not all(name in members for name in _SH_ONLY):
                pytest.skip(f"{base_image} is not a merged-/usr amd64 Debian: cannot cut a /bin/sh-only image from it")
            with tarfile.open(fileobj=out, mode="w") as tar:
                for directory in ("usr", "usr/bin", "usr/lib", "usr/lib/x86_64-linux-gnu", "usr/lib64"):
                    tar.addfile(members[directory])
                for name in _SH_ONLY:
                    member = members[name]
                    tar.addfile(member, exported.extractfile(member) if member.isfile() else None)
    finally:
        docker_api.remove_container(source["Id"], force=True)
    tag = f"dsltest-sh-only:{secrets.token_hex(4)}"
    docker_api.import_image_from_data(out.getvalue(), repository=tag.split(":")[0], tag=tag.split(":")[1])
    yield tag
    docker_api.remove_image(tag, force=True)


@pytest.mark.engine
def test_the_keep_alive_needs_nothing_but_bin_sh(docker_api, sh_only_image):
    probe = _run(docker_api, sh_only_image, entrypoint=["/bin/sh", "-c", "command -v sleep || echo no sleep"])
    try:
        docker_api.wait(probe, timeout=30)
        assert set(docker_api.logs(probe).decode().split("\n")) <= {"no sleep", ""}  # it restarts
    finally:
        docker_api.remove_container(probe, force=True)
    cid = _run(docker_api, sh_only_image)
    try:
        _check_keep_alive(docker_api, cid)
    finally:
        docker_api.remove_container(cid, force=True)
