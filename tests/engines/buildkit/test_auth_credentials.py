"""Registry credentials from a Docker config directory, including real credential helpers.

The helpers here are small shell scripts run as real subprocesses through the docker
credential-helper protocol (server URL on stdin, JSON on stdout), not mocks.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from dsl.engines.buildkit.session import Credential, DockerCredentials
from dsl.errors import EngineError


def config(tmp_path: Path, data: dict) -> str:
    directory = tmp_path / "docker-config"
    directory.mkdir(exist_ok=True)
    (directory / "config.json").write_text(json.dumps(data))
    return str(directory)


def helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, body: str) -> Path:
    """Install ``docker-credential-NAME`` (a shell script) on PATH; it logs each query."""
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    script = bindir / f"docker-credential-{name}"
    script.write_text(f'#!/bin/sh\n[ "$1" = get ] || exit 3\nread server\n'
                      f'echo "$server" >> "{bindir}/{name}.log"\n{body}\n')
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    return bindir / f"{name}.log"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_auths_entries_by_exact_key_url_or_fields(tmp_path: Path) -> None:
    creds = DockerCredentials(config(tmp_path, {"auths": {
        "127.0.0.1:5000": {"auth": b64("alice:s3:cret")},
        "https://registry.example.com/v2/": {"username": "bob", "password": "pw"},
        "https://index.docker.io/v1/": {"auth": b64("hubuser:hubpw")},
        "ghcr.io": {"identitytoken": "refresh-token"},
    }}))
    assert creds.lookup("127.0.0.1:5000") == Credential("alice", "s3:cret")  # ':' in password
    assert creds.lookup("registry.example.com") == Credential("bob", "pw")
    assert creds.lookup("registry-1.docker.io") == Credential("hubuser", "hubpw")
    assert creds.lookup("ghcr.io") == Credential("", "refresh-token")
    assert creds.lookup("unknown.example") == Credential()


def test_missing_config_means_anonymous(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "nowhere"))
    assert DockerCredentials().lookup("127.0.0.1:5000") == Credential()


def test_broken_config_is_a_clear_error(tmp_path: Path) -> None:
    directory = tmp_path / "cfg"
    directory.mkdir()
    (directory / "config.json").write_text("{not json")
    with pytest.raises(EngineError, match="cannot read the Docker config"):
        DockerCredentials(str(directory)).lookup("x.example")


def test_cred_helper_per_registry_then_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    per_host = helper(tmp_path, monkeypatch, "perhost",
                      'echo \'{"ServerURL":"x","Username":"carol","Secret":"from-helper"}\'')
    store = helper(tmp_path, monkeypatch, "store",
                   'echo \'{"ServerURL":"x","Username":"<token>","Secret":"id-token"}\'')
    creds = DockerCredentials(config(tmp_path, {
        "credHelpers": {"registry.example.com": "perhost"}, "credsStore": "store"}))
    assert creds.lookup("registry.example.com") == Credential("carol", "from-helper")
    assert creds.lookup("registry-1.docker.io") == Credential("", "id-token")  # <token> marker
    assert creds.lookup("registry.example.com") == Credential("carol", "from-helper")
    assert per_host.read_text().splitlines() == ["registry.example.com"]  # cached: asked once
    assert store.read_text().splitlines() == ["https://index.docker.io/v1/"]


def test_helper_not_found_falls_back_to_auths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    helper(tmp_path, monkeypatch, "empty", 'echo "credentials not found in native keychain"; exit 1')
    creds = DockerCredentials(config(tmp_path, {
        "credsStore": "empty", "auths": {"127.0.0.1:5000": {"auth": b64("u:p")}}}))
    assert creds.lookup("127.0.0.1:5000") == Credential("u", "p")
    assert creds.lookup("other.example") == Credential()


def test_uninstalled_helper_means_anonymous(tmp_path: Path) -> None:
    creds = DockerCredentials(config(tmp_path, {"credsStore": "dsl-test-not-installed"}))
    assert creds.lookup("127.0.0.1:5000") == Credential()


def test_failing_or_hanging_helper_is_an_error_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    helper(tmp_path, monkeypatch, "broken", 'echo "keychain locked" >&2; exit 1')
    helper(tmp_path, monkeypatch, "slow", "sleep 5")
    with pytest.raises(EngineError, match="docker-credential-broken failed .*keychain locked"):
        DockerCredentials(config(tmp_path, {"credsStore": "broken"})).lookup("r.example")
    slow = DockerCredentials(config(tmp_path, {"credsStore": "slow"}), helper_timeout=0.3)
    with pytest.raises(EngineError, match="did not answer .* within 0.3s"):
        slow.lookup("r.example")
