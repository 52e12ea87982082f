"""Connections to BuildKit: the dockerd upgrade, the byte bridge, builder addresses, caps."""

from __future__ import annotations

import socket
import threading

import pytest

from compiler.llb import Mkfile, marshal, merge, scratch
from dsl.contexts import Context, create_context, use_context
from dsl.engines.buildkit import Plan, connect, parse_builder_url, probe_caps, resolve_builder_url, solve
from dsl.engines.buildkit._hijack import bridge, open_upgraded
from dsl.errors import EngineError, EngineUnavailable, SolveFailed, UsageError

# ---- no engine needed -----------------------------------------------------------------------


def test_dead_docker_socket_is_one_line_naming_the_builder(tmp_path, monkeypatch):
    dead = f"unix://{tmp_path}/docker.sock"
    monkeypatch.setenv("DOCKER_HOST", dead)
    with pytest.raises(EngineUnavailable) as info:
        connect("docker")
    err = info.value
    assert dead in err.headline() and "\n" not in err.headline()
    assert "dockerd" in (err.hint or "")


def test_socket_that_refuses_is_unavailable(tmp_path, monkeypatch):
    path = tmp_path / "docker.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    listener.close()  # the file exists, nobody listens: ECONNREFUSED
    monkeypatch.setenv("DOCKER_HOST", f"unix://{path}")
    with pytest.raises(EngineUnavailable, match="refused"):
        connect()


def test_missing_buildkitd_socket(tmp_path):
    with pytest.raises(EngineUnavailable) as info:
        connect(f"unix://{tmp_path}/buildkitd.sock")
    assert "buildkitd" in (info.value.hint or "")


def test_builder_addresses():
    assert parse_builder_url("docker://unix:///x/d.sock").docker_host == "unix:///x/d.sock"
    assert parse_builder_url("unix:///run/buildkit/buildkitd.sock").target == "unix:/run/buildkit/buildkitd.sock"
    assert parse_builder_url("tcp://10.0.0.1:1234").target == "10.0.0.1:1234"
    container = parse_builder_url("docker-container://bk")
    assert container.target == "bk" and "docker run" in container.remedy
    for bad in ("ssh://host", "buildkitd", "unix://", "docker-container://a/b"):
        with pytest.raises(UsageError):
            parse_builder_url(bad)


def test_an_unsupported_docker_engine_address_is_a_usage_error(monkeypatch):
    """DOCKER_HOST is user input: a scheme we cannot dial is exit 2, found when parsing the
    builder address (docker, docker-container) and when dialling the engine directly (the
    image load after a standalone buildkitd's build); both were EngineErrors (exit 1)."""
    from dsl.engines.buildkit._hijack import connect_docker

    monkeypatch.setenv("DOCKER_HOST", "ssh://me@host")
    for url in ("docker", "docker-container://bk", "docker://fd://"):
        with pytest.raises(UsageError, match="unsupported Docker host address"):
            parse_builder_url(url)
    with pytest.raises(UsageError, match="unsupported Docker host address 'ssh://me@host'"):
        connect_docker("ssh://me@host", timeout=1)


def test_tls_flags_only_for_tcp(tmp_path):
    from dsl.engines.buildkit import TlsFiles

    with pytest.raises(UsageError, match="tcp://"):
        connect(f"unix://{tmp_path}/x.sock", tls=TlsFiles(ca="ca.pem"))


def test_resolution_order(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv("BUILDKIT_HOST", raising=False)
    monkeypatch.delenv("DSL_CONTEXT", raising=False)
    assert resolve_builder_url() == ("docker", "default")
    create_context(Context(name="remote", builder="tcp://bk:1234"))
    use_context("remote")
    assert resolve_builder_url() == ("tcp://bk:1234", "context remote")
    monkeypatch.setenv("BUILDKIT_HOST", "unix:///run/bk.sock")
    assert resolve_builder_url() == ("unix:///run/bk.sock", "BUILDKIT_HOST")
    assert resolve_builder_url("docker") == ("docker", "--builder")


def test_bridge_pumps_both_ways_and_closes_both():
    a_outer, a_inner = socket.socketpair()
    b_inner, b_outer = socket.socketpair()
    done = bridge(a_inner, b_inner)
    a_outer.sendall(b"ping")
    assert b_outer.recv(4) == b"ping"
    b_outer.sendall(b"pong")
    assert a_outer.recv(4) == b"pong"
    a_outer.close()  # one side ends ...
    done.join(5)
    assert b_outer.recv(1) == b""  # ... the other side sees the end too


def test_open_upgraded_reads_exactly_the_headers(tmp_path):
    """A fake daemon sends the 101 and HTTP/2 bytes in one write; none may be swallowed."""
    path = str(tmp_path / "d.sock")
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen(1)
    seen: list[bytes] = []

    def serve() -> None:
        conn, _ = server.accept()
        seen.append(conn.recv(4096))
        conn.sendall(b"HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\nH2-BYTES")
        conn.recv(1)
        conn.close()

    thread = threading.Thread(target=serve)
    thread.start()
    sock = open_upgraded(f"unix://{path}", "/session", [("X-Docker-Expose-Session-Uuid", "abc"),
                                                          ("X-Docker-Expose-Session-Grpc-Method", "/a"),
                                                          ("X-Docker-Expose-Session-Grpc-Method", "/b")],
                         timeout=5)
    assert sock.recv(8) == b"H2-BYTES"
    sock.close()
    thread.join(5)
    request = seen[0].decode()
    assert request.startswith("POST /session HTTP/1.1\r\n")
    assert "Upgrade: h2c" in request and request.count("X-Docker-Expose-Session-Grpc-Method") == 2


# ---- against the real dockerd ---------------------------------------------------------------


@pytest.mark.engine
def test_grpc_upgrade_on_dockerd_starts_http2(docker_host):
    sock = open_upgraded(docker_host, "/grpc", [], timeout=10)
    sock.settimeout(5)
    frame = sock.recv(9)  # the server's first HTTP/2 frame header
    sock.close()
    assert len(frame) == 9 and frame[3] == 0x04  # a SETTINGS frame: nothing was over-read


@pytest.mark.engine
def test_dockerd_refuses_unknown_upgrade_path(docker_host):
    with pytest.raises(EngineError, match="HTTP 404"):
        open_upgraded(docker_host, "/no-such-endpoint", [], timeout=10)


@pytest.mark.engine
def test_dockerd_caps_say_which_graph_shape_it_runs(docker_host):
    """Whatever the dockerd version: the caps it reports decide the shape, and it really runs
    that shape. A merge of two files solves exactly when ``parallel`` says so (dockerd 20.10's
    BuildKit v0.8 refuses it naming the cap); the sequential shape's ops solve everywhere."""
    merged = merge([scratch().file(Mkfile("/a", b"a")), scratch().file(Mkfile("/b", b"b"))])
    plain = scratch().file(Mkfile("/a", b"a")).file(Mkfile("/b", b"b"))
    with connect(f"docker://{docker_host}") as builder:
        caps = probe_caps(builder)
        assert "exec.mount.cache" in caps.llb and "source.image" in caps.llb
        assert "resolveimage" in caps.frontend
        assert "linux/amd64" in caps.platforms
        solve(builder, _plan(plain), timeout=120)
        if caps.parallel:
            solve(builder, _plan(merged), timeout=120)
        else:
            with pytest.raises(SolveFailed, match="mergeop"):
                solve(builder, _plan(merged), timeout=120)


def _plan(state):
    definition = marshal(state).definition
    return lambda caps, platform: Plan(definition)
