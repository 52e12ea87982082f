"""Client and host keys made with ssh-keygen, and the known_hosts file that pins host keys."""

from __future__ import annotations

import stat
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from dsl.errors import UsageError
from dsl.ssh import host_key, known_hosts_file, pin, pinned, remove_host_key, unpin, user_key


@pytest.fixture(autouse=True)
def config_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    return tmp_path / "cfg" / "envdsl" / "ssh"


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_user_key_is_made_once_private_and_reused(config_home):
    first = user_key()
    assert first.private == config_home / "key" / "id_ed25519"
    assert first.public.startswith("ssh-ed25519 ") and "PRIVATE" not in first.public
    assert _mode(first.private) == 0o600 and _mode(config_home) == 0o700
    assert user_key() == first


def test_the_users_own_key_needs_its_public_half(tmp_path):
    own = tmp_path / "mine"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(own)], check=True)
    assert user_key(str(own)).public == own.with_suffix(".pub").read_text().strip()
    own.with_suffix(".pub").unlink()
    with pytest.raises(UsageError, match="cannot read the public key"):
        user_key(str(own))
    with pytest.raises(UsageError, match="no such file"):
        user_key(str(tmp_path / "missing"))


def test_parallel_first_use_agrees_on_one_host_key(config_home):
    """Eight `dsl up` of one environment creating its host key at once: one key wins, whole."""
    script = "from dsl.ssh import host_key; print(host_key('ws.1234abcd').public)"
    with ThreadPoolExecutor(8) as pool:
        outs = list(pool.map(lambda _: subprocess.run([sys.executable, "-c", script], capture_output=True,
                                                      text=True, check=True).stdout, range(8)))
    assert len(set(outs)) == 1
    pair = host_key("ws.1234abcd")
    assert pair.public == outs[0].strip()
    assert sorted(p.name for p in (config_home / "hosts").iterdir()) == ["ws.1234abcd"]
    assert remove_host_key("ws.1234abcd") and not remove_host_key("ws.1234abcd")


def test_host_key_is_readable_by_the_container_user_only_through_private_directories(config_home):
    import os

    pair = host_key("ws.1234abcd", reader=(os.getuid(), os.getgid()))
    assert _mode(pair.private) == 0o600 and _mode(pair.private.parent) == 0o700
    if os.geteuid() == 0:
        pair = host_key("ws.1234abcd", reader=(1000, 1000))
        assert (pair.private.stat().st_uid, _mode(pair.private)) == (1000, 0o600)


def test_known_hosts_pins_one_key_per_alias():
    pin("a.dsl", "ssh-ed25519 AAAAone comment")
    pin("b.dsl", "ssh-ed25519 AAAAtwo")
    pin("a.dsl", "ssh-ed25519 AAAAthree")
    assert known_hosts_file().read_text() == "b.dsl ssh-ed25519 AAAAtwo\na.dsl ssh-ed25519 AAAAthree\n"
    assert pinned("a.dsl") == "ssh-ed25519 AAAAthree"
    unpin("a.dsl")
    assert pinned("a.dsl") is None and pinned("b.dsl") == "ssh-ed25519 AAAAtwo"


def test_a_context_names_the_users_own_key(tmp_path, monkeypatch):
    import os

    from dsl.cli._runner import user_key_path
    from dsl.contexts import Context, create_context, use_context

    own = tmp_path / "mine"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(own)], check=True)
    monkeypatch.delenv("DSL_CONTEXT", raising=False)
    assert user_key_path(None) is None  # envdsl's own key
    create_context(Context(name="work", ssh_key=str(own)))
    use_context("work")
    assert user_key_path(None) == str(own) and user_key(user_key_path(None)).public.startswith("ssh-ed25519 ")
    assert user_key_path("/explicit") == "/explicit"  # --ssh-key / $DSL_SSH_KEY win
    with pytest.raises(UsageError, match="not absolute"):
        create_context(Context(name="rel", ssh_key=os.path.relpath(own)))

