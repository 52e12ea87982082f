"""``dsl gc --target k8s`` against the fake API server whose kubelet runs the Pods as real
containers: the activity record is read through the exec stream, an idle environment's
workload goes, its PVC and Secret stay, an open SSH session (through the port-forward) keeps
it; and the calls gc makes are exactly what the CronJob's Role grants (compiler.k8s.GC_RULES)."""

from __future__ import annotations

import re
import subprocess
import time

import pytest

from compiler.k8s import GC_RULES
from tests.engines.docker.conftest import ENV_NAME, WEB, User, dev_image, image, project  # noqa: F401 - fixtures

pytestmark = [pytest.mark.engine,
              pytest.mark.fake_kube(kubelet={"crash_backoff": 1.0, "pull_backoff": 1.0, "max_grace_seconds": 1.0})]

BUILD = WEB.replace("{base}", "debian:bookworm")
_PATH = re.compile(r"^/apis?/(?:(?P<group>[a-z.]+)/)?v1/namespaces/[^/]+/(?P<plural>[a-z]+)(?P<name>/[^/]+)?"
                   r"(?P<sub>/[a-z]+)?$")


def _permissions(calls: list[tuple[str, str]]) -> set[tuple[str, str, str]]:
    """(apiGroup, resource, verb) of each call, as the API server's authorizer names them."""
    out = set()
    for method, path in calls:
        m = _PATH.match(path)
        assert m, path
        group, resource = m["group"] or "", m["plural"] + (m["sub"] or "")
        if m["sub"] == "/exec":  # a WebSocket GET: `get` up to 1.34, `create` too from 1.35
            out |= {(group, resource, "get"), (group, resource, "create")}
            continue
        verb = {"GET": "get" if m["name"] else "list", "DELETE": "delete"}[method]
        out.add((group, resource, verb))
    return out


def test_gc_reads_the_record_through_exec_keeps_the_busy_removes_the_idle_keeps_the_data(
        cluster, kuser, image, tmp_path):  # noqa: F811 - the image fixture
    names = {}
    for workload in ("pod", "statefulset", "deployment"):  # each kind's delete is a call of its own
        proj = project(tmp_path, BUILD.format(config=workload), name=f"gc{workload}")
        up = kuser.dsl("up", "--target", "k8s", "--image", image, "--detach", "--timeout", "120", "--workload",
                       workload, cwd=proj)
        assert up.returncode == 0, up.stderr
        names[workload] = up.stdout.split(":", 1)[0].strip()
    calls: list[tuple[str, str]] = []
    dispatch = cluster.router.dispatch

    def gc(*args: str) -> subprocess.CompletedProcess[str]:
        def recording(request):
            calls.append((request.method, request.path))
            return dispatch(request)

        cluster.router.dispatch = recording
        try:
            return kuser.dsl("gc", "--target", "k8s", *args)
        finally:
            cluster.router.dispatch = dispatch

    def lines(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
        assert result.returncode == 0, result.stderr
        return dict(line.split(": ", 1) for line in result.stdout.splitlines())

    busy = names["pod"]
    session = subprocess.Popen(["ssh", "-F", str(kuser.home / ".ssh" / "config"), "-o", "BatchMode=yes",
                                "gcpod.dsl", "sleep 300"], env=kuser.env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30  # (not recorded: the session's own port-forward is not gc's)
        while "1 open SSH session" not in (seen := kuser.dsl("gc", "--target", "k8s", "--idle", "1s", "--dry-run")).stdout:
            assert time.monotonic() < deadline, seen.stdout + seen.stderr
            time.sleep(0.5)
        first = lines(gc("--idle", "1s"))
        assert first[busy] == "kept: 1 open SSH session"
        for workload in ("statefulset", "deployment"):
            assert first[names[workload]].startswith("removed: idle ") and "no login since" in first[names[workload]]
            assert "kept volumes" in first[names[workload]]
    finally:
        session.terminate()  # ssh ends its ProxyCommand (dsl ssh --stdio), the connection closes
        session.wait()
    pods = [p["metadata"]["name"] for p in cluster.list("Pod", "default")]
    deadline = time.monotonic() + 30  # the sweep notices the ended session within 10s (a command the
    # connection left running does not count: `sleep 300` runs on)
    while not (dry := lines(gc("--idle", "1s", "--dry-run")))[busy].startswith("would remove: idle "):
        assert time.monotonic() < deadline, dry
        time.sleep(1)
    assert "last logout" in dry[busy]
    assert [p["metadata"]["name"] for p in cluster.list("Pod", "default")] == pods  # --dry-run: nothing changed

    removed = lines(gc("--idle", "1s"))
    assert removed[busy].startswith("removed: idle ") and "kept volumes" in removed[busy]
    live = [p for p in cluster.list("Pod", "default") if not p["metadata"].get("deletionTimestamp")]
    assert live == [] and cluster.list("Service", "default") == []
    for kind in ("StatefulSet", "Deployment"):
        assert cluster.list(kind, "default", "apps") == []
    assert len(cluster.list("PersistentVolumeClaim", "default")) >= 3 and len(cluster.list("Secret", "default")) >= 3

    granted = {(group, resource, verb) for group, resource, verbs in GC_RULES for verb in verbs}
    assert _permissions(calls) == granted  # the Role is what gc calls: no more, no fewer
