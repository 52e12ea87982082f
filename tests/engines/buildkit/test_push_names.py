"""Push targets and the build record name images through the one reference parser (no engine)."""

from __future__ import annotations

import pytest

from dsl.cli.build import _record_inputs
from dsl.engines.buildkit import _build, _dockerapi
from dsl.engines.buildkit._uptodate import record_key


class _NoCredentials:
    def lookup(self, host: str):  # noqa: ANN201 - the DockerCredentials duck type
        self.host = host
        return type("Cred", (), {"username": "", "secret": ""})()


@pytest.mark.parametrize(("ref", "host", "path"), [
    ("myteam/ws:1", "docker.io", "/images/myteam%2Fws/push?tag=1"),
    ("ws", "docker.io", "/images/ws/push?tag=latest"),
    ("docker.io/library/ws:2", "docker.io", "/images/ws/push?tag=2"),
    ("index.docker.io/team/ws:3", "docker.io", "/images/team%2Fws/push?tag=3"),
    ("localhost:5000/a/b:t", "localhost:5000", "/images/localhost%3A5000%2Fa%2Fb/push?tag=t"),
    ("[::1]:5000/x", "[::1]:5000", "/images/%5B%3A%3A1%5D%3A5000%2Fx/push?tag=latest"),
])
def test_push_splits_registry_repository_and_tag(monkeypatch, ref, host, path):
    calls = []
    monkeypatch.setattr(_dockerapi, "stream_json", lambda *args, **kwargs: calls.append(args))
    credentials = _NoCredentials()
    _build._push("unix:///nowhere.sock", ref, credentials)
    assert credentials.host == host  # the registry whose login is used
    assert calls == [("unix:///nowhere.sock", "POST", path)]


def test_equivalent_tags_share_one_build_record(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def key(*tags: str) -> str:
        inputs = _record_inputs("build.envd", None, "docker://unix:///nowhere.sock", tags, None, None, None, None)
        assert inputs is not None
        return record_key(inputs)

    assert key("ws:1") == key("docker.io/library/ws:1") == key("index.docker.io/library/ws:1")
    assert key("ws:1") != key("ws:2")
