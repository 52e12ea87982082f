"""``dsl up``'s wait for SSH when a newer ``dsl up`` is already removing what this one started:
the loser says it was replaced (exit 1), never that the user must start it (a usage error)."""

from __future__ import annotations

import pytest

from dsl.cli.up import _wait_for_ssh
from dsl.engines.runner import Endpoint, EnvState, UpResult
from dsl.errors import EngineError, UsageError
from dsl.identity import Claim


def _state(status: str) -> EnvState:
    return EnvState(id="web.1a2b3c4d", name="web", instance="1a2b3c4d", project="p", project_dir="/p",
                    status=status, image="img", image_id="sha256:0", config_hash="h",
                    claim=Claim(1, "me", "2026-12-01T00:00:00Z"), ssh_user="envd",
                    endpoints=(Endpoint("ssh", 2222, "127.0.0.1", 40022),), object_id="c1")


class _Runner:
    """What the wait asks of a runner; ``reason`` is what Docker shows after the newer up."""

    def __init__(self, reason: str | None, now: EnvState | None) -> None:
        self.reason, self.now, self.asked = reason, now, []

    def wait_stopped_reason(self, env_id: str, container: str) -> str | None:
        self.asked.append((env_id, container))
        return self.reason

    def get(self, env_id: str) -> EnvState | None:
        return self.now

    def ssh_address(self, state: EnvState) -> tuple[str, int]:
        raise _Reached


class _Reached(Exception):
    """The wait went on to log in: past the point this test is about."""


def test_a_start_a_newer_up_is_removing_reports_the_replacement() -> None:
    runner = _Runner("web.1a2b3c4d was replaced by a newer configuration (generation 2)", None)
    with pytest.raises(EngineError) as err:
        _wait_for_ssh(runner, UpResult("created", _state("removing")), None, 5)
    assert not isinstance(err.value, UsageError) and err.value.exit_code == 1
    assert "replaced by a newer configuration" in err.value.message
    assert runner.asked == [("web.1a2b3c4d", "c1")]


def test_a_state_that_was_only_older_goes_on_to_the_login(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("DSL_SSH_KEY", str(tmp_path / "key"))
    (tmp_path / "key").write_text("not used\n")
    (tmp_path / "key.pub").write_text("ssh-ed25519 AAAA test\n")
    runner = _Runner(None, _state("running"))
    with pytest.raises(_Reached):
        _wait_for_ssh(runner, UpResult("created", _state("created")), str(tmp_path / "key"), 5)
