"""The container-create body → the equivalent Compose file (``--format compose``).

Built from the create body rather than from the environment, so the two formats cannot
disagree. Compose interpolates ``$`` in values, so literal dollars are doubled; the body's
run-time placeholders become required variables of the invoking shell: the authorized keys
(``DSL_AUTHORIZED_KEYS``), the Jupyter token (``DSL_JUPYTER_TOKEN``) and the SSH host key file
(``DSL_HOST_KEY_FILE``); Compose stops with the message when one is unset.
"""

from __future__ import annotations

from typing import Any

from compiler._names import AUTHORIZED_KEYS_ENV
from compiler.docker._create import (
    AUTHORIZED_KEYS_PLACEHOLDER,
    HOST_KEY_FILE_ENV,
    HOST_KEY_FILE_PLACEHOLDER,
    JUPYTER_TOKEN_PLACEHOLDER,
)
from dsl.ir import JUPYTER_TOKEN_ENV

_FROM_SHELL = {
    AUTHORIZED_KEYS_PLACEHOLDER: "${%s:?set %s to your SSH public key}" % (AUTHORIZED_KEYS_ENV, AUTHORIZED_KEYS_ENV),
    JUPYTER_TOKEN_PLACEHOLDER: "${%s:?set %s to the Jupyter token}" % (JUPYTER_TOKEN_ENV, JUPYTER_TOKEN_ENV),
    HOST_KEY_FILE_PLACEHOLDER: "${%s:?set %s to an SSH host private key file (ssh-keygen -t ed25519 -f FILE)}" % (
        HOST_KEY_FILE_ENV, HOST_KEY_FILE_ENV),
}


def _escape(value: str) -> str:
    return value.replace("$", "$$")


def compose_file(service: str, body: dict[str, Any]) -> dict[str, Any]:
    """A Compose document with one service equivalent to the create body.

    Args:
        service: the service name (the container name).
        body: the result of ``compile_container``.

    Returns:
        The Compose document (``services`` and, for named volumes, ``volumes``) as data.
    """
    host = body["HostConfig"]
    environment: dict[str, str] = {}
    for item in body["Env"]:
        key, _, value = item.partition("=")
        environment[key] = _FROM_SHELL.get(value) or _escape(value)
    svc: dict[str, Any] = {
        "image": body["Image"],
        "container_name": service,
        "hostname": body["Hostname"],
        "restart": host["RestartPolicy"]["Name"],
        "shm_size": host["ShmSize"],
        "labels": {k: _escape(v) for k, v in body["Labels"].items()},
    }
    if environment:
        svc["environment"] = environment
    if "WorkingDir" in body:
        svc["working_dir"] = body["WorkingDir"]
    if "Entrypoint" in body:
        svc["entrypoint"] = [_escape(a) for a in body["Entrypoint"]]
    ports = []
    for key, bindings in host["PortBindings"].items():
        number, _, protocol = key.partition("/")
        for b in bindings:
            port: dict[str, Any] = {"target": int(number), "host_ip": b["HostIp"], "protocol": protocol}
            if b["HostPort"]:
                port["published"] = b["HostPort"]
            ports.append(port)
    if ports:
        svc["ports"] = ports
    volumes: dict[str, Any] = {}
    mounts = []
    for m in host["Mounts"]:
        source = _FROM_SHELL.get(m["Source"], m["Source"])
        mounts.append({"type": m["Type"], "source": source, "target": m["Target"],
                       "read_only": m["ReadOnly"]})
        if m["Type"] == "volume":
            volumes[m["Source"]] = {"name": m["Source"]}  # no project-name prefix
    if mounts:
        svc["volumes"] = mounts
    if "DeviceRequests" in host:
        devices = [{"driver": d["Driver"], "count": d["Count"], "capabilities": d["Capabilities"][0]}
                   for d in host["DeviceRequests"]]
        svc["deploy"] = {"resources": {"reservations": {"devices": devices}}}
    doc: dict[str, Any] = {"services": {service: svc}}
    if volumes:
        doc["volumes"] = volumes
    return doc
