"""SSH for environments, shared by every runner (Docker now, Kubernetes later).

* :mod:`._keys`: the user's client key and one host key per environment (ssh-keygen, 0700).
* :mod:`._known_hosts`: envdsl's known_hosts, pinning each host key under its alias.
* :mod:`._hosts`: ``~/.ssh/envdsl`` with a ``Host <env>.dsl`` block per environment.
* :mod:`._include`: the single ``Include`` line added to ``~/.ssh/config``.
* :mod:`._client`: the ``ssh`` command line and the wait for a working login.
"""

from dsl.ssh._client import HOST_KEY_CHANGED, SshTarget, ssh_argv, ssh_binary, wait_ready
from dsl.ssh._hosts import (
    HostBlock,
    dsl_command,
    ensure_user_include,
    envdsl_dir,
    host_aliases,
    include_line,
    remove_host,
    write_host,
)
from dsl.ssh._include import IncludeOutcome, add_include, ensure_include
from dsl.ssh._keys import KeyPair, host_key, host_key_dir, remove_host_key, ssh_dir, user_key
from dsl.ssh._known_hosts import known_hosts_file, pin, pinned, unpin

__all__ = [
    "HOST_KEY_CHANGED", "HostBlock", "IncludeOutcome", "KeyPair", "SshTarget", "add_include", "dsl_command",
    "ensure_include", "ensure_user_include", "envdsl_dir", "host_aliases", "host_key", "host_key_dir",
    "include_line", "known_hosts_file", "pin", "pinned", "remove_host", "remove_host_key", "ssh_argv",
    "ssh_binary", "ssh_dir", "unpin", "user_key", "wait_ready", "write_host",
]
