"""The Kubernetes runner: environments as the compiler's objects in one namespace, identity
and ownership in their annotations, SSH and ports through the API server's port-forward."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Any

from dsl.engines.kube import _objects as o
from dsl.engines.kube._apply import Applier
from dsl.engines.kube._client import Kube, KubeStatus, object_path, translate
from dsl.engines.kube._state import newest_per_environment, pod_of, state
from dsl.engines.kube._wait import wait_ready
from dsl.engines.runner import DownResult, EnvState, ImageInfo, RunConflict, UpRequest, UpResult
from dsl.errors import UsageError
from dsl.identity import Claim


class KubeRunner:
    """:class:`dsl.engines.runner.Runner` on a Kubernetes cluster (``k8s``, ``kubernetes://CONTEXT``)."""

    target = "k8s"
    ready_on_up = True  # `up` waits for the Pod's Ready condition (sshd's readiness probe)

    def __init__(self, address: str = "k8s", *, context: str | None = None, namespace: str | None = None) -> None:
        named = address.split("://", 1)[1] if "://" in address else ""
        self.kube = Kube(context or named or None, namespace)
        self.where = self.kube.where
        self.address = f"kubernetes://{self.where.context} (namespace {self.where.namespace})"
        self.namespace = self.where.namespace

    def close(self) -> None:
        self.kube.close()

    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except KubeStatus as exc:
            raise translate(exc, self.where, doing) from exc

    def proxy_args(self) -> tuple[str, ...]:
        """What ``dsl ssh --stdio`` needs to reach this very cluster and namespace again."""
        return ("--target", "k8s", "--kube-context", self.where.context, "-n", self.where.namespace)

    # ---- reading ------------------------------------------------------------------------

    def image(self, ref: str) -> ImageInfo:
        # The cluster pulls it; nothing here can inspect it (a digest in the reference pins it).
        _, _, digest = ref.partition("@")
        return ImageInfo(ref=ref, id=digest or ref, user=None, known=False)

    def _workloads(self, instance: str = "", *, all_namespaces: bool = False) -> list[dict[str, Any]]:
        found = []
        for kind in o.WORKLOAD_KINDS:
            items, _ = self.kube.list(kind, o.selector(instance), all_namespaces=all_namespaces)
            found += items
        return found

    def _pods(self, instance: str, namespace: str | None = None) -> list[dict[str, Any]]:
        if namespace is None or namespace == self.namespace:
            return self.kube.list("Pod", o.selector(instance))[0]
        items, _ = self.kube.list("Pod", o.selector(instance), all_namespaces=True)
        return [p for p in items if o.meta(p).get("namespace") == namespace]

    def get(self, env_id_: str) -> EnvState | None:
        instance, _, project = env_id_.rpartition(".")
        if not instance:
            return None
        with self._errors(f"cannot read environment {env_id_}"):
            workloads = [w for w in self._workloads(instance) if o.project(w) == project]
            newest = newest_per_environment(workloads).get(env_id_)
            if newest is None:
                return None
            return state(newest, pod_of(newest, self._pods(instance)), self.namespace)

    def generation(self, env_id_: str) -> int:
        instance, _, project = env_id_.rpartition(".")
        if not instance:
            return 0
        with self._errors(f"cannot read environment {env_id_}"):
            found = [item for kind in (*o.RETIRED_KINDS, "PersistentVolumeClaim", "Secret")
                     for item in self.kube.list(kind, o.selector(instance))[0] if o.project(item) == project]
        return max((o.generation(item) for item in found), default=0)

    def list(self, all_namespaces: bool = False) -> list[EnvState]:
        with self._errors("cannot list environments"):
            workloads = self._workloads(all_namespaces=all_namespaces)
            by_namespace: dict[str, list[dict[str, Any]]] = {}
            for w in workloads:
                by_namespace.setdefault(o.meta(w).get("namespace") or self.namespace, []).append(w)
            pods: dict[str, list[dict[str, Any]]] = {}
            for w in workloads:
                if w["kind"] == "Pod":
                    pods.setdefault(o.meta(w).get("namespace") or self.namespace, []).append(w)
            states = []
            for namespace, items in by_namespace.items():
                for workload in newest_per_environment(items).values():
                    states.append(state(workload, pod_of(workload, pods.get(namespace, [])), namespace))
        return sorted(states, key=lambda s: (s.where, s.id))

    def _require(self, env_id_: str, *, running: bool = False) -> EnvState:
        found = self.get(env_id_)
        if found is None:
            raise UsageError(f"no environment {env_id_} in namespace {self.namespace}", hint="see `dsl ls --target k8s`")
        if running and not found.running:
            raise UsageError(f"environment {env_id_} is {found.status}",
                             hint=f"see `kubectl -n {self.namespace} describe pod {found.object_id or found.instance}`")
        return found

    # ---- changing -----------------------------------------------------------------------

    def up(self, request: UpRequest) -> UpResult:
        applier = Applier(self.kube, request, say=lambda line: sys.stderr.write(line + "\n"))
        with self._errors(f"cannot apply {request.identity.id}"):
            live = applier.live_workloads()
            current = next((w for w in live if o.key(w) == o.key(applier.workload)), None)
            if current is not None and _unchanged(current, applier.workload):
                pod = pod_of(current, self._pods(applier.instance))
                if pod is not None and o.is_ready(pod):
                    return UpResult("unchanged", state(current, pod, self.namespace))
            applier.refuse_if_newer(live)
            for obj in applier.objects:  # Secrets, PVCs, Service: a refusal leaves what runs alone
                if obj is not applier.workload:
                    applier.put(obj)
            replaced = applier.retire(workloads_only=True)  # before ours: the RWO volumes are free for it
            applier.put(applier.workload)
            replaced += applier.retire()  # again: a writer that raced us, older than ours
            self._still_newest(applier)
            pod = wait_ready(self.kube, lambda pods: _our_pod(applier.workload, pods), applier.instance,
                             request.timeout, lambda: self._superseded(applier))
            workload = self.kube.get(*o.key(applier.workload)) or applier.workload
        previous = max((Claim.from_labels(o.annotations(w)) for w in [*live, *replaced]
                        if o.generation(w) < request.claim.generation), key=lambda c: c.generation, default=None)
        action = "recreated" if previous is not None else "created"
        return UpResult(action, state({**workload, "kind": applier.workload["kind"]}, pod, self.namespace), previous)

    def _still_newest(self, applier: Applier) -> None:
        """After writing: if a newer generation's workload exists, ours goes and we say so."""
        live = applier.live_workloads()
        newest = max(live, key=o.generation, default=None)
        if newest is None or o.generation(newest) <= applier.generation:
            return
        mine = next((w for w in live if o.key(w) == o.key(applier.workload)), None)
        if mine is not None and o.generation(mine) == applier.generation:
            applier.delete(mine)
        raise RunConflict(f"{applier.request.identity.id} was replaced by a newer configuration "
                          f"({Claim.from_labels(o.annotations(newest)).describe()})",
                          hint="run `dsl up` again to apply this build file as the next generation")

    def _superseded(self, applier: Applier) -> str | None:
        live = self.kube.get(*o.key(applier.workload))
        if live is not None and o.generation(live) == applier.generation:
            return None
        newer = applier.newer_claim()
        if newer is not None:
            return f"{applier.request.identity.id} was replaced by a newer configuration ({newer.describe()})"
        if live is None:
            return f"{applier.request.identity.id} was removed while it was starting"
        return None

    def wait_stopped_reason(self, env_id_: str, container: str) -> str | None:
        found = self.get(env_id_)
        if found is None:
            return f"{env_id_} was removed while it was starting"
        if found.object_id != container:
            return f"{env_id_} was replaced by a newer configuration ({found.claim.describe()})"
        return None if found.running else f"{env_id_} is {found.status}"

    def down(self, env_id_: str, *, purge: bool) -> DownResult:
        instance, _, project = env_id_.rpartition(".")
        removed_any = False
        volumes: list[str] = []
        kept: list[str] = []
        with self._errors(f"cannot remove {env_id_}"):
            # Secrets are read only to purge them: `dsl gc` (down without purge) needs no right to them
            kinds = (*o.RETIRED_KINDS, "PersistentVolumeClaim", *(("Secret",) if purge else ()))
            found = {kind: [i for i in self.kube.list(kind, o.selector(instance))[0] if o.project(i) == project]
                     for kind in kinds}
            if not any(found[k] for k in o.WORKLOAD_KINDS) and not any(found.values()):
                raise UsageError(f"no environment {env_id_} in namespace {self.namespace}",
                                 hint="see `dsl ls --target k8s`")
            for kind in kinds:
                for item in found[kind]:
                    if kind == "Pod" and o.owned_by_controller(item):
                        continue
                    if kind in ("PersistentVolumeClaim", "Secret") and not purge:
                        if kind == "PersistentVolumeClaim":
                            kept.append(o.name(item))
                        continue
                    self._delete(item)
                    removed_any = removed_any or kind in o.WORKLOAD_KINDS
                    if kind == "PersistentVolumeClaim":
                        volumes.append(o.name(item))
        return DownResult(env_id_, removed_any, tuple(sorted(volumes)), tuple(sorted(kept)))

    def _delete(self, item: dict[str, Any]) -> None:
        try:
            self.kube.request("DELETE", object_path(item["kind"], self.namespace, o.name(item)),
                              body={"propagationPolicy": "Background"})
        except KubeStatus as exc:
            if exc.code != 404:
                raise

    # ---- talking to it ------------------------------------------------------------------

    def exec(self, env_id_: str, argv: list[str], *, tty: bool, stdin: bool = True) -> int:
        from dsl.engines.kube._streams import run_exec

        found = self._require(env_id_, running=True)
        with self._errors(f"cannot run a command in {env_id_}"):
            return run_exec(self.kube, found.object_id, argv, tty=tty, stdin=stdin)

    def capture(self, env_id_: str, argv: list[str]) -> tuple[int, bytes]:
        from dsl.engines.kube._streams import exec_capture

        found = self._require(env_id_, running=True)
        with self._errors(f"cannot run a command in {env_id_}"):
            return exec_capture(self.kube, found.object_id, argv)

    def logs(self, env_id_: str, *, follow: bool, tail: int) -> Iterator[tuple[str, bytes]]:
        from dsl.engines.kube._logs import container_logs

        found = self._require(env_id_)
        if not found.object_id:
            raise UsageError(f"environment {env_id_} has no Pod now", hint="see `dsl ls --target k8s`")
        with self._errors(f"cannot read the logs of {env_id_}"):
            yield from container_logs(self.kube, found.object_id, running=found.running, follow=follow, tail=tail)

    def ssh_address(self, state_: EnvState) -> tuple[str, int] | None:
        return None  # never published: the port-forward stream of `dsl ssh --stdio` reaches it

    def open_stream(self, env_id_: str) -> Any:
        from dsl.engines.kube._streams import port_stream

        found = self._require(env_id_, running=True)
        ssh = found.endpoint("ssh")
        if ssh is None:
            raise UsageError(f"environment {env_id_} has no SSH port", hint="is it a dev environment?")
        with self._errors(f"cannot reach {env_id_}'s sshd"):
            return port_stream(self.kube, found.object_id, ssh.container_port)

    def forward_ports(self, state_: EnvState) -> contextlib.AbstractContextManager[EnvState] | None:
        from dsl.engines.kube._streams import forwarding

        current: Callable[[], str] = lambda: self._require(state_.id, running=True).object_id  # noqa: E731
        return forwarding(self.kube, state_, current)


def _unchanged(live: dict[str, Any], ours: dict[str, Any]) -> bool:
    return o.annotations(live).get(o.CONTENT_HASH) == o.annotations(ours).get(o.CONTENT_HASH)


def _our_pod(workload: dict[str, Any], pods: list[dict[str, Any]]) -> dict[str, Any] | None:
    if workload["kind"] == "Pod":
        return next((p for p in pods if o.name(p) == o.name(workload) and o.generation(p) == o.generation(workload)),
                    None)
    return pod_of(workload, pods)
