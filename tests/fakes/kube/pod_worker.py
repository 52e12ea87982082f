"""One Pod on the Docker-backed kubelet, from scheduling to removal, in its own thread.

The steps a real scheduler + kubelet take, each reported as they report it:

1. schedule: every PVC must exist and be bound (else ``FailedScheduling``, PodScheduled
   False/Unschedulable, retried), then ``spec.nodeName`` is set and ``Scheduled`` recorded;
2. the sandbox: a container holding the Pod's network namespace (its IP is ``podIP``) and
   hostname (the Pod's name), as the pause container does;
3. volumes (``FailedMount`` until a missing Secret appears), then the init containers one by
   one to completion, then the app containers: image (``Pulling``/``Pulled``/``Failed``/
   ``BackOff``), configuration (``CreateContainerConfigError``), ``Created``, ``Started``;
4. watch them: a container that exits is restarted as ``restartPolicy`` says, with the
   crash-loop back-off (10 s doubling to 5 min; ``CrashLoopBackOff``, ``lastState``, the dead
   container kept for ``log?previous=true``); readiness probes decide ``ready``;
5. on deletion: ``Killing``, stop with the grace period (capped by the kubelet's
   ``max_grace_seconds``), remove the containers and the Pod's own volumes; a graceful
   deletion ends by removing the Pod object, as the kubelet's final status update does.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import TYPE_CHECKING, Any

from . import container_config, pod_status
from .container_config import ConfigError
from .events import NORMAL, WARNING
from .images import PullError, image_id
from .pod_status import ContainerStatus
from .probes import ReadinessProber
from .resources import by_kind
from .volumes import CLAIM, MountError, PodVolumes

if TYPE_CHECKING:
    from .kubelet import DockerKubelet

Obj = dict[str, Any]
POD = by_kind("Pod")
SECRET, CONFIG_MAP = by_kind("Secret"), by_kind("ConfigMap")
TICK = 0.25
RETRY = 1.0  # how soon a waiting container is tried again (a real kubelet: its next Pod sync)


class _Stop(Exception):
    """The Pod is being deleted: leave whatever step is running."""


class PodWorker(threading.Thread):
    def __init__(self, kubelet: DockerKubelet, pod: Obj) -> None:
        meta = pod["metadata"]
        super().__init__(name=f"fake-kubelet-{meta['name']}", daemon=True)
        self.kubelet, self.docker = kubelet, kubelet.new_docker_client()
        self.namespace, self.name, self.uid = meta["namespace"], meta["name"], meta["uid"]
        self.pod = pod
        self.stopping = threading.Event()
        self.grace: float = 0.0
        self.graceful = False
        self.sandbox_id = ""
        self.sandbox_pid = 0
        self.pod_ip = ""
        self.start_time = ""
        self.volumes = PodVolumes(kubelet, pod)
        spec = pod["spec"]
        self.init = [ContainerStatus(c["name"], c["image"], {"waiting": {"reason": "PodInitializing"}})
                     for c in spec.get("initContainers") or ()]
        self.main = [ContainerStatus(c["name"], c["image"],
                                     {"waiting": {"reason": "PodInitializing" if self.init else "ContainerCreating"}})
                     for c in spec.get("containers") or ()]
        self.current: dict[str, str] = {}   # container name → Docker id of the live instance
        self.previous: dict[str, str] = {}  # container name → Docker id of the last dead one
        self.initialized = not self.init
        self._transitions: dict[str, tuple[bool, str]] = {}
        self._backoff: dict[str, float] = {}
        self.prober = ReadinessProber(self)
        self._retry_at: dict[str, float] = {}
        self.done = threading.Event()

    # --- helpers --------------------------------------------------------------------------

    @property
    def full_name(self) -> str:
        return f"{self.name}_{self.namespace}({self.uid})"

    def _check(self) -> None:
        if self.stopping.is_set():
            raise _Stop()

    def _sleep(self, seconds: float) -> None:
        if self.stopping.wait(seconds):
            raise _Stop()

    def _live(self) -> Obj | None:
        pod = self.kubelet.kube.store.get(POD, self.namespace, self.name)
        return pod if pod is not None and pod["metadata"]["uid"] == self.uid else None

    def event(self, type_: str, reason: str, message: str, container: str = "", init: bool = False) -> None:
        pod = self._live() or self.pod
        path = f"spec.{'initContainers' if init else 'containers'}{{{container}}}" if container else ""
        self.kubelet.recorder.event(pod, type_, reason, message, path)

    def _write_status(self, status: Obj, node: bool = False) -> None:
        store = self.kubelet.kube.store
        with store.changed:
            pod = self._live()
            if pod is None:
                return
            if node:
                pod["spec"]["nodeName"] = self.kubelet.node_name
            if pod.get("status") == status and not node:
                return
            pod["status"] = status
            self.pod = store.write(POD, pod, "MODIFIED")

    def publish(self, phase: str = "") -> None:
        status = pod_status.build(self.pod, self.init, self.main, sandbox_ready=bool(self.sandbox_id),
                                  initialized=self.initialized, pod_ip=self.pod_ip, host_ip=self.kubelet.host_ip,
                                  start_time=self.start_time, transitions=self._transitions, phase_override=phase)
        self._write_status(status)

    def labels(self, container: str) -> dict[str, str]:
        return {**self.kubelet.labels(), "io.kubernetes.pod.name": self.name,
                "io.kubernetes.pod.namespace": self.namespace, "io.kubernetes.pod.uid": self.uid,
                "io.kubernetes.container.name": container}

    # --- the life of the Pod --------------------------------------------------------------

    def run(self) -> None:
        try:
            self._schedule()
            self._start_sandbox()
            self._mount()
            self._run_init_containers()
            for spec, status in zip(self.pod["spec"]["containers"], self.main):
                self._start(spec, status)
            self.publish()
            self._watch()
        except _Stop:
            pass
        except Exception as exc:
            self.kubelet.errors.append(f"{self.full_name}: {exc!r}")
            raise
        finally:
            self._teardown()
            self.done.set()

    def _schedule(self) -> None:
        reported = ""
        while True:
            self._check()
            message = self._unschedulable_reason()
            if not message:
                break
            if message != reported:
                reported = message
                pod = self._live() or self.pod
                self.kubelet.scheduler.new_event(pod, WARNING, "FailedScheduling", "Scheduling", message)
                self._write_status(pod_status.unschedulable(pod, message))
            self._sleep(TICK * 2)
        self.start_time = pod_status.now()
        pending = {"phase": "Pending", "qosClass": (self.pod.get("status") or {}).get("qosClass", "BestEffort"),
                   "conditions": [{"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                                   "lastTransitionTime": self.start_time}]}
        self._write_status(pending, node=True)
        self.kubelet.scheduler.new_event(self.pod, NORMAL, "Scheduled", "Binding",
                                         f"Successfully assigned {self.namespace}/{self.name} to {self.kubelet.node_name}")
        self.publish()  # the kubelet's first status: every container waiting (ContainerCreating)

    def _unschedulable_reason(self) -> str:
        tail = ". preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
        for volume in self.pod["spec"].get("volumes") or ():
            claim_name = (volume.get("persistentVolumeClaim") or {}).get("claimName")
            if not claim_name:
                continue
            claim = self.kubelet.kube.store.get(CLAIM, self.namespace, claim_name)
            if claim is None:
                return f'0/1 nodes are available: persistentvolumeclaim "{claim_name}" not found' + tail
            if (claim.get("status") or {}).get("phase") != "Bound":
                return "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims" + tail
        return ""

    def _start_sandbox(self) -> None:
        config = {"Image": self.kubelet.pause_image, "Entrypoint": ["sleep", "infinity"], "Cmd": [],
                  "Hostname": self.name[:63], "Labels": {**self.labels("POD"), "io.kubernetes.docker.type": "podsandbox"},
                  "HostConfig": {"IpcMode": "shareable", "NetworkMode": "bridge"}}
        created = self.docker.create_container_from_config(config, name=f"k8s_POD_{self.name}_{self.namespace}_{self.uid[:8]}")
        self.sandbox_id = created["Id"]
        self.kubelet.track(self.sandbox_id)
        self.docker.start(self.sandbox_id)
        info = self.docker.inspect_container(self.sandbox_id)
        self.sandbox_pid = info["State"]["Pid"]
        self.pod_ip = info["NetworkSettings"]["IPAddress"]
        self.publish()

    def _mount(self) -> None:
        reported = ""
        while True:
            self._check()
            try:
                self.volumes.setup()
                return
            except MountError as exc:
                if str(exc) != reported:
                    reported = str(exc)
                    self.event(WARNING, "FailedMount", reported)
            self._sleep(TICK * 2)

    def _run_init_containers(self) -> None:
        for spec, status in zip(self.pod["spec"].get("initContainers") or (), self.init):
            while True:
                self._check()
                if not self._start(spec, status, init=True):
                    self._sleep(TICK * 4)
                    continue
                code = self._wait_exit(spec, status)
                if code == 0:
                    break
                if self.pod["spec"].get("restartPolicy") == "Never":
                    self.publish(phase="Failed")
                    while True:
                        self._sleep(TICK * 4)
                self._crash_back_off(spec, status, init=True)
        self.initialized = True
        for status in self.main:
            status.state = {"waiting": {"reason": "ContainerCreating"}}
        self.publish()

    def _wait_exit(self, spec: Obj, status: ContainerStatus) -> int:
        while True:
            self._check()
            info = self.docker.inspect_container(self.current[spec["name"]])
            if not info["State"]["Running"]:
                self._terminated(status, info)
                self.publish()
                return int(info["State"]["ExitCode"])
            self._sleep(TICK)

    # --- containers -----------------------------------------------------------------------

    def _lookup(self, kind: str, name: str) -> Obj | None:
        return self.kubelet.kube.store.get(SECRET if kind == "Secret" else CONFIG_MAP, self.namespace, name)

    def _start(self, spec: Obj, status: ContainerStatus, init: bool = False) -> bool:
        """Create and start one container; False (status waiting, events recorded) if it can't be yet."""
        name = spec["name"]
        try:
            image = self.kubelet.puller.ensure(self._live() or self.pod, spec,
                                               f"spec.{'initContainers' if init else 'containers'}{{{name}}}")
            env = container_config.resolve_env(self._live() or self.pod, spec, self._lookup)
            binds, tmpfs = self.volumes.binds(spec)
            host = container_config.host_config(self.pod, spec, self.sandbox_id, binds, tmpfs)
            body = container_config.create_body(self.pod, spec, spec["image"], image.get("Config") or {}, env,
                                                self.labels(name), host)
        except PullError as exc:
            status.state = {"waiting": {"reason": exc.reason, "message": exc.message}}
            self.publish()
            return False
        except (ConfigError, MountError) as exc:
            status.state = {"waiting": {"reason": "CreateContainerConfigError", "message": str(exc)}}
            self.event(WARNING, "Failed", f"Error: {exc}", name, init)
            self.publish()
            return False
        attempt = status.restart_count + (1 if status.container_id else 0)
        created = self.docker.create_container_from_config(
            body, name=f"k8s_{name}_{self.name}_{self.namespace}_{self.uid[:8]}_{attempt}")
        container_id = created["Id"]
        self.kubelet.track(container_id)
        old = self.current.get(name)
        if old:
            if self.previous.get(name):
                self.kubelet.remove_container(self.docker, self.previous[name])
            self.previous[name] = old
            status.last_state = {"terminated": status.terminated} if status.terminated else status.last_state
            status.restart_count += 1
        self.current[name] = container_id
        status.container_id, status.image_id = f"docker://{container_id}", image_id(image, spec["image"])
        self.event(NORMAL, "Created", f"Created container: {name}", name, init)
        try:
            self.docker.start(container_id)
        except Exception as exc:  # noqa: BLE001 - e.g. an executable not found: the kubelet's StartError
            detail = str(getattr(exc, "explanation", None) or exc)
            self.event(WARNING, "Failed", f"Error: {detail}", name, init)
            status.state = {"terminated": {"exitCode": 128, "reason": "StartError", "message": detail,
                                           "startedAt": "1970-01-01T00:00:00Z", "finishedAt": pod_status.now(),
                                           "containerID": status.container_id}}
            status.ready = False
            self.publish()
            return True
        self.event(NORMAL, "Started", f"Started container {name}", name, init)
        started = self.docker.inspect_container(container_id)["State"]["StartedAt"]
        status.state = {"running": {"startedAt": started[:19] + "Z"}}
        status.ready = init or not spec.get("readinessProbe")
        self.prober.started(name)
        self.publish()
        return True

    def _terminated(self, status: ContainerStatus, info: Obj) -> None:
        state = info["State"]
        code = int(state["ExitCode"])
        reason = "OOMKilled" if state.get("OOMKilled") else ("Completed" if code == 0 else "Error")
        status.state = {"terminated": {"exitCode": code, "reason": reason, "startedAt": state["StartedAt"][:19] + "Z",
                                       "finishedAt": state["FinishedAt"][:19] + "Z", "containerID": status.container_id}}
        status.ready = False

    def _crash_back_off(self, spec: Obj, status: ContainerStatus, init: bool = False) -> None:
        """Wait out the restart back-off (first restart at once), reporting CrashLoopBackOff."""
        name = spec["name"]
        period = self._backoff.get(name, 0.0)
        self._backoff[name] = min(self.kubelet.crash_backoff_cap, period * 2 if period else self.kubelet.crash_backoff)
        if not period:
            return
        terminated = status.terminated or {}
        status.last_state = {"terminated": terminated}
        status.state = {"waiting": {"reason": "CrashLoopBackOff",
                                    "message": f"back-off {int(period)}s restarting failed container={name} pod={self.full_name}"}}
        self.publish()
        deadline = time.monotonic() + period
        while time.monotonic() < deadline:
            self.event(WARNING, "BackOff", f"Back-off restarting failed container {name} in pod {self.full_name}", name, init)
            self._sleep(min(2.0, max(0.0, deadline - time.monotonic())))

    def _watch(self) -> None:
        specs = {c["name"]: c for c in self.pod["spec"]["containers"]}
        policy = self.pod["spec"].get("restartPolicy", "Always")
        while True:
            self._check()
            changed = False
            for status in self.main:
                spec = specs[status.name]
                if status.running:
                    info = self.docker.inspect_container(self.current[status.name])
                    if info["State"]["Running"]:
                        changed |= self.prober.probe(spec, status)
                        continue
                    self._terminated(status, info)
                    changed = True
                if status.running:
                    continue
                code = (status.terminated or {}).get("exitCode")
                if status.terminated and (policy == "Never" or (policy == "OnFailure" and code == 0)):
                    continue
                if status.terminated:
                    self.publish()
                    self._crash_back_off(spec, status)
                elif time.monotonic() < self._retry_at.get(status.name, 0.0):
                    continue  # waiting (image, config): the kubelet retries on its next sync
                self._retry_at[status.name] = time.monotonic() + RETRY
                self._start(spec, status)
                changed = True
            if changed:
                self.publish()
            self._sleep(TICK)

    # --- the end --------------------------------------------------------------------------

    def terminate(self, grace: float, graceful: bool) -> None:
        self.grace, self.graceful = grace, graceful
        self.stopping.set()

    def _teardown(self) -> None:
        grace = int(min(self.grace, self.kubelet.max_grace_seconds))
        for status in self.init + self.main:
            container_id = self.current.get(status.name)
            if container_id and status.running:
                self.event(NORMAL, "Killing", f"Stopping container {status.name}", status.name,
                            init=status in self.init)
                with contextlib.suppress(Exception):  # gone already
                    self.docker.stop(container_id, timeout=grace)
        for container_id in [*self.current.values(), *self.previous.values(), self.sandbox_id]:
            if container_id:
                self.kubelet.remove_container(self.docker, container_id)
        self.volumes.teardown()
        if self.graceful:
            store = self.kubelet.kube.store
            with store.changed:
                if self._live() is not None:
                    store.remove(POD, self.namespace, self.name)
        self.docker.close()
