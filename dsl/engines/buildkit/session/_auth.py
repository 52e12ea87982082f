"""Registry credentials from the user's Docker config, served as ``moby.filesync.v1.Auth``.

Lookup order for a registry host, as the docker CLI does it: a per-registry credential helper
(``credHelpers``), else the default store (``credsStore``), else the inline ``auths`` entry
(base64 ``user:password``, ``username``/``password``, or an ``identitytoken``). A helper that
finds nothing falls back to ``auths``. Secrets are never logged.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import subprocess
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

from dsl.errors import EngineError

log = logging.getLogger(__name__)

DOCKER_HUB_HOSTS = ("registry-1.docker.io", "docker.io", "index.docker.io")
DOCKER_HUB_KEY = "https://index.docker.io/v1/"
HELPER_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class Credential:
    """What the daemon gets for a host.

    Attributes:
        username: empty with an identity (refresh) token.
        secret: password, token or identity token; empty when nothing is known.
    """

    username: str = ""
    secret: str = ""


def docker_config_dir(explicit: str | None = None) -> str:
    """The Docker config directory: ``explicit``, ``$DOCKER_CONFIG`` or ``~/.docker``."""
    return explicit or os.environ.get("DOCKER_CONFIG") or os.path.expanduser("~/.docker")


class DockerCredentials:
    """Resolves registry credentials from a Docker config directory, caching per host.

    Args:
        config_dir: the directory holding ``config.json`` (default: see
            :func:`docker_config_dir`).
        helper_timeout: seconds a ``docker-credential-*`` helper may take.
    """

    def __init__(self, config_dir: str | None = None, *, helper_timeout: float = HELPER_TIMEOUT) -> None:
        self.path = os.path.join(docker_config_dir(config_dir), "config.json")
        self.helper_timeout = helper_timeout
        self._config: dict | None = None
        self._cache: dict[str, Credential] = {}
        self._lock = threading.Lock()

    def lookup(self, host: str) -> Credential:
        """The credential for a registry host (``Credential()`` when none is configured).

        Args:
            host: the registry host as BuildKit names it, e.g. ``registry-1.docker.io`` or
                ``127.0.0.1:5000``.

        Returns:
            The credential.

        Raises:
            EngineError: the config file is unreadable or a helper failed (not "not found").
        """
        with self._lock:
            if host not in self._cache:
                self._cache[host] = self._resolve(host)
            return self._cache[host]

    def _resolve(self, host: str) -> Credential:
        config = self._load()
        key = DOCKER_HUB_KEY if host in DOCKER_HUB_HOSTS else host
        helper = (config.get("credHelpers") or {}).get(key) or config.get("credsStore")
        if helper:
            found = self._from_helper(helper, key)
            if found is not None:
                return found
        return _from_auths(config.get("auths") or {}, key)

    def _load(self) -> dict:
        if self._config is None:
            try:
                with open(self.path, encoding="utf-8") as fh:
                    data = json.load(fh)
            except FileNotFoundError:
                data = {}
            except (OSError, ValueError) as exc:
                raise EngineError(f"cannot read the Docker config {self.path}: {exc}",
                                  hint="fix or remove the file (docker login recreates it)") from exc
            self._config = data if isinstance(data, dict) else {}
        return self._config

    def _from_helper(self, helper: str, server: str) -> Credential | None:
        program = f"docker-credential-{helper}"
        try:
            done = subprocess.run(
                [program, "get"], input=server, capture_output=True, text=True,
                timeout=self.helper_timeout, check=False,
            )
        except FileNotFoundError:
            log.warning("credential helper %s is not installed; using no credentials for %s",
                        program, server)
            return None
        except subprocess.TimeoutExpired as exc:
            raise EngineError(f"credential helper {program} did not answer for {server} "
                              f"within {self.helper_timeout:g}s",
                              hint="unlock your keychain or fix credHelpers/credsStore in "
                                   f"{self.path}") from exc
        if done.returncode != 0:
            text = (done.stdout + done.stderr).strip()
            if "credentials not found" in text.lower():
                return None
            raise EngineError(f"credential helper {program} failed for {server}: "
                              f"{text.splitlines()[0] if text else f'exit {done.returncode}'}",
                              hint=f"run `echo {server} | {program} get` to see why")
        try:
            reply = json.loads(done.stdout)
            username, secret = str(reply.get("Username", "")), str(reply.get("Secret", ""))
        except (ValueError, AttributeError) as exc:
            raise EngineError(f"credential helper {program} answered something other than "
                              "JSON", hint=f"run `echo {server} | {program} get`") from exc
        if username == "<token>":  # the helper protocol's marker for an identity token
            return Credential(secret=secret)
        return Credential(username, secret)


def _from_auths(auths: dict, key: str) -> Credential:
    entry = auths.get(key)
    if entry is None:
        wanted = _hostname(key)
        entry = next((v for k, v in auths.items() if _hostname(k) == wanted), None)
    if not isinstance(entry, dict):
        return Credential()
    if entry.get("identitytoken"):
        return Credential(secret=str(entry["identitytoken"]))
    if entry.get("auth"):
        try:
            user, _, password = base64.b64decode(entry["auth"]).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
            raise EngineError(f"the Docker config entry for {key} has an invalid 'auth' value",
                              hint="run docker login again") from exc
        return Credential(user, password)
    return Credential(str(entry.get("username", "")), str(entry.get("password", "")))


def _hostname(key: str) -> str:
    """``https://host:port/v1/`` → ``host:port``; a bare ``host:port`` stays as it is."""
    if "://" in key:
        key = urlsplit(key).netloc
    return key.split("/", 1)[0]
