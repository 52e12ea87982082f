"""kube-pod:// end to end on the fake API server with its Docker-backed kubelet: the build's
gRPC runs over the exec API's WebSocket to ``buildctl dial-stdio`` in the builder's Pod.

No buildkitd can be had here, so the Pod's ``buildctl`` is a stand-in that does what
``buildctl dial-stdio`` does — join its stdin/stdout to buildkitd's gRPC socket — with the test
dockerd's BuildKit (``POST /grpc``, upgraded to h2c, through the engine socket mounted into the
Pod) as the buildkitd. Everything on our side is the real path: Pod choice, the exact exec
request, the byte relay both ways, gRPC on top.
"""

from __future__ import annotations

import os
import urllib.parse

import pytest

from compiler.k8s._builder import CONTAINER, builder_labels
from dsl.engines.buildkit import connect, probe_caps
from dsl.errors import EngineError
from tests.fakes.conftest import wait_for

STANDIN = r'''#!/usr/bin/env python3
import os, socket, sys, threading
if sys.argv[1:] != ["dial-stdio"]:
    sys.exit("stand-in buildctl: only dial-stdio")
s = socket.socket(socket.AF_UNIX)
s.connect("/run/buildkit.sock")
s.sendall(b"POST /grpc HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nContent-Length: 0\r\n\r\n")
head = b""
while not head.endswith(b"\r\n\r\n"):
    head += s.recv(1)
def upstream():
    while data := sys.stdin.buffer.read1(65536):
        s.sendall(data)
    s.shutdown(socket.SHUT_WR)
threading.Thread(target=upstream, daemon=True).start()
out = sys.stdout.buffer
while data := s.recv(65536):
    out.write(data)
    out.flush()
'''
INSTALL = ("import os; p = '/usr/local/bin/buildctl'; open(p, 'w').write(os.environ['STANDIN']); "
           "os.chmod(p, 0o755); os.execvp('sleep', ['sleep', 'infinity'])")


def _statefulset(name: str, image: str, docker_socket: str, replicas: int = 1, standin: bool = True) -> dict:
    command = ["python3", "-c", INSTALL] if standin else ["sleep", "infinity"]
    container = {"name": CONTAINER, "image": image, "command": command,
                 "env": [{"name": "STANDIN", "value": STANDIN}],
                 "volumeMounts": [{"name": "engine", "mountPath": "/run/buildkit.sock"}]}
    labels = builder_labels(name)
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name, "labels": labels},
            "spec": {"replicas": replicas, "serviceName": name, "podManagementPolicy": "Parallel",
                     "selector": {"matchLabels": {"envdsl/builder": name}},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [container],
                                           "volumes": [{"name": "engine", "hostPath": {"path": docker_socket}}]}}}}


@pytest.fixture
def kubeconfig(fake_kube_node, monkeypatch):
    from kubernetes.config import kube_config

    monkeypatch.setenv("KUBECONFIG", str(fake_kube_node.kubeconfig))
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(fake_kube_node.kubeconfig))
    yield fake_kube_node.kubeconfig
    assert fake_kube_node.kubelet.errors == []


def _ready(kube, name: str, count: int) -> None:
    from dsl.engines.kube._builder import ready_pods
    from dsl.engines.kube._client import Kube

    client = Kube(None, None)
    try:
        wait_for(lambda: len(ready_pods(client, name)[0]) == count, timeout=60)
    finally:
        client.close()


def test_grpc_runs_over_exec_dial_stdio_to_the_builders_pod(fake_kube_node, kubeconfig, docker_host, base_image):
    socket_path = urllib.parse.urlsplit(docker_host).path
    fake_kube_node.create(_statefulset("bk", base_image, socket_path))
    _ready(fake_kube_node, "bk", 1)
    with connect("kube-pod://bk?namespace=default&context=fake", affinity="ws") as builder:
        caps = probe_caps(builder)  # a gateway build: Solve, Ping, Return over HTTP/2 both ways
        second = probe_caps(builder)
    assert "linux/amd64" in caps.platforms and caps == second
    assert not builder.is_dockerd  # sessions go over Control.Session, pushes from buildkitd itself
    execs = [r for r in fake_kube_node.requests if "/exec?" in r]
    assert execs, fake_kube_node.requests
    path, _, query = execs[0].split(" ", 1)[1].partition("?")
    assert path == "/api/v1/namespaces/default/pods/bk-0/exec"
    assert urllib.parse.parse_qsl(query) == [("command", "buildctl"), ("command", "dial-stdio"),
                                             ("container", "buildkitd"), ("stderr", "true"), ("stdin", "true"),
                                             ("stdout", "true"), ("tty", "false")]


def test_an_image_without_buildctl_is_one_line(fake_kube_node, kubeconfig, docker_host, base_image):
    socket_path = urllib.parse.urlsplit(docker_host).path
    fake_kube_node.create(_statefulset("bare", base_image, socket_path, standin=False))
    _ready(fake_kube_node, "bare", 1)
    with pytest.raises(EngineError) as info:
        connect("kube-pod://bare")
    message = info.value.message
    assert message.startswith("`buildctl dial-stdio` ended at once in builder Pod bare-0: ")
    assert "buildctl" in message.split(": ", 1)[1] and "\n" not in message
    assert "moby/buildkit" in info.value.hint
    assert os.environ.get("KUBECONFIG") == str(kubeconfig)


def test_dsl_build_on_a_kube_pod_builder_goes_to_the_replica_of_its_environment(
        fake_kube_node, kubeconfig, docker_host, base_image, tmp_path):
    """A whole `dsl build` through the exec stream: LLB solve, the session (build context and
    the tar export over Control.Session's FileSend) — and the Pod is the one its environment
    hashes to."""
    import subprocess
    import sys
    import tarfile

    from dsl.engines.kube._builder import pick_pod

    socket_path = urllib.parse.urlsplit(docker_host).path
    fake_kube_node.create(_statefulset("bk", base_image, socket_path, replicas=2))
    _ready(fake_kube_node, "bk", 2)
    project = tmp_path / "ws"
    project.mkdir()
    (project / "build.envd").write_text('def build():\n    base(image="debian:bookworm", dev=False)\n'
                                        '    io.copy(source="hello.txt", target="/hello.txt")\n')
    (project / "hello.txt").write_text("from the context\n")
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
           "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.pop("BUILDKIT_HOST", None)
    env.pop("DSL_CONTEXT", None)
    out = tmp_path / "image.tar"
    result = subprocess.run([sys.executable, "-m", "dsl", "build", "--builder", "kube-pod://bk", "--progress", "plain",
                             "--output", f"type=tar,dest={out}"], cwd=project, env=env, capture_output=True, text=True,
                            timeout=300, stdin=subprocess.DEVNULL, check=False)
    assert result.returncode == 0, result.stderr
    with tarfile.open(out) as tar:
        assert tar.extractfile("hello.txt").read() == b"from the context\n"
    pods = {r.split(" ", 1)[1].split("/exec?")[0].rsplit("/", 1)[1] for r in fake_kube_node.requests if "/exec?" in r}
    assert pods == {pick_pod(["bk-0", "bk-1"], "ws")}  # every connection of this build: one replica


def test_the_start_check_ends_when_buildkitd_speaks(fake_kube_node, kubeconfig, docker_host, base_image,
                                                     monkeypatch):
    """The first stream is watched for an early end (no buildctl, no buildkitd) only until the
    server's first HTTP/2 bytes arrive: a build does not wait out the whole window."""
    import time

    from dsl.engines.kube import _builder

    monkeypatch.setattr(_builder, "_FIRST_WORD", 30.0)
    socket_path = urllib.parse.urlsplit(docker_host).path
    fake_kube_node.create(_statefulset("quick", base_image, socket_path))
    _ready(fake_kube_node, "quick", 1)
    started = time.monotonic()
    with connect("kube-pod://quick", affinity="ws") as builder:
        connected = time.monotonic() - started
        assert "linux/amd64" in probe_caps(builder).platforms
    assert connected < 15, f"connect waited {connected:.1f}s of the 30s window"
