"""A Pod that cannot become Ready ends ``dsl up --target k8s`` with one clear message naming the
cause, the Pod's events printed, exit 1 — not a silent wait until the timeout.

The fake has no kubelet here: each test plays the kubelet's part, writing the status a real
one would write (ErrImagePull, CrashLoopBackOff, ...) into the fake's store once the Pod exists.
"""

from __future__ import annotations

import time

import pytest

from tests.engines.kube.conftest import IMAGE, WEB, PodPlay, project, unschedulable, waiting

pytestmark = pytest.mark.fake_kube(controllers=False)


def _up(kube_user, tmp_path, *args):
    return kube_user.up(project(tmp_path, WEB.format(config="one")), *args)


def test_an_image_that_cannot_be_pulled(fake_kube, kube_user, tmp_path):
    play = PodPlay(fake_kube, waiting("ErrImagePull", 'failed to pull "registry.example/team/ws": 401 Unauthorized'),
                   events=[{"reason": "Failed", "message": "Failed to pull image: 401 Unauthorized"}])
    with play:
        started = time.monotonic()
        result = _up(kube_user, tmp_path, "--timeout", "60")
    assert result.returncode == 1, result.stderr
    assert time.monotonic() - started < 30  # at once, not at the timeout
    assert "error: cannot pull the image registry.example/team/ws@sha256:" in result.stderr
    assert "ErrImagePull: failed to pull" in result.stderr and "401 Unauthorized" in result.stderr
    assert "events of Pod ws-" in result.stderr and "Warning Failed: Failed to pull image" in result.stderr
    assert result.stderr.count("error:") == 1 and "Traceback" not in result.stderr


def test_a_pvc_that_stays_pending_names_the_claim_and_its_storage_class(fake_kube, kube_user, tmp_path):
    message = "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims."
    play = PodPlay(fake_kube, unschedulable(message), events=[{"reason": "FailedScheduling", "message": message}])
    with play:
        result = _up(kube_user, tmp_path, "--timeout", "3")
    assert result.returncode == 1, result.stderr
    assert "error: the Pod cannot be scheduled: PVC " in result.stderr
    assert "PVC ws-cache is Pending (StorageClass 'fast-ssd')" in result.stderr
    assert "PVC ws-workdir is Pending (no StorageClass: the cluster's default)" in result.stderr
    assert "Warning FailedScheduling: 0/1 nodes are available" in result.stderr
    assert result.stderr.count("error:") == 1 and "Traceback" not in result.stderr


def test_a_crash_loop_says_so(fake_kube, kube_user, tmp_path):
    play = PodPlay(fake_kube, waiting("CrashLoopBackOff", "back-off 40s restarting failed container"),
                   events=[{"reason": "BackOff", "message": "Back-off restarting failed container environment"}])
    with play:
        result = _up(kube_user, tmp_path, "--timeout", "60")
    assert result.returncode == 1, result.stderr
    assert "container environment keeps crashing (CrashLoopBackOff, exit status 2)" in result.stderr
    assert "Warning BackOff: Back-off restarting failed container" in result.stderr
    assert result.stderr.count("error:") == 1 and "Traceback" not in result.stderr


def test_a_missing_secret_key_is_a_config_error(fake_kube, kube_user, tmp_path):
    play = PodPlay(fake_kube, waiting("CreateContainerConfigError", 'secret "ws-jupyter" not found'))
    with play:
        result = _up(kube_user, tmp_path, "--timeout", "60")
    assert result.returncode == 1, result.stderr
    assert 'container environment cannot start (CreateContainerConfigError: secret "ws-jupyter" not found)' \
        in result.stderr


def test_a_pod_that_never_gets_ready_times_out(fake_kube, kube_user, tmp_path):
    started = time.monotonic()
    result = _up(kube_user, tmp_path, "--timeout", "2")
    assert result.returncode == 1, result.stderr
    assert "was not Ready within 2s (Pod ws-" in result.stderr and "is Pending, not Ready" in result.stderr
    assert "--timeout SECONDS" in result.stderr
    assert time.monotonic() - started < 20


def test_unschedulable_for_resources_waits_and_the_timeout_names_why(fake_kube, kube_user, tmp_path):
    """An autoscaler may add a node for CPU: no early failure, but the timeout says what blocked."""
    serving = project(tmp_path, 'def build():\n    base(image="debian:bookworm", dev=False)\n')
    play = PodPlay(fake_kube, unschedulable("0/1 nodes are available: 1 Insufficient cpu."))
    with play:
        started = time.monotonic()
        result = kube_user.up(serving, "--timeout", "4")
    assert result.returncode == 1, result.stderr
    assert time.monotonic() - started >= 4
    assert "not Ready within 4s (the Pod cannot be scheduled: 0/1 nodes are available: 1 Insufficient cpu.)" \
        in result.stderr


def test_a_start_cut_short_by_a_newer_generation_says_it_was_replaced(fake_kube, kube_user, tmp_path):
    """A newer ``dsl up`` writes the Service first, then deletes our Pod, then writes its own: in
    between, our Pod is gone and no newer workload exists yet; the Service already names the
    newer generation, so that is what the loser says, not that someone removed it."""
    from fakes.kube.resources import by_kind

    directory = project(tmp_path, WEB.format(config="one"))
    proc = kube_user.popen("up", "--target", "k8s", "--image", IMAGE, "--detach", "--timeout", "60",
                           "--generation", "1", cwd=directory)
    deadline = time.monotonic() + 60
    while not fake_kube.list("Pod") and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    (pod,) = fake_kube.list("Pod")
    (service,) = fake_kube.list("Service")
    service["metadata"]["annotations"]["envdsl/generation"] = "2"
    fake_kube.store.write(by_kind("Service"), service, "MODIFIED")
    fake_kube.store.remove(by_kind("Pod"), "default", pod["metadata"]["name"])
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    assert "was replaced by a newer configuration (generation 2" in err, err
    assert "removed while it was starting" not in err and "Traceback" not in err
