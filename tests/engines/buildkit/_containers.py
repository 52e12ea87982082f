"""Shared by the engine tests: running a command in a built image, reaching the host from a
build step, and a wheel to serve from a local package index."""

from __future__ import annotations

import fcntl
import socket
import struct
import zipfile
from pathlib import Path


def run_in(docker_api, ref: str, script: str) -> str:
    """Run ``script`` with ``/bin/sh -c`` in a throw-away container of ``ref``; its output.

    The container is removed whatever happens; a non-zero exit fails the test with the logs.
    """
    container = docker_api.create_container(ref, entrypoint=["/bin/sh", "-c"], command=[script])
    try:
        docker_api.start(container)
        status = docker_api.wait(container, timeout=120)["StatusCode"]
        logs = docker_api.logs(container).decode()
        assert status == 0, logs
        return logs
    finally:
        docker_api.remove_container(container, force=True)


def bridge_gateway(network: dict) -> str:
    """The host's address on the Docker bridge, where RUN steps reach a server of the host.

    dockerd 20.10 leaves ``Gateway`` out of a freshly created data root's bridge IPAM config
    (it appears only after a daemon restart); the bridge device's own IPv4 address is the same
    gateway, so read that when the field is missing.
    """
    for config in network["IPAM"].get("Config") or []:
        if config.get("Gateway"):
            return config["Gateway"].split("/")[0]
    device = network.get("Options", {}).get("com.docker.network.bridge.name", "docker0")
    return _ipv4_of(device)


def _ipv4_of(device: str) -> str:
    """The IPv4 address of a network device (the SIOCGIFADDR ioctl; no iproute2 needed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("256s", device.encode()[:15])
        answer = fcntl.ioctl(sock.fileno(), 0x8915, request)  # SIOCGIFADDR
    return socket.inet_ntoa(answer[20:24])


def make_wheel(directory: Path, name: str, modules: dict[str, str] | None = None, *, version: str = "1.0",
               requires: tuple[str, ...] = ()) -> Path:
    """A minimal pure-Python wheel ``name`` ``version``: ``modules`` (path -> text; default one
    ``name/__init__.py``), its metadata (with ``requires`` as Requires-Dist) and record."""
    dist = f"{name}-{version}"
    files = dict(modules or {f"{name}/__init__.py": f"NAME = {name!r}\nVERSION = {version!r}\n"})
    files[f"{dist}.dist-info/METADATA"] = (f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
                                           + "".join(f"Requires-Dist: {r}\n" for r in requires))
    files[f"{dist}.dist-info/WHEEL"] = "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    files[f"{dist}.dist-info/RECORD"] = "".join(f"{p},,\n" for p in files) + f"{dist}.dist-info/RECORD,,\n"
    path = directory / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for p, text in files.items():
            zf.writestr(p, text)
    return path
