"""The ssh command lines envdsl runs: host keys always checked against the pinned file."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from dsl.ssh import SshTarget, ssh_argv

TARGET = SshTarget(user="envd", host_key_alias="ws.1234abcd.dsl", identity_file=Path("/k/id"),
                   known_hosts=Path("/k/known_hosts"), host="127.0.0.1", port=32768)


def _options(argv: list[str]) -> dict[str, str]:
    return dict(argv[i + 1].split("=", 1) for i, a in enumerate(argv) if a == "-o" and "=" in argv[i + 1])


def test_every_command_line_checks_the_pinned_host_key_strictly():
    for argv in (ssh_argv(TARGET), ssh_argv(TARGET, ("true",), batch=True),
                 ssh_argv(dataclasses.replace(TARGET, host="", port=0,
                                              proxy_command=("dsl", "ssh", "--stdio", "ws.1234abcd")))):
        opts = _options(argv)
        assert opts["StrictHostKeyChecking"] == "yes" and opts["UserKnownHostsFile"] == "/k/known_hosts"
        assert opts["HostKeyAlias"] == "ws.1234abcd.dsl"
        assert "/dev/null" not in argv and "StrictHostKeyChecking=no" not in argv


def test_the_readiness_check_reads_no_ssh_config_but_a_login_does():
    """A user's `Host *` (ProxyJump, say) must not decide whether the environment is ready."""
    assert ssh_argv(TARGET, ("true",), batch=True)[1:3] == ["-F", "none"]
    assert "-F" not in ssh_argv(TARGET)  # `dsl ssh` keeps the user's own settings (agent forwarding, ...)
