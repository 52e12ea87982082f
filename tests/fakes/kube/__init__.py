"""A FAKE Kubernetes API server, for tests only: HTTP on 127.0.0.1, in a thread of the test
process, usable by the real ``kubectl`` (through a generated kubeconfig) and by the
``kubernetes`` Python client.

It is strict where real servers are strict, because the tests of the Kubernetes features rely
on it refusing what a real cluster refuses: the Pod update rule (422 with the real text),
immutable PVC/StatefulSet/Service/Secret fields, server-side apply with field managers and
409 conflicts, ``resourceVersion`` preconditions, strict field validation, DNS names and
labels, the ServiceAccount admission check, ``dryRun=All``. Where unsure it follows the
documented API semantics. Modules, one per concern:

- ``server``: HTTP, the route table (``FakeKube.router``), chunked streaming and the
  WebSocket upgrade (``websocket``: RFC 6455 and the ``v4``/``v5.channel.k8s.io`` protocols);
- ``discovery``, ``openapi``: what kubectl reads before it does anything;
- ``resources``: the served kinds; ``schema``: the 1.32 OpenAPI schema they follow;
- ``store``: objects, the global resourceVersion and the event history;
- ``rest``: get/list/watch routes; ``writes``: the create/update/patch/delete pipeline;
- ``patch``: JSON, merge and strategic merge patches; ``managed`` + ``fieldsets``:
  server-side apply and managedFields; ``strict``: unknown fields;
- ``defaults``: defaulting and admission-added fields; ``validation``: the rules;
- ``selectors``: label and field selectors; ``watch``: watch streams;
- ``streams``: the Pod subresources ``exec``, ``portforward`` (WebSocket) and ``log``, with
  ``exec_session`` and ``port_forward`` relaying them to the containers;
- ``controllers``: optional, explicit stand-ins for the StatefulSet/Deployment controllers
  and a kubelet that marks Pods Ready;
- ``kubelet`` (``FakeKube(kubelet=KubeletOptions(docker_host=...))``, the ``fake_kube_node``
  fixture): a one-node cluster's scheduler, PV binder/provisioner and kubelet running each Pod
  as real containers on a Docker engine — ``pod_worker`` (the Pod's life), ``pod_status``,
  ``probes`` (readiness),
  ``container_config`` (the container as Kubernetes defines it: command/args, env from
  Secrets, user, capabilities), ``volumes`` (PVCs as Docker volumes, emptyDir, Secret
  volumes, fsGroup), ``images`` (pulls and back-off), ``events`` (Events as the components
  write them).

Without the Docker kubelet it is not a cluster: nothing runs, nothing is scheduled, a deleted
Pod (never bound to a node) goes at once, a deleted Namespace takes its objects with it at
once, and the ``default`` ServiceAccount of a new namespace appears synchronously (pass
``auto_service_accounts=False`` to see the refusal a fresh real namespace can give); exec
into a Pod answers as a kubelet without that container would (``container not found``).

With it, a Pod is scheduled once its claims are bound (else ``FailedScheduling``,
Unschedulable), gets a sandbox (its IP is ``podIP``), its volumes, its init containers in
order, then its containers, whose real state is its status (waiting reasons ErrImagePull,
ImagePullBackOff, CreateContainerConfigError, CrashLoopBackOff; restarts with the kubelet's
back-off; readiness probes); a bound Pod's deletion is graceful (``deletionTimestamp``, the
kubelet stops the containers, then the object goes); a claim of a class that exists binds to
a new PersistentVolume backed by a Docker volume that outlives Pods and goes with the claim;
the default StorageClass ``standard`` and each namespace's ``kube-root-ca.crt`` exist.
Deviations, all on purpose: termination grace is capped (``max_grace_seconds``, default 2 s);
a readiness probe runs as soon as the container starts, then every period; a memory-backed
emptyDir is a tmpfs per container (not one shared by the Pod's containers); PVCs have no
``pvc-protection`` finalizer (a claim in use is deleted at once, its Docker volume when the
Pod has gone); container IDs read ``docker://``; port-forward speaks the v4 channel protocol
only (what the kubelet serves to the Python client; kubectl's SPDY tunnelling is not served).

Not modelled (yet): protobuf request bodies (refused with 415, so kubectl's imperative
``create namespace|configmap|secret`` fails; ``create -f`` and ``apply`` send JSON),
aggregated discovery (kubectl falls back to the legacy documents), the status and scale
subresources, attach, SPDY streams, type checks of field values, finalizers, RBAC and
authentication.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from . import discovery, openapi
from .defaults import Allocator
from .kubelet import DockerKubelet, KubeletOptions
from .resources import by_kind
from .rest import ResourceApi
from .server import HttpServer, Router
from .store import Store
from .streams import Streams
from .writes import WriteOptions, Writer

__all__ = ["FakeKube", "KubeletOptions"]


class FakeKube:
    """One fake API server. Use ``with FakeKube.running(tmp_path) as kube:`` or the fixture."""

    def __init__(self, auto_service_accounts: bool = True, controllers: bool = False,
                 kubelet: KubeletOptions | None = None) -> None:
        self.router = Router()
        self.store = Store()
        self.writer = Writer(self.store, Allocator(), auto_service_accounts)
        self.http = HttpServer(self.router)
        discovery.register(self.router, self.http.url.removeprefix("http://"))
        openapi.register(self.router)
        Streams(self).register(self.router)  # before the generic routes: /pods/NAME/exec etc.
        ResourceApi(self.store, self.writer).register(self.router)
        self.kubelet: DockerKubelet | None = None
        if kubelet is not None:
            self.kubelet = DockerKubelet(self, kubelet)
            self.writer.graceful_pods = True  # a bound Pod goes once its kubelet has stopped it
        self.controllers = None
        if controllers:
            from .controllers import Controllers

            self.controllers = Controllers(self)
        for name in ("default", "kube-system", "kube-public", "kube-node-lease"):
            self.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})

    @property
    def url(self) -> str:
        return self.http.url

    @property
    def requests(self) -> list[str]:
        """``METHOD /path?query`` of every request served, in order (for tests to inspect)."""
        return self.http.requests

    def start(self) -> None:
        self.http.start()
        if self.controllers:
            self.controllers.start()
        if self.kubelet:
            self.kubelet.start()

    def stop(self) -> None:
        if self.kubelet:
            self.kubelet.stop()
        self.store.close()
        if self.controllers:
            self.controllers.stop()
        self.http.stop()

    @classmethod
    @contextlib.contextmanager
    def running(cls, directory: Path, **options: Any) -> Iterator[FakeKube]:
        kube = cls(**options)
        kube.start()
        try:
            kube.write_kubeconfig(directory / "kubeconfig")
            yield kube
        finally:
            kube.stop()

    def write_kubeconfig(self, path: Path, namespace: str = "default") -> Path:
        """A kubeconfig for this fake: plain http on loopback, no credentials."""
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake", "namespace": namespace}}],
            "users": [{"name": "fake", "user": {}}],
        }
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        os.chmod(path, 0o600)
        self.kubeconfig = path
        return path

    def api_client(self) -> Any:
        """A ``kubernetes.client.ApiClient`` talking to this fake (close it when done)."""
        from kubernetes import client

        configuration = client.Configuration()
        configuration.host = self.url
        return client.ApiClient(configuration)

    # --- direct access for tests (no HTTP) ------------------------------------------------

    def create(self, obj: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        rtype = by_kind(obj["kind"], obj["apiVersion"].rpartition("/")[0])
        namespace = namespace or obj.get("metadata", {}).get("namespace") or ("default" if rtype.namespaced else None)
        return self.writer.create(rtype, namespace, obj, WriteOptions(False, "fake-kube-test", "Strict"))

    def get(self, kind: str, name: str, namespace: str | None = "default", group: str = "") -> dict[str, Any] | None:
        rtype = by_kind(kind, group)
        return self.store.get(rtype, namespace if rtype.namespaced else None, name)

    def list(self, kind: str, namespace: str | None = None, group: str = "") -> list[dict[str, Any]]:
        return self.store.list(by_kind(kind, group), namespace)[0]
