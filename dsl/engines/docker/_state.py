"""Reading environments back from Docker: container list entries and inspections → ``EnvState``."""

from __future__ import annotations

import json
from typing import Any

from dsl.engines.runner import Endpoint, EnvState
from dsl.identity import (
    CONFIG_LABEL,
    ENV_NAME_LABEL,
    INSTANCE_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    PROJECT_DIR_LABEL,
    PROJECT_LABEL,
    SSH_USER_LABEL,
    Claim,
)

PORTS_LABEL = "envdsl/ports"  # [{"name": "ssh", "port": 2222}, ...], from the build file that ran
IMAGE_PORTS_LABEL = "dev.envdsl.ports"  # the same, as the image's own build file had it
LIST_FILTERS = {"label": [f"{MANAGED_BY_LABEL}={MANAGED_BY}", INSTANCE_LABEL, PROJECT_LABEL]}


def env_id(labels: dict[str, str]) -> str:
    """The environment id a container's labels name (its final container name)."""
    return f"{labels.get(INSTANCE_LABEL, '')}.{labels.get(PROJECT_LABEL, '')}"


def _status(state: str) -> str:
    return "stopped" if state in ("exited", "created") else state


def _port_names(labels: dict[str, str]) -> dict[int, str]:
    try:
        text = labels.get(PORTS_LABEL) or labels.get(IMAGE_PORTS_LABEL) or "[]"
        return {int(p["port"]): str(p["name"]) for p in json.loads(text)}
    except (ValueError, TypeError, KeyError):
        return {}


def from_inspect(info: dict[str, Any]) -> EnvState:
    """An ``EnvState`` from ``GET /containers/{id}/json``."""
    labels = info["Config"].get("Labels") or {}
    names = _port_names(labels)
    endpoints = []
    exposed = info["Config"].get("ExposedPorts") or {}
    published = (info.get("NetworkSettings") or {}).get("Ports") or {}
    for key in sorted(exposed, key=lambda k: int(k.split("/")[0])):
        number = int(key.split("/")[0])
        bindings = published.get(key) or []
        binding = next((b for b in bindings if "." in (b.get("HostIp") or "")), bindings[0] if bindings else None)
        host = (binding or {}).get("HostIp") or ""
        endpoints.append(Endpoint(names.get(number, f"port-{number}"), number,
                                  "127.0.0.1" if host in ("", "0.0.0.0") else host,
                                  int((binding or {}).get("HostPort") or 0)))
    state = info["State"]
    status = "running" if state.get("Running") else _status(state.get("Status", "exited"))
    if state.get("Restarting"):
        status = "restarting"
    return _state(info["Name"].lstrip("/"), labels, status, info["Config"].get("Image", ""), info.get("Image", ""),
                  tuple(endpoints), info["Id"])


def from_list_entry(entry: dict[str, Any]) -> EnvState:
    """An ``EnvState`` from one item of ``GET /containers/json``."""
    labels = entry.get("Labels") or {}
    names = _port_names(labels)
    seen: dict[int, Endpoint] = {}
    for p in sorted(entry.get("Ports") or [], key=lambda p: (p.get("PrivatePort", 0), ":" in p.get("IP", ""))):
        number = int(p["PrivatePort"])
        if number in seen and seen[number].host_port:
            continue
        host = p.get("IP") or ""
        seen[number] = Endpoint(names.get(number, f"port-{number}"), number,
                                "127.0.0.1" if host in ("", "0.0.0.0") else host, int(p.get("PublicPort") or 0))
    name = (entry.get("Names") or ["/"])[0].lstrip("/")
    return _state(name, labels, _status(entry.get("State", "exited")), entry.get("Image", ""),
                  entry.get("ImageID", ""), tuple(seen[k] for k in sorted(seen)), entry.get("Id", ""))


def _state(name: str, labels: dict[str, str], status: str, image: str, image_id: str,
           endpoints: tuple[Endpoint, ...], object_id: str) -> EnvState:
    return EnvState(
        id=name, name=labels.get(ENV_NAME_LABEL, ""), instance=labels.get(INSTANCE_LABEL, ""),
        project=labels.get(PROJECT_LABEL, ""), project_dir=labels.get(PROJECT_DIR_LABEL, ""), status=status,
        image=image, image_id=image_id, config_hash=labels.get(CONFIG_LABEL, ""), claim=Claim.from_labels(labels),
        ssh_user=labels.get(SSH_USER_LABEL, ""), endpoints=endpoints, labels=labels, object_id=object_id,
    )
