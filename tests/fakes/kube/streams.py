"""The Pod subresources that stream: ``exec``, ``portforward`` (WebSocket) and ``log``.

The API server checks the Pod (404 NotFound; 400 BadRequest for a container that is not in
the spec, or ``pod X does not have a host assigned``) and hands the stream to the node's
kubelet, whose own refusals pass through the proxy unchanged (``container not found
("app")``, a 500 in plain text). With the Docker-backed kubelet:

- exec (``v5``/``v4``/``v4.base64.channel.k8s.io``; the client's first offer wins): channels
  0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize (``{"Width":..,"Height":..}``); an empty
  message on the lowest output channel says the stream is up; the end is a ``metav1.Status``
  on channel 3 — ``Success``, or ``Failure``/``NonZeroExitCode`` with the code as
  ``details.causes[0].message`` (what ``ws_client.returncode`` parses), or ``InternalError``
  when the command cannot start (no such executable) — then the close;
  v5's half-close of channel 0 closes the command's stdin;
- port-forward (``v4.channel.k8s.io``, as the kubelet serves it): per port index i, data
  channel 2i and error channel 2i+1, each starting with a message of the port number (2 bytes,
  little-endian); the connection is dialled to ``localhost:PORT`` inside the Pod's network
  namespace, as the container runtime does (so a server bound to 127.0.0.1 is reachable); a
  refused dial is a text message on the error channel; when every port's remote side has
  closed, the WebSocket closes; when the client goes, the remote connections close;
- log: ``text/plain``; ``follow`` streams until the container stops or the client leaves;
  ``tailLines``, ``timestamps``, ``sinceSeconds``, ``limitBytes``, ``previous``; the kubelet's
  400s for containers that have no logs (``is waiting to start: ...``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from . import websocket
from .exec_session import ExecSession
from .port_forward import PortForwardSession
from .resources import by_kind
from .server import RawResponse, Request, Response, Router, Stream, Upgrade
from .status import ApiError, bad_request, not_found

if TYPE_CHECKING:
    from . import FakeKube

POD = by_kind("Pod")
_POD_PATH = r"/api/v1/namespaces/(?P<ns>[^/]+)/pods/(?P<name>[^/]+)/"


def _flag(request: Request, name: str) -> bool:
    return (request.params.get(name) or [""])[0].lower() in ("true", "1")


class Streams:
    def __init__(self, kube: FakeKube) -> None:
        self.kube = kube

    def register(self, router: Router) -> None:
        router.add("GET POST", _POD_PATH + "exec", lambda req, m: self.exec(req, m["ns"], m["name"]))
        router.add("GET POST", _POD_PATH + "portforward", lambda req, m: self.portforward(req, m["ns"], m["name"]))
        router.add("GET", _POD_PATH + "log", lambda req, m: self.log(req, m["ns"], m["name"]))

    # --- what the API server checks -------------------------------------------------------

    def _pod(self, namespace: str, name: str) -> dict[str, Any]:
        pod = self.kube.store.get(POD, namespace, name)
        if pod is None:
            raise not_found(POD, name)
        return pod

    @staticmethod
    def _container(pod: dict[str, Any], requested: str) -> str:
        spec, name = pod["spec"], pod["metadata"]["name"]
        names = [c["name"] for c in spec.get("containers") or ()]
        init_names = [c["name"] for c in spec.get("initContainers") or ()]
        if requested:
            if requested not in names + init_names:
                raise bad_request(f"container {requested} is not valid for pod {name}")
            return requested
        default = (pod["metadata"].get("annotations") or {}).get("kubectl.kubernetes.io/default-container")
        if default in names:
            return default
        if len(names) == 1:
            return names[0]
        message = f"a container name must be specified for pod {name}, choose one of: [{' '.join(names)}]"
        if init_names:
            message += f" or one of the init containers: [{' '.join(init_names)}]"
        raise bad_request(message)

    @staticmethod
    def _scheduled(pod: dict[str, Any]) -> None:
        if not pod["spec"].get("nodeName"):
            raise bad_request(f"pod {pod['metadata']['name']} does not have a host assigned")

    def _kubelet(self) -> Any:
        return getattr(self.kube, "kubelet", None)

    # --- exec -----------------------------------------------------------------------------

    def exec(self, request: Request, namespace: str, name: str) -> Upgrade | RawResponse | Response:
        pod = self._pod(namespace, name)
        container = self._container(pod, (request.params.get("container") or [""])[0])
        self._scheduled(pod)
        command = request.params.get("command") or []
        stdin, stdout, stderr, tty = (_flag(request, k) for k in ("stdin", "stdout", "stderr", "tty"))
        if not (stdin or stdout or stderr):
            raise bad_request("you must specify at least 1 of stdin, stdout, stderr")
        if not command:
            raise bad_request("you must specify at least one command for the container")
        stderr = stderr and not tty  # the kubelet drops stderr under a tty
        kubelet = self._kubelet()
        container_id = kubelet.running_container(pod, container) if kubelet else None
        if container_id is None:
            return RawResponse(f'container not found ("{container}")'.encode(), 500)

        def session(ws: websocket.WebSocket) -> None:
            ExecSession(kubelet, container_id, command, stdin, stdout, stderr, tty, ws).run()

        return Upgrade((websocket.V5, websocket.V4, websocket.V4_BASE64), session)

    # --- port-forward ---------------------------------------------------------------------

    def portforward(self, request: Request, namespace: str, name: str) -> Upgrade | RawResponse:
        pod = self._pod(namespace, name)
        self._scheduled(pod)
        ports = []
        for value in request.params.get("ports") or ():
            for part in value.split(","):
                if not part.isdigit():
                    return RawResponse(f'unable to parse "{part}" as a port: invalid syntax'.encode(), 400)
                if int(part) == 0 or int(part) > 65535:
                    return RawResponse(f'port "{part}" must be > 0'.encode(), 400)
                ports.append(int(part))
        if not ports:
            return RawResponse(b'query parameter "port" is required', 400)
        kubelet = self._kubelet()
        pid = kubelet.sandbox_pid(pod) if kubelet else 0
        if not pid:
            meta = pod["metadata"]
            return RawResponse(f'pod not found ("{meta["name"]}_{meta["namespace"]}")'.encode(), 500)
        uid = pod["metadata"]["uid"]

        def session(ws: websocket.WebSocket) -> None:
            PortForwardSession(pid, f"{name}_{namespace}", uid, ports, ws).run()

        return Upgrade((websocket.V4, websocket.V4_BASE64, websocket.BARE), session)

    # --- log ------------------------------------------------------------------------------

    def log(self, request: Request, namespace: str, name: str) -> Stream | Response:
        pod = self._pod(namespace, name)
        container = self._container(pod, request.query.get("container", ""))
        if not pod["spec"].get("nodeName"):
            return Stream(iter(()), "text/plain")  # the API server streams nothing for an unbound Pod
        container_id = _log_container(pod, container, request.flag("previous"))
        kubelet = self._kubelet()
        if kubelet is None:
            raise ApiError(400, "BadRequest", f'container "{container}" in pod "{name}" is not available')
        options: dict[str, Any] = {"stdout": True, "stderr": True, "timestamps": request.flag("timestamps"),
                                   "follow": request.flag("follow"), "stream": True}
        if request.query.get("tailLines"):
            options["tail"] = int(request.query["tailLines"])
        if request.query.get("sinceSeconds"):
            import time

            options["since"] = int(time.time()) - int(request.query["sinceSeconds"])
        limit = int(request.query.get("limitBytes") or 0)
        client = kubelet.new_docker_client()
        try:
            stream = client.logs(container_id, **options)
        except Exception as exc:
            client.close()
            raise ApiError(400, "BadRequest", f'container "{container}" in pod "{name}" is not available') from exc

        def chunks() -> Iterator[bytes]:
            sent = 0
            try:
                for chunk in stream:
                    if limit:
                        chunk = chunk[:max(0, limit - sent)]
                    if chunk:
                        sent += len(chunk)
                        yield chunk
                    if limit and sent >= limit:
                        return
            finally:
                client.close()

        return Stream(chunks(), "text/plain")


def _log_container(pod: dict[str, Any], container: str, previous: bool) -> str:
    """The Docker id whose log to read: the kubelet's validateContainerLogStatus."""
    pod_name = pod["metadata"]["name"]
    status = pod.get("status") or {}
    entries = [s for s in (status.get("containerStatuses") or []) + (status.get("initContainerStatuses") or [])
               if s["name"] == container]

    def fail(detail: str) -> ApiError:
        return ApiError(400, "BadRequest", f'container "{container}" in pod "{pod_name}" {detail}')

    if not entries:
        raise fail("is not available")
    entry = entries[0]
    state, last = entry.get("state") or {}, (entry.get("lastState") or {}).get("terminated")
    if previous:
        if not last or not last.get("containerID"):
            raise ApiError(400, "BadRequest", f'previous terminated container "{container}" in pod "{pod_name}" not found')
        found = last["containerID"]
    elif "running" in state:
        found = entry.get("containerID", "")
    elif "terminated" in state:
        found = state["terminated"].get("containerID") or (last or {}).get("containerID") or ""
        if not found:
            raise fail("is terminated")
    elif last:
        found = last.get("containerID") or ""
        if not found:
            raise fail("is terminated")
    elif "waiting" in state:
        reason = state["waiting"].get("reason", "")
        detail = {"ErrImagePull": "image can't be pulled",
                  "ImagePullBackOff": "trying and failing to pull image"}.get(reason, reason)
        raise fail(f"is waiting to start: {detail}")
    else:
        raise fail("is waiting to start - no logs yet")
    return re.sub(r"^[a-z]+://", "", found)
