"""``docker-container://NAME``: a buildkitd in a container, reached through ``buildctl dial-stdio``.

No port is published: each gRPC connection is one ``docker exec NAME buildctl dial-stdio``
whose stdin/stdout carry the HTTP/2 bytes. Docker multiplexes a non-TTY exec's stdout and
stderr into 8-byte-header frames, so the daemon→client direction is demultiplexed; stderr is
kept for error messages. A stopped container is started; a missing one is created when the
``moby/buildkit`` image is local, otherwise the error says how to create it.
"""

from __future__ import annotations

import json
import socket
import struct
import time
from collections.abc import Callable

from dsl.engines.buildkit import _dockerapi as api
from dsl.engines.buildkit._connect import BuilderAddress
from dsl.engines.buildkit._hijack import bridge, open_upgraded
from dsl.errors import EngineError, EngineUnavailable

BUILDKIT_IMAGE = "moby/buildkit:latest"
_READY_TIMEOUT = 30.0


class ExecDemuxer:
    """Turns Docker's multiplexed exec stream into the stdout bytes; keeps stderr's tail."""

    def __init__(self) -> None:
        self._buf = b""
        self.stderr = b""

    def __call__(self, data: bytes) -> bytes:
        self._buf += data
        out = bytearray()
        while len(self._buf) >= 8:
            stream, size = self._buf[0], struct.unpack(">I", self._buf[4:8])[0]
            if len(self._buf) < 8 + size:
                break
            payload, self._buf = self._buf[8 : 8 + size], self._buf[8 + size :]
            if stream == 2:
                self.stderr = (self.stderr + payload)[-4096:]
            else:
                out += payload
        return bytes(out)


def dial_stdio_opener(address: BuilderAddress, *, timeout: float) -> Callable[[], socket.socket]:
    """Make sure the container runs, and return a function opening one dial-stdio connection.

    Raises:
        EngineUnavailable: the Docker engine or the container cannot be used.
    """
    host, name = address.docker_host, address.target
    assert host is not None and name is not None
    _ensure_running(address, timeout=timeout)

    def open_one() -> socket.socket:
        exec_id = _exec_create(host, name, ["buildctl", "dial-stdio"], timeout=timeout)
        upstream = open_upgraded(
            host, f"/exec/{exec_id}/start", [], timeout=timeout, upgrade="tcp",
            body=json.dumps({"Detach": False, "Tty": False}).encode(),
        )
        ours, theirs = socket.socketpair()
        bridge(theirs, upstream, decode_b=ExecDemuxer())
        return ours

    return open_one


def _exec_create(host: str, name: str, cmd: list[str], *, timeout: float) -> str:
    body = {"Cmd": cmd, "AttachStdin": True, "AttachStdout": True, "AttachStderr": True}
    status, payload = api.request(host, "POST", f"/containers/{api.quote(name)}/exec", body=body, timeout=timeout)
    if status != 201:
        raise EngineUnavailable(f"cannot exec in builder container {name}: {api.error_message(payload)}")
    return str(payload["Id"])


def _ensure_running(address: BuilderAddress, *, timeout: float) -> None:
    host, name = address.docker_host, address.target
    assert host is not None and name is not None
    status, info = api.request(host, "GET", f"/containers/{api.quote(name)}/json", timeout=timeout)
    if status == 404:
        if api.request(host, "GET", f"/images/{api.quote(BUILDKIT_IMAGE)}/json", timeout=timeout)[0] != 200:
            raise EngineUnavailable(
                f"builder container {name} does not exist on the Docker engine at {host}",
                hint=f"create it: `docker pull {BUILDKIT_IMAGE} && docker run -d --name {name} --privileged {BUILDKIT_IMAGE}`",
            )
        body = {"Image": BUILDKIT_IMAGE, "HostConfig": {"Privileged": True}}
        status, info = api.request(host, "POST", f"/containers/create?name={api.quote(name)}", body=body, timeout=timeout)
        if status != 201:
            raise EngineError(f"cannot create builder container {name}: {api.error_message(info)}", hint=address.remedy)
        info = {"State": {"Running": False}}
    elif status != 200:
        raise EngineUnavailable(f"cannot inspect builder container {name}: {api.error_message(info)}", hint=address.remedy)
    if info.get("State", {}).get("Running"):
        return
    status, payload = api.request(host, "POST", f"/containers/{api.quote(name)}/start", timeout=timeout)
    if status not in (204, 304):
        raise EngineUnavailable(f"cannot start builder container {name}: {api.error_message(payload)}", hint=address.remedy)
    _wait_ready(host, name)


def _wait_ready(host: str, name: str) -> None:
    """Poll ``buildctl debug workers`` until buildkitd answers inside the container."""
    deadline = time.monotonic() + _READY_TIMEOUT
    while time.monotonic() < deadline:
        exec_id = _exec_create(host, name, ["buildctl", "debug", "workers"], timeout=10)
        sock = open_upgraded(host, f"/exec/{exec_id}/start", [], timeout=10, upgrade="tcp",
                             body=json.dumps({"Detach": False, "Tty": False}).encode())
        with sock:
            while sock.recv(65536):
                pass
        _, info = api.request(host, "GET", f"/exec/{exec_id}/json", timeout=10)
        if isinstance(info, dict) and info.get("ExitCode") == 0:
            return
        time.sleep(0.3)
    raise EngineUnavailable(f"buildkitd in container {name} did not become ready within {_READY_TIMEOUT:g}s")
