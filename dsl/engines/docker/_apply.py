"""``up`` on Docker: the container name is the claim, the generation label orders configurations.

Docker container names are unique and ``create`` is atomic, so a name is a lock nobody has to
release. A new configuration is created (never started) under ``<id>.g<generation>``, the claim
of that generation; only then is the running container (if older) removed and the new one
renamed to ``<id>`` and started. Whoever loses a race sees the winner's labels and backs off
with who and when, or, when the winner is older, removes it and takes the name. So two ``dsl
up`` of one environment never leave two containers or a half-updated one: at every moment
``<id>`` is either absent, a complete old configuration, or a complete new one.
"""

from __future__ import annotations

import datetime
import errno
import socket
from pathlib import Path
from typing import Any

from dsl.engines.docker._client import explain, status
from dsl.engines.docker._state import from_inspect
from dsl.engines.runner import EnvState, RunConflict, UpRequest, UpResult, fill_placeholders
from dsl.errors import EngineError, UsageError
from dsl.identity import CONFIG_LABEL, SSH_USER_LABEL, Claim

STALE_CLAIM_SECONDS = 120  # a claim container older than this belongs to a `dsl up` that died
_RENAME_ATTEMPTS = 8


def claim_name(env_id: str, generation: int) -> str:
    return f"{env_id}.g{generation}"


def creation_body(request: UpRequest) -> dict[str, Any]:
    """The compiled body with its placeholders filled and the runner's labels added."""
    body = dict(fill_placeholders(request.spec, request.values))
    labels = dict(body.get("Labels") or {})
    labels.update(request.labels)
    labels.update(request.identity.labels())
    labels.update(request.claim.labels())
    labels[CONFIG_LABEL] = request.config_hash
    labels[SSH_USER_LABEL] = request.ssh_user
    body["Labels"] = labels
    return body


def apply(api: Any, request: UpRequest) -> UpResult:
    """Make environment ``request.identity`` run ``request``'s configuration.

    Raises:
        RunConflict: a configuration of the same or a newer generation runs (or is being
            applied right now); nothing was changed.
        UsageError: a placeholder has no value, a fixed host port is taken.
        EngineError: Docker refused to create or start the container (it was removed).
    """
    name = request.identity.id
    current = _inspect(api, name)
    if current is not None:
        done = _settled(api, current, request)
        if done is not None:
            return done
    body = creation_body(request)
    _check_fixed_ports(body, current)
    _make_bind_sources(body)
    ours = _create_claim(api, body, request)
    replaced: Claim | None = None
    try:
        for _ in range(_RENAME_ATTEMPTS):
            current = _inspect(api, name)
            if current is not None and current.id != ours:
                done = _settled(api, current, request)
                if done is not None:
                    _remove(api, ours)
                    return done
                replaced = current.claim
                _remove(api, current.id)
            try:
                api.rename(ours, name)
                break
            except Exception as exc:  # noqa: BLE001 - 409: someone took the name meanwhile; look again
                if status(exc) != 409:
                    raise
        else:
            raise EngineError(f"could not take the container name {name}: other `dsl up` keep replacing it")
        try:
            api.start(ours)
        except Exception as exc:  # noqa: BLE001 - Docker's reason, one line, and nothing left behind
            current = _inspect(api, name)
            if status(exc) in (404, 409) or (current is not None and current.id != ours):
                raise _superseded(api, name) from exc  # a newer generation removed ours meanwhile
            raise EngineError(f"cannot start {name}: {explain(exc)}", hint=_start_hint(explain(exc))) from exc
    except BaseException:
        _remove(api, ours)
        raise
    state = from_inspect(api.inspect_container(ours))
    return UpResult("recreated" if replaced is not None else "created", state, replaced)


def _inspect(api: Any, name: str) -> _Current | None:
    try:
        info = api.inspect_container(name)
    except Exception as exc:  # noqa: BLE001
        if status(exc) == 404:
            return None
        raise
    return _Current(info)


class _Current:
    """The container that holds an environment's name right now."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.info = info
        self.id: str = info["Id"]
        labels = info["Config"].get("Labels") or {}
        self.config_hash = labels.get(CONFIG_LABEL, "")
        self.claim = Claim.from_labels(labels)
        self.running = bool(info["State"].get("Running"))

    def state(self) -> EnvState:
        return from_inspect(self.info)


def _settled(api: Any, current: _Current, request: UpRequest) -> UpResult | None:
    """The result when ``current`` already is (or beats) the request; None when it must go."""
    if current.config_hash == request.config_hash:
        if current.running:
            return UpResult("unchanged", current.state())
        try:
            api.start(current.id)
        except Exception as exc:  # noqa: BLE001
            if status(exc) == 404:
                return None  # replaced while we looked: decide again
            raise EngineError(f"cannot start {request.identity.id}: {explain(exc)}",
                              hint=_start_hint(explain(exc))) from exc
        return UpResult("started", from_inspect(api.inspect_container(current.id)))
    if current.claim.generation >= request.claim.generation:
        raise RunConflict(f"a newer configuration is already running ({current.claim.describe()}); "
                          f"not applying generation {request.claim.generation}",
                          hint="run `dsl up` again to apply this build file as the next generation")
    return None


def _superseded(api: Any, name: str) -> EngineError:
    current = _inspect(api, name)
    if current is None:
        return RunConflict(f"{name} was replaced by a newer configuration while it was being started")
    return RunConflict(f"{name} was replaced by a newer configuration ({current.claim.describe()})")


def _create_claim(api: Any, body: dict[str, Any], request: UpRequest) -> str:
    """Create the (stopped) container ``<id>.g<N>``: this generation's claim."""
    name = claim_name(request.identity.id, request.claim.generation)
    for _ in range(2):
        try:
            return api.create_container_from_config(body, name=name)["Id"]
        except Exception as exc:  # noqa: BLE001
            if status(exc) != 409:
                if status(exc) == 404:
                    raise UsageError(f"image {body['Image']} is not in the Docker engine",
                                     hint="build it with `dsl build`, or pull it") from exc
                raise EngineError(f"cannot create {request.identity.id}: {explain(exc)}") from exc
            other = _inspect(api, name)
            if other is None:
                continue
            if _age_seconds(other.info) < STALE_CLAIM_SECONDS:
                raise RunConflict(f"generation {request.claim.generation} of {request.identity.id} is being "
                                  f"applied right now ({other.claim.describe()})",
                                  hint="wait for that `dsl up` to finish") from exc
            _remove(api, other.id)  # left behind by a `dsl up` that was killed
    raise EngineError(f"cannot claim the container name {name}")


def _age_seconds(info: dict[str, Any]) -> float:
    created = str(info.get("Created", ""))[:19]
    try:
        when = datetime.datetime.fromisoformat(created).replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        return float("inf")
    return (datetime.datetime.now(datetime.timezone.utc) - when).total_seconds()


def _remove(api: Any, container: str) -> None:
    try:
        api.remove_container(container, force=True)
    except Exception as exc:  # noqa: BLE001
        if status(exc) not in (404, 409):  # gone already / removal in progress
            raise


def _make_bind_sources(body: dict[str, Any]) -> None:
    """Missing bind-mount directories are made as the invoking user (Docker would refuse)."""
    for mount in body.get("HostConfig", {}).get("Mounts") or []:
        if mount.get("Type") == "bind" and not Path(mount["Source"]).exists():
            try:
                Path(mount["Source"]).mkdir(parents=True)
            except OSError as exc:
                raise UsageError(f"cannot create the mount source {mount['Source']}: {exc.strerror or exc}",
                                 hint="create it yourself, or change the mount in the build file") from exc


def _check_fixed_ports(body: dict[str, Any], current: _Current | None) -> None:
    """Refuse, before anything changes, a fixed host port something else listens on.

    Advisory (Docker's own refusal at start is the real check): it only catches what listens
    now, and only on this machine, but it keeps a running environment from being replaced by
    one that cannot start.
    """
    held = set()
    if current is not None:
        for bindings in ((current.info.get("NetworkSettings") or {}).get("Ports") or {}).values():
            held.update(int(b["HostPort"]) for b in bindings or [] if b.get("HostPort"))
    for key, bindings in (body.get("HostConfig", {}).get("PortBindings") or {}).items():
        for b in bindings:
            port = int(b.get("HostPort") or 0)
            if not port or port in held:
                continue
            host = b.get("HostIp") or "0.0.0.0"
            with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is not "in use"
                try:
                    probe.bind((host, port))
                except OSError as exc:
                    if exc.errno != errno.EADDRINUSE:
                        continue  # not an address of this machine (a remote engine): Docker decides
                    raise UsageError(f"host port {host}:{port} (for container port {key}) is already in use",
                                     hint="stop what uses it, or change runtime.expose(host_port=...) / "
                                          "config.jupyter(port=...) in the build file") from exc


def _start_hint(reason: str) -> str | None:
    if "port is already allocated" in reason or "address already in use" in reason:
        return "a fixed host port is taken: stop what uses it, or change it in the build file"
    return None
