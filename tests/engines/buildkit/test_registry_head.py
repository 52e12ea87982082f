"""The up-to-date check's one registry request: what a tag names now, or "cannot verify".

Against a tiny loopback server (tests/engines/buildkit/_fake_registry.py); the real registry
and dockerd are exercised by test_uptodate.py.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest

from tests.engines.buildkit._fake_registry import DIGEST, OTHER, TOKEN, FakeRegistry

from dsl.engines.buildkit._registry_head import MANIFEST_TYPES, _Client, is_loopback, registry_digest



def docker_config(tmp_path: Path, host: str, entry: dict) -> str:
    (tmp_path / "config.json").write_text(json.dumps({"auths": {host: entry}}))
    return str(tmp_path)


def basic_entry(user: str, password: str) -> dict:
    return {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_anonymous_head_gives_the_digest_with_every_manifest_type_accepted(reg, tmp_path):
    assert registry_digest(f"{reg.host}/team/base:1", docker_config_dir=str(tmp_path)) == DIGEST
    [(method, path, headers)] = reg.manifest_requests()
    assert (method, path) == ("HEAD", "/v2/team/base/manifests/1")
    assert all(kind in headers["Accept"] for kind in MANIFEST_TYPES)
    assert "Authorization" not in headers


def test_a_moved_tag_gives_the_new_digest(reg, tmp_path):
    ref = f"{reg.host}/team/base:1"
    assert registry_digest(ref, docker_config_dir=str(tmp_path)) == DIGEST
    reg.behaviour.digests["team/base"]["1"] = OTHER
    assert registry_digest(ref, docker_config_dir=str(tmp_path)) == OTHER


def test_a_bearer_challenge_gets_a_token_with_the_docker_config_credentials(reg, tmp_path):
    reg.behaviour.auth = "bearer"
    config = docker_config(tmp_path, reg.host, basic_entry("alice", "s3cret"))
    assert registry_digest(f"{reg.host}/team/base:1", docker_config_dir=config) == DIGEST
    methods = [(m, p.split("?")[0]) for m, p, _ in reg.behaviour.log]
    assert methods == [("HEAD", "/v2/team/base/manifests/1"), ("GET", "/token"), ("HEAD", "/v2/team/base/manifests/1")]
    token_query = reg.behaviour.log[1][1]
    assert "scope=repository%3Ateam%2Fbase%3Apull" in token_query and "service=fake-registry" in token_query
    assert reg.manifest_requests()[-1][2]["Authorization"] == f"Bearer {TOKEN}"


def test_an_identity_token_is_exchanged_with_the_oauth2_form(reg, tmp_path):
    reg.behaviour.auth, reg.behaviour.refresh_token = "bearer", "refresh-me"
    config = docker_config(tmp_path, reg.host, {"identitytoken": "refresh-me"})
    assert registry_digest(f"{reg.host}/team/base:1", docker_config_dir=config) == DIGEST
    assert [m for m, _, _ in reg.behaviour.log] == ["HEAD", "POST", "HEAD"]


def test_a_basic_challenge_is_answered_with_the_credentials(reg, tmp_path):
    reg.behaviour.auth = "basic"
    config = docker_config(tmp_path, f"http://{reg.host}", basic_entry("alice", "s3cret"))
    assert registry_digest(f"{reg.host}/team/base:1", docker_config_dir=config) == DIGEST


@pytest.mark.parametrize("auth", ["bearer", "basic"])
def test_wrong_or_missing_credentials_cannot_verify(reg, tmp_path, auth):
    reg.behaviour.auth = auth
    wrong = docker_config(tmp_path, reg.host, basic_entry("alice", "not-it"))
    assert registry_digest(f"{reg.host}/team/base:1", docker_config_dir=wrong) is None
    empty = tmp_path / "empty"
    empty.mkdir()
    assert registry_digest(f"{reg.host}/team/base:1", docker_config_dir=str(empty)) is None


def test_an_unknown_tag_cannot_verify(reg, tmp_path):
    assert registry_digest(f"{reg.host}/team/base:2", docker_config_dir=str(tmp_path)) is None
    assert registry_digest(f"{reg.host}/team/other:1", docker_config_dir=str(tmp_path)) is None


def test_an_answer_without_a_digest_header_cannot_verify(reg, tmp_path):
    reg.behaviour.digest_header = False
    assert registry_digest(f"{reg.host}/team/base:1", docker_config_dir=str(tmp_path)) is None


def test_a_slow_registry_is_given_up_on_quickly(reg, tmp_path):
    reg.behaviour.delay = 2.0
    began = time.monotonic()
    assert registry_digest(f"{reg.host}/team/base:1", timeout=0.3, docker_config_dir=str(tmp_path)) is None
    assert time.monotonic() - began < 1.5


def test_the_time_box_covers_the_whole_check_not_each_request(reg, tmp_path):
    reg.behaviour.auth, reg.behaviour.delay = "bearer", 0.25  # each HEAD alone fits in 0.4 s
    config = docker_config(tmp_path, reg.host, basic_entry("alice", "s3cret"))
    assert registry_digest(f"{reg.host}/team/base:1", timeout=0.4, docker_config_dir=config) is None
    assert registry_digest(f"{reg.host}/team/base:1", timeout=3.0, docker_config_dir=config) == DIGEST


def test_no_registry_listening_cannot_verify(tmp_path):
    with FakeRegistry() as gone:
        host = gone.host
    assert registry_digest(f"{host}/team/base:1", docker_config_dir=str(tmp_path)) is None


def test_a_digest_pinned_reference_needs_no_request(reg, tmp_path):
    assert registry_digest(f"{reg.host}/team/base:1@{OTHER}", docker_config_dir=str(tmp_path)) == OTHER
    assert registry_digest(f"{reg.host}/team/base@{OTHER}", docker_config_dir=str(tmp_path)) == OTHER
    assert reg.behaviour.log == []


def test_a_token_realm_in_plain_http_off_this_machine_gets_no_credentials(reg, tmp_path, monkeypatch):
    """A challenge may name any realm: the password never travels unencrypted off loopback."""
    import socket

    reg.behaviour.auth, reg.behaviour.realm = "bearer", "http://auth.example.com/token"
    config = docker_config(tmp_path, reg.host, basic_entry("alice", "s3cret"))
    dialled: list[tuple[str, int]] = []
    real = socket.create_connection

    def spy(address, *args, **kwargs):
        dialled.append(address)
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", spy)
    assert registry_digest(f"{reg.host}/team/base:1", docker_config_dir=config) is None
    assert [host for host, _ in dialled] == ["127.0.0.1"]  # the manifest HEAD, nothing else


def test_https_trusts_the_ca_bundle_option(tmp_path):
    """A registry behind a private CA (or a TLS-re-signing proxy) verifies with --ca-bundle."""
    import ssl
    import subprocess

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
                   check=True, capture_output=True)
    with FakeRegistry(tls=(str(cert), str(key))) as reg:
        reg.behaviour.digests = {"team/base": {"1": DIGEST}}
        url = f"https://localhost:{reg.host.rsplit(':', 1)[1]}/v2/team/base/manifests/1"
        status, headers, _ = _Client(str(cert), 3.0).request("HEAD", url, {"Accept": MANIFEST_TYPES[0]})
        assert (status, headers["docker-content-digest"]) == (200, DIGEST)
        with pytest.raises(ssl.SSLCertVerificationError):
            _Client(None, 3.0).request("HEAD", url, {})


def test_a_token_with_a_line_break_is_not_sent(reg, tmp_path, monkeypatch):
    from tests.engines.buildkit import _fake_registry

    monkeypatch.setattr(_fake_registry, "TOKEN", "t\r\nX-Injected: 1")
    reg.behaviour.auth = "bearer"
    config = docker_config(tmp_path, reg.host, basic_entry("alice", "s3cret"))
    assert registry_digest(f"{reg.host}/team/base:1", docker_config_dir=config) is None
    assert len(reg.manifest_requests()) == 1  # the challenged HEAD only


@pytest.mark.parametrize(("netloc", "loopback"), [
    ("localhost:5000", True), ("127.0.0.1:5000", True), ("127.8.9.1", True), ("[::1]:5000", True),
    ("ghcr.io", False), ("10.0.0.1:5000", False), ("registry-1.docker.io", False),
])
def test_only_loopback_registries_are_spoken_to_in_plain_http(netloc, loopback):
    assert is_loopback(netloc) is loopback
