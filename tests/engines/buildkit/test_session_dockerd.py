"""Sessions against the real dockerd BuildKit: FileSync, secrets, exports, health, shutdown.

Each build is raw LLB from ``compiler.llb`` solved through the gateway forwarder with a
session attached over ``POST /session`` (or ``Control.Session``); results come back through
the session's own FileSend (``local``/``tar`` exporters) or land in dockerd (``moby``).
"""

from __future__ import annotations

import os
import tarfile
import threading
import uuid
from pathlib import Path

import grpc
import pytest

from compiler.llb import CopyFrom, SecretMount, State, image, local, marshal, scratch
from dsl.engines.buildkit import Exporter, Plan, connect, solve
from dsl.engines.buildkit.session import DirectoryExport, FileExport, Session

pytestmark = pytest.mark.engine


def context_only(**local_opts) -> State:
    """The build context copied into an empty image."""
    src = local("context", shared_key_hint="context", **local_opts)
    return scratch().file(CopyFrom(src.output, "/", "/"), name="copy context")


def build(docker_host: str, state: State, session: Session, exporter: Exporter = Exporter("local"),
          *, control: bool = False) -> dict[str, str]:
    definition = marshal(state).definition
    with connect(f"docker://{docker_host}") as builder:
        with session:
            if control:
                session.attach_control(builder.channel)
            else:
                session.attach(builder)
            out = solve(builder, lambda caps, platform: Plan(definition), exporter=exporter,
                        session_id=session.id, timeout=300)
    return out.exporter_response


def project(root: Path) -> Path:
    root.mkdir()
    (root / "src/pkg").mkdir(parents=True)
    (root / "src/pkg/mod.py").write_text("print('hi')\n")
    (root / "src/run.sh").write_text("#!/bin/sh\necho run\n")
    (root / "src/run.sh").chmod(0o750)
    (root / "big.bin").write_bytes(os.urandom(100_000))  # several 32 KiB chunks
    (root / "README.md").write_text("readme\n")
    os.symlink("src/run.sh", root / "run")
    (root / "debug.log").write_text("secret-ish log\n")
    (root / "cache").mkdir()
    (root / "cache/blob").write_text("x")
    (root / ".dockerignore").write_text("*.log\ncache/\n")
    return root


def test_context_reaches_the_result_with_modes_links_and_ignores(docker_host, tmp_path):
    ctx = project(tmp_path / "ctx")
    out = tmp_path / "out"
    session = Session(context_dir=ctx, exporter_sink=DirectoryExport(out))
    build(docker_host, context_only(), session)
    got = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    assert got == [".dockerignore", "README.md", "big.bin", "run", "src", "src/pkg",
                   "src/pkg/mod.py", "src/run.sh"]
    assert (out / "big.bin").read_bytes() == (ctx / "big.bin").read_bytes()
    assert (out / "src/run.sh").stat().st_mode & 0o777 == 0o750
    assert os.readlink(out / "run") == "src/run.sh"
    assert (out / "src/pkg/mod.py").stat().st_mtime_ns == (ctx / "src/pkg/mod.py").stat().st_mtime_ns
    assert session.transfers["context"].bytes_sent > 100_000


def test_big_files_in_large_chunks_and_many_files_arrive_intact(docker_host, tmp_path):
    """DATA chunks larger than fsutil's 32 KiB are accepted by the daemon, byte for byte."""
    ctx = tmp_path / "ctx"
    expected = {}
    for i in range(400):
        rel = f"d{i % 5}/f{i:03d}"
        (ctx / rel).parent.mkdir(parents=True, exist_ok=True)
        (ctx / rel).write_bytes(os.urandom(i * 37))
        (ctx / rel).chmod((0o600, 0o644, 0o755)[i % 3])
        expected[rel] = ((ctx / rel).read_bytes(), (0o600, 0o644, 0o755)[i % 3])
    big = os.urandom(3 * 1024 * 1024 + 12345)
    (ctx / "big.bin").write_bytes(big)
    out = tmp_path / "out"
    session = Session(context_dir=ctx, exporter_sink=DirectoryExport(out))
    build(docker_host, context_only(), session)
    assert (out / "big.bin").read_bytes() == big
    got = {str(p.relative_to(out)): (p.read_bytes(), p.stat().st_mode & 0o777)
           for p in out.rglob("f*") if p.is_file()}
    assert got == expected


def test_a_changed_file_is_the_only_one_sent_again(docker_host, tmp_path):
    ctx = project(tmp_path / "ctx")
    first = Session(context_dir=ctx, exporter_sink=DirectoryExport(tmp_path / "out1"))
    build(docker_host, context_only(), first)
    assert len(first.transfers["context"].files_sent) == 5
    (ctx / "src/pkg/mod.py").write_text("print('changed')\n")
    second = Session(context_dir=ctx, exporter_sink=DirectoryExport(tmp_path / "out2"))
    assert second.shared_key == first.shared_key and second.id != first.id
    build(docker_host, context_only(), second)
    sent = second.transfers["context"]
    assert sent.files_sent == ["src/pkg/mod.py"]
    assert sent.bytes_sent == len("print('changed')\n")
    assert (tmp_path / "out2/src/pkg/mod.py").read_text() == "print('changed')\n"
    assert (tmp_path / "out2/big.bin").read_bytes() == (ctx / "big.bin").read_bytes()


def test_include_and_exclude_patterns_of_the_local_source(docker_host, tmp_path):
    ctx = project(tmp_path / "ctx")
    out = tmp_path / "out"
    state = context_only(include=["src", "*.md"], exclude=["src/pkg"])
    build(docker_host, state, Session(context_dir=ctx, exporter_sink=DirectoryExport(out)))
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == [
        "README.md", "src", "src/run.sh"]


def test_named_local_dirs_with_session_side_patterns(docker_host, tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "a-1.0-py3-none-any.whl").write_bytes(b"PK wheel")
    (wheels / "notes.txt").write_text("not a wheel")
    src = local("wheels", shared_key_hint="wheels")
    state = scratch().file(CopyFrom(src.output, "/", "/wheels/"))
    out = tmp_path / "out"
    session = Session(local_dirs={"wheels": (str(wheels), ["*.whl"], [])},
                      exporter_sink=DirectoryExport(out))
    build(docker_host, state, session)
    assert [p.name for p in (out / "wheels").iterdir()] == ["a-1.0-py3-none-any.whl"]


def test_tar_exporter_streams_into_one_file(docker_host, tmp_path):
    ctx = project(tmp_path / "ctx")
    dest = tmp_path / "result.tar"
    build(docker_host, context_only(), Session(context_dir=ctx, exporter_sink=FileExport(dest)),
          Exporter("tar"))
    with tarfile.open(dest) as tar:
        names = set(tar.getnames())
        assert {"README.md", "src/pkg/mod.py", "big.bin"} <= {n.lstrip("./") for n in names}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".result")] == []


def test_session_over_control_session_stream(docker_host, tmp_path):
    ctx = project(tmp_path / "ctx")
    out = tmp_path / "out"
    build(docker_host, context_only(), Session(context_dir=ctx, exporter_sink=DirectoryExport(out)),
          control=True)
    assert (out / "README.md").read_text() == "readme\n"


def test_secret_is_readable_in_run_and_absent_from_the_image(docker_host, docker_api, base_image, tmp_path):
    value = f"tok-{uuid.uuid4().hex}"
    (tmp_path / "token").write_text(value)
    tag = f"dsl-session-secret-{uuid.uuid4().hex[:8]}:test"
    check = f'test "$(cat /run/secrets/tok)" = "{value}" && echo ok > /secret-was-read'
    state = image(base_image).run(["sh", "-c", check],
                                  mounts=[SecretMount("/run/secrets/tok", "tok")])
    build(docker_host, state, Session(secrets={"tok": str(tmp_path / "token")}),
          Exporter("moby", {"name": tag}))
    script = (f"cat /secret-was-read; test ! -e /run/secrets/tok && "
              f"! grep -rqs --exclude-dir=proc --exclude-dir=sys {value} / && echo clean")
    container = docker_api.create_container(tag, command=["sh", "-c", script])
    try:
        docker_api.start(container)
        assert docker_api.wait(container, timeout=120)["StatusCode"] == 0
        assert docker_api.logs(container).decode().split() == ["ok", "clean"]
    finally:
        docker_api.remove_container(container, force=True)
        docker_api.remove_image(tag, force=True)


def test_unknown_secret_fails_the_build_with_its_name(docker_host, base_image, tmp_path):
    (tmp_path / "token").write_text("x")
    state = image(base_image).run(["cat", "/run/secrets/other"],
                                  mounts=[SecretMount("/run/secrets/other", "other")])
    with pytest.raises(Exception, match="other"):
        build(docker_host, state, Session(secrets={"tok": str(tmp_path / "token")}))


def test_health_checks_keep_the_session_through_a_slow_build(docker_host, base_image, tmp_path):
    """The daemon health-checks every second and drops a silent session; the export after a
    3-second step still reaches the client."""
    nonce = uuid.uuid4().hex
    slow = image(base_image).run(["sh", "-c", f"sleep 3; echo {nonce} > /done"])
    state = scratch().file(CopyFrom(slow.output, "/done", "/done"))
    out = tmp_path / "out"
    build(docker_host, state, Session(exporter_sink=DirectoryExport(out)))
    assert (out / "done").read_text() == f"{nonce}\n"


SESSION_THREADS = ("dsl-session", "bridge-", "filesend-")  # names of the threads a session runs


@pytest.mark.parametrize("control", [False, True], ids=["session-hijack", "control-session"])
def test_closing_leaves_no_thread_or_socket(docker_host, tmp_path, control):
    ctx = project(tmp_path / "ctx")
    definition = marshal(context_only()).definition
    with connect(f"docker://{docker_host}") as builder:
        # the builder's own connection (and its forwarder threads) must exist before we count
        grpc.channel_ready_future(builder.channel).result(timeout=30)
        before = {t.ident for t in threading.enumerate()}
        with Session(context_dir=ctx, exporter_sink=DirectoryExport(tmp_path / "out")) as session:
            session.attach_control(builder.channel) if control else session.attach(builder)
            solve(builder, lambda caps, platform: Plan(definition), exporter=Exporter("local"),
                  session_id=session.id, timeout=300)
            sockets = list(session._sockets)
            serving = [t.name for t in threading.enumerate() if t.name.startswith(SESSION_THREADS)]
            assert "dsl-session-h2-read" in serving and sockets
        leftover = [t.name for t in threading.enumerate()
                    if t.ident not in before and t.name.startswith(SESSION_THREADS) and t.is_alive()]
    assert leftover == []
    assert all(s.fileno() == -1 for s in sockets)
    assert (tmp_path / "out/README.md").exists()
