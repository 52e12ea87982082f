"""What the Kubernetes runner tests share: a user with a private HOME whose kubeconfig points at
the fake API server, running ``dsl`` as a user runs it (a subprocess), and helpers that play
the cluster's part (the kubelet's status writes, events) straight into the fake's store."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[3]
DIGEST = "sha256:" + "ab" * 32
IMAGE = f"registry.example/team/ws@{DIGEST}"

# A dev environment with a port of its own (so a Service is compiled) and a data volume.
WEB = '''\
def build():
    base(image="debian:bookworm", dev=True)
    runtime.expose(envd_port=8000, service="web")
    runtime.kubernetes.mount(name="cache", path="/home/envd/cache", size="1Gi", storage_class="fast-ssd")
    runtime.environ(env={{"CONFIG": "{config}"}})
'''


@dataclass
class KubeUser:
    """A user with a fresh HOME and config dirs whose kubeconfig is the fake's."""

    home: Path
    env: dict[str, str]

    def dsl(self, *args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "dsl", *args], cwd=cwd or self.home, env=self.env,
                              capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def popen(self, *args: str, cwd: Path) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-m", "dsl", *args], cwd=cwd, env=self.env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)

    def up(self, project: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return self.dsl("up", "--target", "k8s", "--image", IMAGE, "--detach", *args, cwd=project, timeout=timeout)


@pytest.fixture
def kube_user(fake_kube, tmp_path) -> KubeUser:
    home = tmp_path / "home"
    return KubeUser(home, private_env(home, fake_kube.kubeconfig, "DOCKER_HOST"))


def private_env(home: Path, kubeconfig: Path, *drop: str) -> dict[str, str]:
    """This process's environment for a user with a fresh ``home`` and ``kubeconfig``, without
    the test runner's own context, key and token settings (nor ``drop``)."""
    home.mkdir()
    dropped = ("DSL_CONTEXT", "DSL_SSH_KEY", "DSL_NO_SSH_CONFIG", "DSL_JUPYTER_TOKEN", "KUBECONFIG", *drop)
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / "cfg"), XDG_CACHE_HOME=str(home / "cache"),
               KUBECONFIG=str(kubeconfig), PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""))
    return env


def project(root: Path, body: str, name: str = "ws") -> Path:
    """A project directory with a build file; its own identity (the directory's path hash)."""
    directory = root / uuid.uuid4().hex[:6] / name
    directory.mkdir(parents=True)
    (directory / "build.envd").write_text(body)
    return directory


def objects(kube, kind: str, namespace: str = "default") -> dict[str, dict[str, Any]]:
    group = "apps" if kind in ("StatefulSet", "Deployment") else ""
    return {o["metadata"]["name"]: o for o in kube.list(kind, namespace, group=group)}


class PodPlay:
    """Plays the kubelet for the next Pod the runner makes: once it appears, ``change(pod)``
    edits it (its status) and it is written back, as the kubelet writes status."""

    def __init__(self, kube, change: Callable[[dict[str, Any]], None], events: list[dict[str, Any]] = ()) -> None:
        self.kube, self.change, self.events = kube, change, list(events)
        self.seen: set[str] = {p["metadata"]["name"] for p in kube.list("Pod")}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PodPlay:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=5)

    def _run(self) -> None:
        from fakes.kube.resources import by_kind

        pod_type = by_kind("Pod")
        while not self.stop.is_set():
            for pod in self.kube.list("Pod"):
                name = pod["metadata"]["name"]
                if name in self.seen:
                    continue
                self.seen.add(name)
                changed = copy.deepcopy(pod)
                self.change(changed)
                self.kube.store.write(pod_type, changed, "MODIFIED")
                for event in self.events:
                    self.kube.create(event_for(pod, **event))
            time.sleep(0.02)


def event_for(pod: dict[str, Any], *, reason: str, message: str, type: str = "Warning") -> dict[str, Any]:
    meta = pod["metadata"]
    return {"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{meta['name']}.{uuid.uuid4().hex[:8]}", "namespace": meta["namespace"]},
            "involvedObject": {"kind": "Pod", "name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"]},
            "reason": reason, "message": message, "type": type, "count": 1,
            "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:00:00Z",
            "source": {"component": "kubelet"}}


def waiting(reason: str, message: str = "") -> Callable[[dict[str, Any]], None]:
    """A status change: the environment container waits with ``reason``."""
    def change(pod: dict[str, Any]) -> None:
        container = pod["spec"]["containers"][0]
        pod["status"].update({"phase": "Pending", "containerStatuses": [{
            "name": container["name"], "image": container["image"], "imageID": "", "ready": False,
            "restartCount": 3 if reason == "CrashLoopBackOff" else 0, "started": False,
            "state": {"waiting": {"reason": reason, "message": message}},
            "lastState": {"terminated": {"exitCode": 2, "reason": "Error"}} if reason == "CrashLoopBackOff" else {},
        }]})
    return change


def unschedulable(message: str) -> Callable[[dict[str, Any]], None]:
    def change(pod: dict[str, Any]) -> None:
        pod["status"].update({"phase": "Pending", "conditions": [{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message,
            "lastProbeTime": None, "lastTransitionTime": "2026-01-01T00:00:00Z"}]})
    return change


@pytest.fixture
def recorded(fake_kube) -> Iterator[list[tuple[str, str, str, bytes]]]:
    """Every request the fake serves, with its body: ``(method, path, content type, body)``."""
    calls: list[tuple[str, str, str, bytes]] = []
    dispatch = fake_kube.router.dispatch

    def recording(request):  # noqa: ANN001, ANN202
        calls.append((request.method, request.path, request.content_type, request.body))
        return dispatch(request)

    fake_kube.router.dispatch = recording
    yield calls
    fake_kube.router.dispatch = dispatch


@pytest.fixture
def cluster(fake_kube_node):
    """The fake API server with its controllers and its Docker-backed kubelet (tests/conftest.py)."""
    yield fake_kube_node
    assert fake_kube_node.kubelet.errors == []


@pytest.fixture
def kuser(cluster, tmp_path):
    """A user with a fresh HOME whose kubeconfig is the fake cluster's (ssh helpers of the Docker tests)."""
    from tests.engines.docker.conftest import User

    home = tmp_path / "home"
    return User(home, private_env(home, cluster.kubeconfig))
