"""A kubelet (plus the scheduler and PV binder it needs) that runs the fake's Pods as real
containers on a Docker engine: ``FakeKube(kubelet=KubeletOptions(docker_host=...))``.

One node, ``fake-node``. A thread follows the store's events: a new Pod gets a
``PodWorker`` (``pod_worker``: scheduling, sandbox, volumes, containers, status, restarts,
probes, deletion); a claim goes to the ``Binder`` (``volumes``); a deleted claim's Docker
volume goes with it. Everything it creates on the engine carries the label
``envdsl.fake-kube/kubelet=<id>``; ``stop()`` removes all of it, so a test leaves nothing
behind. The streams (``streams``: exec, port-forward, logs) ask it for a Pod's containers.

The Docker engine must be local (a unix socket): Pod volumes are directories of this
machine bind-mounted into the containers, and port-forward dials from inside the sandbox's
network namespace, as the container runtime does, which needs root.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import tempfile
import threading
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .events import Recorder
from .images import ImagePuller
from .pod_worker import POD, PodWorker
from .resources import by_kind
from .volumes import CLAIM, CLASS, Binder, default_storage_class

if TYPE_CHECKING:
    from . import FakeKube

LABEL = "envdsl.fake-kube/kubelet"
NAMESPACE, CONFIG_MAP = by_kind("Namespace"), by_kind("ConfigMap")
ROOT_CA = "kube-root-ca.crt"


@dataclasses.dataclass(frozen=True)
class KubeletOptions:
    """How the Docker-backed kubelet runs.

    Attributes:
        docker_host: the engine (``unix://...``; local, see the module docstring).
        pause_image: the image of each Pod's sandbox container (needs ``sleep``).
        max_grace_seconds: a cap on the termination grace period, so tests stay short.
        crash_backoff: the first restart back-off (the kubelet's 10 s) and ``crash_backoff_cap``
            its maximum (5 min); ``pull_backoff`` likewise for image pulls.
        default_storage_class: create the default StorageClass ``standard`` (as kind has).
    """

    docker_host: str
    pause_image: str = "debian:bookworm"
    max_grace_seconds: float = 2.0
    crash_backoff: float = 10.0
    crash_backoff_cap: float = 300.0
    pull_backoff: float = 10.0
    default_storage_class: bool = True


class DockerKubelet:
    def __init__(self, kube: FakeKube, options: KubeletOptions) -> None:
        import docker

        self.kube, self.options = kube, options
        self.id = uuid.uuid4().hex[:12]
        self.node_name = "fake-node"
        self.pause_image = options.pause_image
        self.max_grace_seconds = options.max_grace_seconds
        self.crash_backoff, self.crash_backoff_cap = options.crash_backoff, options.crash_backoff_cap
        self.docker = docker.APIClient(base_url=options.docker_host, version="auto", timeout=120)
        self.host_ip = self.docker.inspect_network("bridge")["IPAM"]["Config"][0].get("Gateway", "172.17.0.1")
        self.state_dir = Path(tempfile.mkdtemp(prefix="fake-kubelet-"))
        self.recorder = Recorder(kube.writer, "kubelet", self.node_name)
        self.scheduler = Recorder(kube.writer, "default-scheduler", self.node_name)
        self.puller = ImagePuller(self.docker, self.recorder, options.pull_backoff, 300.0)
        self.binder = Binder(self)
        self.workers: dict[str, PodWorker] = {}
        self.errors: list[str] = []  # unexpected failures inside workers, for tests to assert on
        self._claims_to_reclaim: list[dict[str, Any]] = []
        self._containers: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._handled = kube.store.revision
        self._thread = threading.Thread(target=self._run, name="fake-kubelet", daemon=True)

    # --- engine helpers -------------------------------------------------------------------

    def new_docker_client(self) -> Any:
        import docker

        return docker.APIClient(base_url=self.options.docker_host, version="auto", timeout=120)

    def labels(self) -> dict[str, str]:
        return {LABEL: self.id}

    def track(self, container_id: str) -> None:
        with self._lock:
            self._containers.add(container_id)

    def remove_container(self, client: Any, container_id: str) -> None:
        with contextlib.suppress(Exception):  # gone already
            client.remove_container(container_id, force=True, v=True)
        with self._lock:
            self._containers.discard(container_id)

    def remove_volume(self, name: str) -> bool:
        import docker

        try:
            self.docker.remove_volume(name)
        except docker.errors.NotFound:
            return True
        except docker.errors.APIError:
            return False  # still used by a container: retried
        return True

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        if self.options.default_storage_class:
            self.kube.create(default_storage_class())
        self._handled = self.kube.store.revision
        for namespace in self.kube.store.list(NAMESPACE, None)[0]:
            self._publish_root_ca(namespace["metadata"]["name"])
        for pod in self.kube.store.list(POD, None)[0]:
            self._pod_added(pod)
        for claim in self.kube.store.list(CLAIM, None)[0]:
            self.binder.claim_changed(claim)
        self._thread.start()

    def stop(self) -> None:
        """Stop every Pod at once and remove every container and volume this kubelet made."""
        self._stop.set()
        with self.kube.store.changed:
            self.kube.store.changed.notify_all()
        self._thread.join(timeout=10)
        for worker in list(self.workers.values()):
            worker.terminate(0, graceful=False)
        for worker in list(self.workers.values()):
            worker.join(timeout=30)
        filters = {"label": f"{LABEL}={self.id}"}
        for container in self.docker.containers(all=True, filters=filters):
            self.remove_container(self.docker, container["Id"])
        for volume in (self.docker.volumes(filters=filters) or {}).get("Volumes") or ():
            with contextlib.suppress(Exception):
                self.docker.remove_volume(volume["Name"], force=True)
        shutil.rmtree(self.state_dir, ignore_errors=True)
        self.docker.close()

    def settle(self, timeout: float = 5.0) -> None:
        with self.kube.store.changed:
            if not self.kube.store.changed.wait_for(lambda: self._handled >= self.kube.store.revision, timeout):
                raise TimeoutError("the fake kubelet did not settle")

    # --- the event loop -------------------------------------------------------------------

    def _run(self) -> None:
        store = self.kube.store
        while not self._stop.is_set():
            with store.changed:
                events = store.events_after(self._handled)
                if not events:
                    store.changed.wait(timeout=0.5)
            for event in events:
                try:
                    self._handle(event)
                except Exception as exc:  # noqa: BLE001 - keep serving; tests read .errors
                    self.errors.append(f"{event.type} {event.rtype.kind}: {exc!r}")
            if events:
                with store.changed:
                    self._handled = max(self._handled, events[-1].revision)
                    store.changed.notify_all()
            self._claims_to_reclaim = [c for c in self._claims_to_reclaim if not self.binder.claim_deleted(c)]

    def _handle(self, event: Any) -> None:
        obj = event.object
        if event.rtype == POD:
            if event.type == "ADDED":
                self._pod_added(obj)
            elif event.type == "DELETED":
                self._pod_gone(obj, graceful=False)
            elif obj["metadata"].get("deletionTimestamp"):
                self._pod_gone(obj, graceful=True)
        elif event.rtype == CLAIM:
            if event.type == "DELETED":
                if not self.binder.claim_deleted(obj):
                    self._claims_to_reclaim.append(obj)
            else:
                self.binder.claim_changed(obj)
        elif event.rtype == NAMESPACE and event.type == "ADDED":
            self._publish_root_ca(obj["metadata"]["name"])
        elif event.rtype == CLASS and event.type == "ADDED":
            for claim in self.kube.store.list(CLAIM, None)[0]:
                self.binder.claim_changed(claim)

    def _publish_root_ca(self, namespace: str) -> None:
        """What the root-ca-cert-publisher does: ``kube-root-ca.crt`` in every namespace (the
        service-account token volume reads it). The fake has no CA: the content says so."""
        if self.kube.store.get(CONFIG_MAP, namespace, ROOT_CA) is None:
            self.kube.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": ROOT_CA, "namespace": namespace},
                              "data": {"ca.crt": "# the fake API server serves plain http: no CA\n"}})

    def _pod_added(self, pod: dict[str, Any]) -> None:
        uid = pod["metadata"]["uid"]
        node = pod["spec"].get("nodeName")
        if uid in self.workers or (node and node != self.node_name):
            return
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return
        worker = PodWorker(self, pod)
        self.workers[uid] = worker
        worker.start()

    def _pod_gone(self, pod: dict[str, Any], graceful: bool) -> None:
        worker = self.workers.get(pod["metadata"]["uid"])
        if worker is None:
            if graceful:  # never ran here: nothing to stop
                with self.kube.store.changed:
                    live = self.kube.store.get(POD, pod["metadata"]["namespace"], pod["metadata"]["name"])
                    if live is not None and live["metadata"]["uid"] == pod["metadata"]["uid"]:
                        self.kube.store.remove(POD, pod["metadata"]["namespace"], pod["metadata"]["name"])
            return
        if worker.stopping.is_set() and not graceful:
            return
        grace = float(pod["metadata"].get("deletionGracePeriodSeconds") or 0) if graceful else 0.0
        worker.terminate(grace, graceful)

    # --- what the streams ask -------------------------------------------------------------

    def worker(self, pod: dict[str, Any]) -> PodWorker | None:
        return self.workers.get(pod["metadata"]["uid"])

    def running_container(self, pod: dict[str, Any], name: str) -> str | None:
        """The Docker id of container ``name`` of ``pod`` if it is running now."""
        worker = self.worker(pod)
        if worker is None:
            return None
        for status in worker.init + worker.main:
            if status.name == name and status.running:
                return worker.current.get(name)
        return None

    def sandbox_pid(self, pod: dict[str, Any]) -> int:
        worker = self.worker(pod)
        return worker.sandbox_pid if worker is not None and not worker.stopping.is_set() else 0

