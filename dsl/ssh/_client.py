"""Running the system ``ssh`` against an environment, with its host key pinned.

Every connection uses ``StrictHostKeyChecking yes`` against envdsl's known_hosts file under
the environment's ``HostKeyAlias``: a key we did not make is refused, nothing is trusted on
first use, and host-key checking is never switched off.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dsl.errors import EngineError, UsageError

_BANNER_TIMEOUT = 2.0
HOST_KEY_CHANGED = ("REMOTE HOST IDENTIFICATION HAS CHANGED", "Host key verification failed")


@dataclass(frozen=True, slots=True)
class SshTarget:
    """Everything ``ssh`` needs to reach one environment."""

    user: str
    host_key_alias: str
    identity_file: Path
    known_hosts: Path
    host: str = ""  # a direct address (Docker: the published loopback port) ...
    port: int = 0
    proxy_command: tuple[str, ...] = ()  # ... or a byte stream through `dsl ssh --stdio`


def ssh_binary() -> str:
    """The ``ssh`` client on PATH.

    Raises:
        UsageError: OpenSSH's client is not installed.
    """
    found = shutil.which("ssh")
    if found is None:
        raise UsageError("ssh is not installed", hint="install OpenSSH's client (e.g. apt-get install openssh-client)")
    return found


def ssh_argv(target: SshTarget, command: tuple[str, ...] = (), *, tty: bool | None = None,
             batch: bool = False) -> list[str]:
    """The ``ssh`` command line for ``target`` (then ``command``, run by the user's shell)."""
    import shlex

    # A check reads no ssh_config: a user's `Host *` (a ProxyJump, say) must not decide it.
    argv = [ssh_binary(), *(["-F", "none"] if batch else []), "-o", "IdentitiesOnly=yes",
            "-i", str(target.identity_file), "-o", f"UserKnownHostsFile={target.known_hosts}", "-o", f"HostKeyAlias={target.host_key_alias}",
            "-o", "StrictHostKeyChecking=yes", "-o", "LogLevel=ERROR", "-l", target.user]
    if batch:
        argv += ["-o", "BatchMode=yes", "-o", "ConnectTimeout=5"]
    if tty is True:
        argv.append("-t")
    elif tty is False:
        argv.append("-T")
    if target.proxy_command:
        argv += ["-o", "ProxyCommand=" + " ".join(shlex.quote(a) for a in target.proxy_command).replace("%", "%%"),
                 target.host_key_alias]
    else:
        argv += ["-p", str(target.port), target.host]
    if command:
        argv += ["--", *command]
    return argv


def _banner(host: str, port: int) -> bool:
    """True once sshd itself answers (docker-proxy accepts TCP before the container listens)."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=_BANNER_TIMEOUT) as s:
        s.settimeout(_BANNER_TIMEOUT)
        return s.recv(4).startswith(b"SSH-")
    return False


def wait_ready(target: SshTarget, *, timeout: float, alive: Callable[[], str | None]) -> float:
    """Wait until ``ssh`` logs in with our key and verifies the pinned host key.

    Args:
        target: the environment.
        timeout: seconds to wait in all.
        alive: returns None while the environment runs, else a reason it stopped (checked
            between attempts, so a crashed container fails at once, not at the timeout).

    Returns:
        Seconds it took.

    Raises:
        EngineError: the host key did not match, the key was refused, the environment stopped,
            or it did not answer in time (the message says which).
    """
    started = time.monotonic()
    deadline = started + timeout
    delay = 0.02
    last = "sshd did not answer"
    while True:
        reason = alive()
        if reason is not None:
            raise EngineError(reason)
        direct = not target.proxy_command
        if not direct or _banner(target.host, target.port):
            proc = subprocess.run(ssh_argv(target, ("true",), tty=False, batch=True), capture_output=True,
                                  text=True, stdin=subprocess.DEVNULL, timeout=max(5.0, timeout))
            if proc.returncode == 0:
                return time.monotonic() - started
            err = proc.stderr.strip()
            if any(s in err for s in HOST_KEY_CHANGED):
                raise EngineError(f"the environment's SSH host key is not the one envdsl pinned for "
                                  f"{target.host_key_alias}; refusing to connect",
                                  hint="something else answers on its port, or its key was replaced; "
                                       "`dsl down --purge` and `dsl up` make a new one")
            if "Permission denied" in err:
                raise EngineError(f"the environment refused the SSH key {target.identity_file}",
                                  hint="the container was created with another key: `dsl down` then `dsl up`")
            last = err.splitlines()[-1] if err else f"ssh exited with status {proc.returncode}"
        if time.monotonic() + delay > deadline:
            raise EngineError(f"sshd did not accept a login within {timeout:g}s ({last})")
        time.sleep(delay)
        delay = min(delay * 2, 0.5)
