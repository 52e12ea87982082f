"""In-cluster BuildKit builders: apply, list and remove them, and open ``buildctl dial-stdio``
streams to one of their Pods through the exec API (``kube-pod://NAME``).

The objects come from ``compiler.k8s._builder`` (pure); this module only talks to the API
server. A build reaches buildkitd the way ``docker-container://`` does: each gRPC connection
is one exec of ``buildctl dial-stdio`` in the chosen Pod, whose stdin/stdout carry the HTTP/2
bytes (exec channels 0 and 1 of the ``v5``/``v4.channel.k8s.io`` WebSocket); stderr (channel
2) is kept for error messages and the error channel (3) says how the command ended.

Which Pod: rendezvous hashing of the build's key over the names of the Ready Pods, so the
same environment goes to the same replica (its cache) while the set is unchanged, different
environments spread, and a replica going away moves only the builds that hashed to it.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from compiler.k8s import dump_yaml
from compiler.k8s._builder import BUILDER_LABEL, COMPONENT, CONTAINER, builder_selector
from dsl.engines.kube import _objects as o
from dsl.engines.kube._client import APPLY_PATCH, FIELD_MANAGER, Kube, KubeStatus, object_path, translate
from dsl.errors import EngineError, EngineUnavailable, UsageError

DIAL_STDIO = ["buildctl", "dial-stdio"]
_ALL_BUILDERS = f"app.kubernetes.io/component={COMPONENT},app.kubernetes.io/managed-by=envdsl"
_FIRST_WORD = 0.5  # seconds the first stream may take to show that its command could not start


@dataclass(frozen=True, slots=True)
class BuilderInfo:
    """One builder as ``dsl builder ls`` shows it."""

    name: str
    namespace: str
    replicas: int
    ready: int
    image: str


def apply_builder(kube: Kube, objects: Sequence[dict[str, Any]]) -> None:
    """Server-side apply of the builder's objects (created when absent), as field manager envdsl.

    Raises:
        EngineError: the API server refused (its message; RBAC hint on 401/403).
    """
    for obj in objects:
        path = object_path(obj["kind"], kube.namespace, obj["metadata"]["name"])
        try:
            kube.request("PATCH", path, query={"fieldManager": FIELD_MANAGER}, body=dump_yaml(obj),
                         content_type=APPLY_PATCH)
        except KubeStatus as exc:
            raise translate(exc, kube.where, f"cannot apply {obj['kind']} {obj['metadata']['name']}") from exc


def list_builders(kube: Kube) -> list[BuilderInfo]:
    """The builders envdsl made in the runner's namespace, by name."""
    try:
        items, _ = kube.list("StatefulSet", _ALL_BUILDERS)
    except KubeStatus as exc:
        raise translate(exc, kube.where, "cannot list builders") from exc
    found = []
    for item in items:
        meta, spec, status = item["metadata"], item.get("spec") or {}, item.get("status") or {}
        containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or [{}]
        found.append(BuilderInfo(name=(meta.get("labels") or {}).get(BUILDER_LABEL, meta["name"]),
                                 namespace=meta.get("namespace", kube.namespace), replicas=int(spec.get("replicas", 1)),
                                 ready=int(status.get("readyReplicas") or 0), image=str(containers[0].get("image", ""))))
    return sorted(found, key=lambda b: b.name)


def remove_builder(kube: Kube, name: str, *, purge: bool) -> list[str]:
    """Delete builder ``name`` (and, with ``purge``, its cache claims); what was deleted.

    Raises:
        UsageError: there is no such builder in the namespace.
        EngineError: the API server refused.
    """
    live = _statefulset(kube, name)
    if live is None:
        raise UsageError(f"no builder {name!r} in namespace {kube.namespace} (context {kube.where.context})",
                         hint="`dsl builder ls` lists them")
    gone = []
    try:
        kube.request("DELETE", object_path("StatefulSet", kube.namespace, name), body={"propagationPolicy": "Background"})
        gone.append(f"StatefulSet {name}")
        if purge:
            claims, _ = kube.list("PersistentVolumeClaim", builder_selector(name))
            for claim in claims:
                claim_name = claim["metadata"]["name"]
                with contextlib.suppress(KubeStatus):  # already gone
                    kube.request("DELETE", object_path("PersistentVolumeClaim", kube.namespace, claim_name))
                    gone.append(f"PersistentVolumeClaim {claim_name}")
    except KubeStatus as exc:
        raise translate(exc, kube.where, f"cannot delete builder {name}") from exc
    return gone


def _statefulset(kube: Kube, name: str) -> dict[str, Any] | None:
    try:
        live = kube.get("StatefulSet", name)
    except KubeStatus as exc:
        raise translate(exc, kube.where, f"cannot read builder {name}") from exc
    if live is None or (live["metadata"].get("labels") or {}).get(BUILDER_LABEL) != name:
        return None
    return live


# ---- choosing a replica ---------------------------------------------------------------------


def pick_pod(names: Sequence[str], key: str) -> str:
    """The Pod of ``names`` that builds for ``key``: the highest ``sha256(key, name)``.

    Deterministic (no ``hash()``, no order dependence); removing one Pod moves only the keys
    that were on it.
    """
    if not names:
        raise ValueError("no Pods to choose from")
    return max(sorted(names), key=lambda name: hashlib.sha256(f"{key}\0{name}".encode()).digest())


def ready_pods(kube: Kube, name: str) -> tuple[list[str], int]:
    """Names of builder ``name``'s Ready, running Pods (not being deleted), and how many it has."""
    pods, _ = kube.list("Pod", builder_selector(name))
    ready = [o.name(pod) for pod in pods if o.is_ready(pod) and (pod.get("status") or {}).get("phase") == "Running"]
    return ready, len(pods)


def choose_pod(kube: Kube, name: str, key: str) -> str:
    """The Ready Pod of builder ``name`` for ``key``.

    Raises:
        EngineUnavailable: no such builder, or none of its Pods is Ready.
    """
    where = f"namespace {kube.namespace} (context {kube.where.context})"
    try:
        if _statefulset(kube, name) is None:
            raise EngineUnavailable(f"no builder {name!r} in {where}",
                                    hint=f"create it with `dsl builder create {name} --kubernetes -n {kube.namespace}`")
        ready, total = ready_pods(kube, name)
    except KubeStatus as exc:
        raise translate(exc, kube.where, f"cannot read builder {name}") from exc
    if not ready:
        raise EngineUnavailable(f"builder {name!r} in {where} has no Ready Pod ({total} Pod(s), none Ready)",
                                hint=f"wait for it, or look: `kubectl -n {kube.namespace} describe pods -l "
                                     f"{builder_selector(name)}`")
    return pick_pod(ready, key)


# ---- dial-stdio over exec ---------------------------------------------------------------------


def dial_stdio_opener(kube: Kube, name: str, key: str) -> Callable[[], socket.socket]:
    """A function opening one ``buildctl dial-stdio`` stream to the Pod chosen for ``key``.

    The Pod is chosen again for every connection (a replica may have gone meanwhile). The first
    stream is checked before it is handed out: an exec the API server refuses, or a command
    that cannot start, fails here with one line instead of as a dropped gRPC connection.

    Raises:
        EngineUnavailable / EngineError: see :func:`choose_pod` and :func:`open_dial_stdio`.
    """
    first = [True]

    def open_one() -> socket.socket:
        pod = choose_pod(kube, name, key)
        check, first[0] = first[0], False
        return open_dial_stdio(kube, pod, check=check)

    return open_one


def open_dial_stdio(kube: Kube, pod: str, *, check: bool = False) -> socket.socket:
    """Exec ``buildctl dial-stdio`` in ``pod`` and return a socket carrying its stdin/stdout.

    Raises:
        EngineError: the exec was refused (403: RBAC ``create pods/exec``), or (``check``) the
            command ended at once (no ``buildctl`` in the image, or buildkitd not listening).
    """
    ws = _exec(kube, pod)
    relay = _Relay(ws, pod)
    if check:
        relay.check_started()
    ours, theirs = socket.socketpair()
    relay.start(theirs)
    return ours


def _exec(kube: Kube, pod: str) -> Any:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException
    from kubernetes.stream import stream

    try:
        return stream(client.CoreV1Api(kube.api).connect_get_namespaced_pod_exec, pod, kube.namespace,
                      container=CONTAINER, command=DIAL_STDIO, stdin=True, stdout=True, stderr=True, tty=False,
                      _preload_content=False, binary=True)
    except ApiException as exc:
        code = exc.status or _handshake_status(str(exc.reason or ""))
        raise translate(KubeStatus(code, "", _handshake_message(str(exc.reason or ""))), kube.where,
                        f"cannot exec `buildctl dial-stdio` in builder Pod {pod}") from exc


_HANDSHAKE = re.compile(r"Handshake status (\d{3})")


def _handshake_status(reason: str) -> int:
    """The HTTP status of a refused WebSocket upgrade, from websocket-client's message."""
    match = _HANDSHAKE.search(reason)
    return int(match.group(1)) if match else 0


def _handshake_message(reason: str) -> str:
    """What the API server answered to a refused upgrade: websocket-client's text is
    ``Handshake status N R -+-+- HEADERS -+-+- BODY``; the body is a Status (its message) or,
    from the kubelet, plain text."""
    import ast
    import json

    parts = reason.split(" -+-+- ")
    body: Any = parts[2].strip() if len(parts) > 2 else ""
    if body.startswith(("b'", 'b"')):
        with contextlib.suppress(ValueError, SyntaxError):
            body = ast.literal_eval(body).decode(errors="replace")
    with contextlib.suppress(ValueError, AttributeError):
        body = json.loads(body).get("message", body)
    text = str(body).strip() or parts[0].strip() or "no answer"
    return text.splitlines()[0][:300]


class _Relay:
    """Pumps bytes between a local socket and the exec WebSocket's stdin/stdout channels."""

    def __init__(self, ws: Any, pod: str) -> None:
        self.ws, self.pod = ws, pod
        self.stderr = b""
        self._pending = b""  # stdout that arrived while checking the start

    def check_started(self) -> None:
        """Wait briefly: a command that cannot start ends the stream at once, with a Status.

        buildkitd (grpc-go) writes its HTTP/2 SETTINGS frame as soon as a connection is
        accepted, before it reads the client's preface; so the first stdout bytes prove that
        ``buildctl dial-stdio`` runs and reached buildkitd, and the wait ends there."""
        import time

        deadline = time.monotonic() + _FIRST_WORD
        while not self._pending and self.ws.is_open() and (left := deadline - time.monotonic()) > 0:
            self.ws.update(timeout=left)
            self._drain()
        if not self.ws.is_open():
            raise EngineError(f"`buildctl dial-stdio` ended at once in builder Pod {self.pod}: {self._why()}",
                              hint="the image needs buildctl and a running buildkitd (a moby/buildkit image); "
                                   "see `kubectl logs` of the Pod")

    def _why(self) -> str:
        import yaml

        text = self.ws.read_channel(3)
        try:
            status = yaml.safe_load(text) if text else None
        except yaml.YAMLError:
            status = None
        if isinstance(status, dict) and status.get("message"):
            return str(status["message"])
        tail = self.stderr.decode(errors="replace").strip().splitlines()
        return tail[-1] if tail else "no error message"

    def _drain(self) -> None:
        self._pending += self.ws.read_channel(1)
        err = self.ws.read_channel(2)
        if err:
            self.stderr = (self.stderr + err)[-4096:]

    def start(self, sock: socket.socket) -> None:
        threading.Thread(target=self._to_ws, args=(sock,), daemon=True, name="kube-pod-in").start()
        threading.Thread(target=self._from_ws, args=(sock,), daemon=True, name="kube-pod-out").start()

    def _to_ws(self, sock: socket.socket) -> None:
        from websocket import WebSocketException

        try:
            while data := sock.recv(65536):
                self.ws.write_stdin(data)
            if self.ws.subprotocol == "v5.channel.k8s.io":
                self.ws.close_channel(0)  # dial-stdio sees EOF on stdin, ends, and the stream with it
            else:
                self.ws.close()  # v4 cannot half-close: the connection is done, end the exec
        except (OSError, WebSocketException):
            pass

    def _from_ws(self, sock: socket.socket) -> None:
        from websocket import WebSocketException

        try:
            if self._pending:
                sock.sendall(self._pending)
                self._pending = b""
            while self.ws.is_open():
                self.ws.update(timeout=1)
                self._drain()
                if self._pending:
                    sock.sendall(self._pending)
                    self._pending = b""
        except (OSError, WebSocketException):
            pass
        finally:
            with contextlib.suppress(OSError, WebSocketException):
                self.ws.close()
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
