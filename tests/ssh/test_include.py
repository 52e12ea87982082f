"""The one ``Include`` line added to ``~/.ssh/config``: placed before the first Host/Match block,
added once, every other byte kept (table tests), and what happens to odd files."""

from __future__ import annotations

import os
import stat
import subprocess

import pytest

from dsl.ssh import HostBlock, add_include, ensure_include

LINE = "Include ~/.ssh/envdsl/config"
SAME = ("envdsl/config", "/home/ada/.ssh/envdsl/config")

# (case, original, expected); "@" marks where our line goes in `expected`.
CASES = [
    ("empty file", b"", b"@\n"),
    ("globals only: appended", b"ServerAliveInterval 30\n", b"ServerAliveInterval 30\n@\n"),
    ("no final newline", b"ServerAliveInterval 30", b"ServerAliveInterval 30\n@\n"),
    ("Host first", b"Host a\n  User x\n", b"@\nHost a\n  User x\n"),
    ("globals then Host", b"Compression yes\n\nHost a\n  User x\n", b"Compression yes\n\n@\nHost a\n  User x\n"),
    ("the block's comment stays on it", b"Compression yes\n\n# work\n# boxes\nHost a\n",
     b"Compression yes\n\n@\n# work\n# boxes\nHost a\n"),
    ("Match first", b"Match host x exec true\n  User y\nHost a\n", b"@\nMatch host x exec true\n  User y\nHost a\n"),
    ("lowercase, '=' and indented keywords", b"  host=a\n  user x\n", b"@\n  host=a\n  user x\n"),
    ("HostName is not Host", b"HostName h\nHostKeyAlias k\nHost a\n", b"HostName h\nHostKeyAlias k\n@\nHost a\n"),
    ("a commented-out Host is not a block", b"# Host old\nUser x\nHost a\n", b"# Host old\nUser x\n@\nHost a\n"),
    ("an existing Include stays first", b"Include config.d/*\n\nHost a\n", b"Include config.d/*\n\n@\nHost a\n"),
    ("CRLF file gets a CRLF line", b"Compression yes\r\n# c\r\nHost a\r\n  User x\r\n",
     b"Compression yes\r\n@\r\n# c\r\nHost a\r\n  User x\r\n"),
    ("CRLF without a block", b"Compression yes\r\n", b"Compression yes\r\n@\r\n"),
    ("byte order mark kept in front", b"\xef\xbb\xbfHost a\n", b"\xef\xbb\xbf@\nHost a\n"),
    ("tabs and trailing spaces kept", b"\tCompression  yes \t\nHost\ta \n", b"\tCompression  yes \t\n@\nHost\ta \n"),
    ("non-UTF-8 bytes kept", b"# caf\xe9\nHost a\n", b"@\n# caf\xe9\nHost a\n"),
]


@pytest.mark.parametrize("case, original, expected", CASES, ids=[c[0] for c in CASES])
def test_line_is_added_once_before_the_first_block_and_nothing_else_changes(case, original, expected):
    result = add_include(original, LINE, same_as=SAME)
    assert result == expected.replace(b"@", LINE.encode())
    assert add_include(result, LINE, same_as=SAME) is None  # added once


@pytest.mark.parametrize("present", [
    b"Include ~/.ssh/envdsl/config\nHost a\n",
    b"Include=envdsl/config\n",
    b"include /home/ada/.ssh/envdsl/config other/*\r\n",
    b'Include "~/.ssh/envdsl/config"\n',
])
def test_an_existing_include_of_our_file_in_any_spelling_is_left_alone(present):
    assert add_include(present, LINE, same_as=SAME) is None


def test_missing_file_is_created_private(tmp_path):
    config = tmp_path / ".ssh" / "config"
    outcome = ensure_include(config, LINE)
    assert outcome.status == "created" and config.read_bytes() == LINE.encode() + b"\n"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert stat.S_IMODE(config.parent.stat().st_mode) == 0o700


def test_existing_file_keeps_its_mode_and_no_temporary_file_is_left(tmp_path):
    config = tmp_path / "config"
    config.write_bytes(b"Host a\n")
    config.chmod(0o644)
    assert ensure_include(config, LINE).status == "added"
    assert config.read_bytes() == LINE.encode() + b"\nHost a\n"
    assert stat.S_IMODE(config.stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config"]
    assert ensure_include(config, LINE).status == "present"


def test_a_symlinked_config_is_not_written(tmp_path):
    real = tmp_path / "dotfiles-ssh-config"
    real.write_bytes(b"Host a\n")
    link = tmp_path / "config"
    link.symlink_to(real)
    outcome = ensure_include(link, LINE)
    assert (outcome.status, outcome.detail) == ("symlink", str(real))
    assert link.is_symlink() and real.read_bytes() == b"Host a\n"


def test_a_read_only_config_is_not_written(tmp_path):
    config = tmp_path / "config"
    config.write_bytes(b"Host a\n")
    config.chmod(0o444)  # also as root: the owner made it read-only
    assert ensure_include(config, LINE).status == "read-only"
    assert config.read_bytes() == b"Host a\n"


def test_ssh_reads_the_include_and_the_block(tmp_path, monkeypatch):
    """OpenSSH itself (``ssh -G``) resolves ``ws.dsl`` through the line and the block we wrote."""
    from dsl.ssh import ensure_user_include, write_host

    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "config").write_bytes(b"Host other\n  User bob\n")
    block = HostBlock(env_id="ws.1234abcd", aliases=("ws.dsl", "ws.1234abcd.dsl"), user="envd",
                      identity_file=tmp_path / "key dir" / "id", known_hosts=tmp_path / "known_hosts",
                      host_key_alias="ws.1234abcd.dsl", proxy_command=("/opt/my dsl/bin/dsl", "ssh", "--stdio", "ws.1234abcd"))
    write_host(block)
    assert ensure_user_include().status == "added"
    out = subprocess.run(["ssh", "-G", "-F", str(tmp_path / ".ssh" / "config"), "ws.dsl"],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert "hostkeyalias ws.1234abcd.dsl" in out and "user envd" in out
    assert "stricthostkeychecking true" in out
    assert f"userknownhostsfile {tmp_path / 'known_hosts'}" in out
    assert f"identityfile {tmp_path / 'key dir' / 'id'}" in out
    assert "proxycommand '/opt/my dsl/bin/dsl' ssh --stdio ws.1234abcd" in out
    assert stat.S_IMODE(os.stat(tmp_path / ".ssh" / "envdsl" / "hosts" / "ws.1234abcd.conf").st_mode) == 0o600
