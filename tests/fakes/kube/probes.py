"""Readiness probes as the kubelet runs them: ``tcpSocket``, ``httpGet`` and ``exec``, with
``initialDelaySeconds``, ``periodSeconds``, ``timeoutSeconds``, ``successThreshold`` and
``failureThreshold``; a container with a probe is not ready until one passes; each failure is a
Warning ``Unhealthy`` event (``Readiness probe failed: dial tcp IP:PORT: connect: connection
refused``). TCP and HTTP probes dial the Pod's IP from the node, as the kubelet does (so a
server bound to 127.0.0.1 in the Pod never passes one). One deviation: the first probe runs
as soon as the container starts, not up to a period later.
"""

from __future__ import annotations

import http.client
import socket
import time
from typing import TYPE_CHECKING, Any

from .events import WARNING
from .pod_status import ContainerStatus

if TYPE_CHECKING:
    from .pod_worker import PodWorker

Obj = dict[str, Any]


class ReadinessProber:
    def __init__(self, worker: PodWorker) -> None:
        self.worker = worker
        self._state: dict[str, dict[str, Any]] = {}

    def started(self, name: str) -> None:
        """A new instance of container ``name`` runs: its probe starts over."""
        self._state[name] = {"next": 0.0, "ok": 0, "fail": 0}

    def probe(self, spec: Obj, status: ContainerStatus) -> bool:
        """Probe if one is due; True when ``status.ready`` changed."""
        probe = spec.get("readinessProbe")
        state = self._state.get(spec["name"])
        if not probe or state is None or time.monotonic() < state["next"]:
            return False
        started_at = state.setdefault("started", time.monotonic())
        if time.monotonic() - started_at < int(probe.get("initialDelaySeconds", 0)):
            return False
        state["next"] = time.monotonic() + int(probe.get("periodSeconds", 10))
        error = self._probe_once(spec, probe)
        before = status.ready
        if error is None:
            state["ok"], state["fail"] = state["ok"] + 1, 0
            if state["ok"] >= int(probe.get("successThreshold", 1)):
                status.ready = True
        else:
            state["ok"], state["fail"] = 0, state["fail"] + 1
            self.worker.event(WARNING, "Unhealthy", f"Readiness probe failed: {error}", spec["name"])
            if state["fail"] >= int(probe.get("failureThreshold", 3)):
                status.ready = False
        return before != status.ready

    def _port(self, spec: Obj, port: Any) -> int:
        if isinstance(port, int) or str(port).isdigit():
            return int(port)
        for declared in spec.get("ports") or ():
            if declared.get("name") == port:
                return int(declared["containerPort"])
        raise ValueError(f"unable to find port {port!r}")

    def _probe_once(self, spec: Obj, probe: Obj) -> str | None:
        """None on success, else the probe's failure text (the kubelet's wording)."""
        timeout = float(probe.get("timeoutSeconds", 1))
        try:
            if "tcpSocket" in probe:
                host = probe["tcpSocket"].get("host") or self.worker.pod_ip
                port = self._port(spec, probe["tcpSocket"]["port"])
                try:
                    socket.create_connection((host, port), timeout=timeout).close()
                except ConnectionRefusedError:
                    return f"dial tcp {host}:{port}: connect: connection refused"
                except OSError as exc:
                    return f"dial tcp {host}:{port}: {exc}"
                return None
            if "httpGet" in probe:
                get = probe["httpGet"]
                host = get.get("host") or self.worker.pod_ip
                port = self._port(spec, get["port"])
                conn = http.client.HTTPConnection(host, port, timeout=timeout)
                try:
                    conn.request("GET", get.get("path", "/"))
                    code = conn.getresponse().status
                except OSError as exc:
                    return f'Get "http://{host}:{port}{get.get("path", "/")}": {exc}'
                finally:
                    conn.close()
                return None if 200 <= code < 400 else f"HTTP probe failed with statuscode: {code}"
            if "exec" in probe:
                run = self.worker.docker.exec_create(self.worker.current[spec["name"]], probe["exec"]["command"])
                output = self.worker.docker.exec_start(run["Id"]).decode(errors="replace")
                code = self.worker.docker.exec_inspect(run["Id"])["ExitCode"]
                return None if code == 0 else output.strip() or f"command exited with {code}"
        except ValueError as exc:
            return str(exc)
        return None
