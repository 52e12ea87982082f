"""Fixtures for the real engines that `scripts/test` (via `scripts/engines up`) starts.

Tests that need an engine take one of these fixtures. When the engine is absent they skip with
the reason, except under ``CI=true``, where an engine that can't be reached is a failure.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# Every `dsl` the tests start runs in its own process: a warm server per test package root and
# search path would outlive the run (tests/warm and the warm engine build opt back in).
os.environ["DSL_WARM"] = "0"
_HOW = "start the engines with `bash scripts/engines up` and export what it prints, or run `bash scripts/test`"


def engine_missing(reason: str) -> None:
    """Skip (developer machine) or fail (CI) because an engine is not available."""
    message = f"{reason}; {_HOW}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"engine unavailable under CI=true: {message}", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def docker_host() -> str:
    """The DOCKER_HOST URL of a dockerd that answers ``/_ping``."""
    host = os.environ.get("DOCKER_HOST", "")
    if not host:
        engine_missing("DOCKER_HOST is not set")
    import docker

    try:
        docker.APIClient(base_url=host, version="auto", timeout=10).ping()
    except Exception as exc:  # any failure to reach it means "no engine"
        engine_missing(f"dockerd at {host} does not answer: {exc}")
    return host


@pytest.fixture(scope="session")
def docker_api(docker_host: str):
    """A ``docker.APIClient`` for the test dockerd."""
    import docker

    client = docker.APIClient(base_url=docker_host, version="auto", timeout=120)
    yield client
    client.close()


@pytest.fixture(scope="session")
def base_image(docker_api) -> str:
    """A Debian bookworm base image (python3, python3-venv) present in the test dockerd."""
    name = os.environ.get("DSL_TEST_BASE_IMAGE", "debian:bookworm")
    import docker

    try:
        docker_api.inspect_image(name)
    except docker.errors.ImageNotFound:
        engine_missing(f"base image {name} is not in the test dockerd")
    # No registry is reachable here: the dev runtime bundle is built from the same local Debian
    # (every `dsl` the tests start inherits it); a developer's own setting is kept.
    os.environ.setdefault("DSL_RUNTIME_BASE", name)
    return name


@pytest.fixture(scope="session")
def registry() -> str:
    """``host:port`` of a running docker-registry on loopback."""
    addr = os.environ.get("DSL_TEST_REGISTRY", "")
    if not addr:
        engine_missing("DSL_TEST_REGISTRY is not set")
    host, _, port = addr.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
    except OSError as exc:
        engine_missing(f"registry at {addr} does not answer: {exc}")
    return addr


@pytest.fixture(scope="session")
def ca_bundle() -> str:
    """The host's CA bundle: builds need it to reach PyPI through the TLS-re-signing proxy."""
    path = os.environ.get("DSL_TEST_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    if not Path(path).is_file():
        engine_missing(f"CA bundle {path} not found")
    return path


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "fake_kube(**options): options of the fake_kube/fake_kube_node fixtures' "
                            "FakeKube (controllers=True, auto_service_accounts=False, kubelet={...KubeletOptions})")


@pytest.fixture
def fake_kube(request: pytest.FixtureRequest, tmp_path: Path):
    """A FAKE Kubernetes API server (``tests/fakes/kube``) on 127.0.0.1, stopped at teardown.

    ``fake_kube.kubeconfig`` points kubectl at it; ``fake_kube.api_client()`` is a
    ``kubernetes`` client for it. ``@pytest.mark.fake_kube(controllers=True)`` passes options.
    """
    from fakes.kube import FakeKube

    marker = request.node.get_closest_marker("fake_kube")
    with FakeKube.running(tmp_path, **(marker.kwargs if marker else {})) as kube:
        yield kube


@pytest.fixture
def fake_kube_node(request: pytest.FixtureRequest, tmp_path: Path, docker_host: str, base_image: str):
    """A FAKE Kubernetes API server whose Pods run as real containers on the test dockerd.

    The fake of ``fake_kube`` with its controllers (StatefulSet, Deployment) and a
    Docker-backed kubelet (``tests/fakes/kube/kubelet.py``): Pods are scheduled, pull their
    image, run, report real status and events, and serve exec, port-forward and logs through
    the API server's WebSocket/HTTP streams, as a one-node cluster with a default StorageClass
    ``standard`` does. ``fake_kube_node.kubeconfig`` and ``.api_client()`` as for ``fake_kube``;
    ``fake_kube_node.kubelet.errors`` lists unexpected kubelet failures (assert it is empty).
    ``@pytest.mark.fake_kube(kubelet={"crash_backoff": 1.0})`` changes kubelet options
    (``KubeletOptions``); other marker options go to ``FakeKube``. At teardown every container
    and Docker volume the kubelet made is removed. Skips (fails under CI=true) without dockerd.
    """
    from fakes.kube import FakeKube, KubeletOptions

    marker = request.node.get_closest_marker("fake_kube")
    options = dict(marker.kwargs) if marker else {}
    kubelet = KubeletOptions(docker_host=docker_host, pause_image=base_image, **options.pop("kubelet", {}))
    options.setdefault("controllers", True)
    with FakeKube.running(tmp_path, kubelet=kubelet, **options) as kube:
        yield kube


@pytest.fixture
def kubectl(fake_kube, tmp_path: Path):
    """Run the real kubectl against ``fake_kube``: ``kubectl("get", "pods")`` → CompletedProcess.

    It never raises on a non-zero exit (tests assert on it); its discovery cache lives in the
    test's temporary directory.
    """
    import shutil
    import subprocess

    binary = shutil.which("kubectl")
    if binary is None:
        engine_missing("kubectl is not installed (it comes with the machine image, not from Debian or PyPI)")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "KUBECONFIG": str(fake_kube.kubeconfig)}

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([binary, f"--cache-dir={tmp_path / 'kube-cache'}", *args], check=False, env=env, input=stdin,
                              capture_output=True, text=True, timeout=60)

    return run
