"""``dsl up --target k8s`` end to end, as a user drives it: the fake API server's kubelet runs the
Pods as real containers on the test dockerd, so ``ssh <env>.dsl`` goes through the runner's
port-forward stream (``dsl ssh --stdio``) to a real sshd, and ``dsl exec``/``dsl logs`` reach a
real container.

Per ``--workload``: up → ssh (temporary HOME, the config ``up`` wrote) → change the config →
up → the same PVC with the file written before, a new Pod, ssh reaches the new one → down
keeps the PVCs → down --purge removes them.
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from dsl.identity import project_hash
from tests.engines.docker.conftest import ENV_NAME, WEB, User, dev_image, image, project  # noqa: F401 - fixtures

pytestmark = [pytest.mark.engine,
              pytest.mark.fake_kube(kubelet={"crash_backoff": 1.0, "pull_backoff": 1.0, "max_grace_seconds": 1.0})]

WORKLOADS = ("pod", "statefulset", "deployment")
BUILD = WEB.replace("{base}", "debian:bookworm")


def _claims(cluster) -> dict[str, str]:
    return {c["metadata"]["name"]: c["metadata"]["uid"] for c in cluster.list("PersistentVolumeClaim", "default")}


def _pods(cluster) -> set[str]:
    return {p["metadata"]["uid"] for p in cluster.list("Pod", "default") if not p["metadata"].get("deletionTimestamp")}


@pytest.mark.parametrize("workload", WORKLOADS)
def test_up_ssh_change_up_ssh_down_purge(workload, cluster, kuser, image, tmp_path):  # noqa: F811
    proj = project(tmp_path, BUILD.format(config="one"))
    alias = f"{ENV_NAME}.dsl"
    up = ("up", "--target", "k8s", "--image", image, "--detach", "--workload", workload, "--timeout", "120")
    first = kuser.dsl(*up, cwd=proj)
    assert first.returncode == 0, first.stderr
    assert "created (generation 1)" in first.stdout and f"ssh {alias}" in first.stdout
    login = kuser.ssh(alias, 'echo "$CONFIG"; echo kept > ~/upimage/note; pwd')
    assert login.returncode == 0, login.stderr
    assert login.stdout.splitlines() == ["one", f"/home/envd/{ENV_NAME}"]
    claims, pods = _claims(cluster), _pods(cluster)

    (proj / "build.envd").write_text(BUILD.format(config="two"))
    second = kuser.dsl(*up, cwd=proj)
    assert second.returncode == 0, second.stderr
    assert "recreated" in second.stdout and "generation 2" in second.stdout
    again = kuser.ssh(alias, 'echo "$CONFIG"; cat ~/upimage/note')
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == ["two", "kept"]  # the new Pod, on the same volume
    assert _claims(cluster) == claims
    assert not (_pods(cluster) & pods)

    down = kuser.dsl("down", "--target", "k8s", ENV_NAME, cwd=proj)
    assert down.returncode == 0, down.stderr
    assert _claims(cluster) == claims and "kept volumes" in down.stdout
    purge = kuser.dsl("down", "--target", "k8s", "--purge", ENV_NAME, cwd=proj)
    assert purge.returncode == 0, purge.stderr
    assert _claims(cluster) == {} and cluster.list("Secret", "default") == []


def test_scp_sftp_exec_status_and_logs_through_the_api_server(cluster, kuser, image, tmp_path):  # noqa: F811
    proj = project(tmp_path, BUILD.format(config="one"))
    alias = f"{ENV_NAME}.{project_hash(str(proj))}.dsl"
    result = kuser.dsl("up", "--target", "k8s", "--image", image, "--detach", "--timeout", "120", cwd=proj)
    assert result.returncode == 0, result.stderr
    config = str(kuser.home / ".ssh" / "config")
    local = tmp_path / "payload.bin"
    local.write_bytes(bytes(range(256)) * 4096)  # 1 MiB through the port-forward stream
    copied = subprocess.run(["scp", "-F", config, "-o", "BatchMode=yes", str(local), f"{alias}:payload.bin"],
                            env=kuser.env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert copied.returncode == 0, copied.stderr
    listing = subprocess.run(["sftp", "-F", config, "-o", "BatchMode=yes", "-b", "-", alias], input="ls -l payload.bin\n",
                             env=kuser.env, capture_output=True, text=True, timeout=120)
    assert listing.returncode == 0, listing.stderr
    assert "1048576" in listing.stdout
    piped = kuser.dsl("exec", "--target", "k8s", ENV_NAME, "--", "sh", "-c", "head -c 5; exit 4", cwd=proj,
                      input="hello world")
    assert (piped.returncode, piped.stdout) == (4, "hello"), piped.stderr  # stdin forwarded, status passed
    status = kuser.dsl("exec", "--target", "k8s", ENV_NAME, "--", "sh", "-c", "echo out; echo err >&2; exit 7",
                       cwd=proj)
    assert (status.returncode, status.stdout, status.stderr) == (7, "out\n", "err\n")
    logs = kuser.dsl("logs", "--target", "k8s", ENV_NAME, cwd=proj)
    assert logs.returncode == 0, logs.stderr
    assert "Server listening on 0.0.0.0 port 2222" in logs.stdout
    assert "==> daemon-1 <==" in logs.stdout and "dsl-entrypoint: starting daemon-1" in logs.stdout
    follow = kuser.popen("logs", "--target", "k8s", "-f", ENV_NAME, cwd=proj)
    try:
        seen = set()
        deadline = time.monotonic() + 30
        while not {"entrypoint", "daemon-1"} <= seen and time.monotonic() < deadline:
            seen.add(follow.stdout.readline().split(" | ", 1)[0])
        assert {"entrypoint", "daemon-1"} <= seen  # the Pod's log and the daemon's (by exec), interleaved
    finally:
        follow.kill()
        follow.communicate()
    listed = json.loads(kuser.dsl("ls", "--target", "k8s", "--format", "json", cwd=proj).stdout)
    assert [(r["status"], r["config"]) for r in listed] == [("running", "current")]


@pytest.mark.registry
def test_without_image_up_builds_pushes_to_the_contexts_registry_and_runs_the_digest(cluster, kuser, registry,
                                                                                     ca_bundle, dev_image, tmp_path):  # noqa: F811
    config_dir = tmp_path / "docker-config"
    config_dir.mkdir()
    (config_dir / "config.json").write_text("{}")  # no credentials of this machine's user
    kuser.env.update(DOCKER_CONFIG=str(config_dir), DSL_CA_BUNDLE=ca_bundle)
    made = kuser.dsl("context", "create", "team", "--runner", "k8s", "--registry", f"{registry}/envdsl-e2e",
                     "--namespace", "default", "--use")
    assert made.returncode == 0, made.stderr
    proj = project(tmp_path, BUILD.format(config="pushed"))
    result = kuser.dsl("up", "--detach", "--timeout", "120", "--progress", "plain", cwd=proj, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    (pod,) = cluster.list("Pod", "default")
    ref = pod["spec"]["containers"][0]["image"]
    assert ref.startswith(f"{registry}/envdsl-e2e/{ENV_NAME}@sha256:"), ref
    assert f"pushed: {registry}/envdsl-e2e/{ENV_NAME}@" in result.stderr  # the build's report, on stderr
    login = kuser.ssh(f"{ENV_NAME}.dsl", 'echo "$CONFIG"')
    assert (login.returncode, login.stdout) == (0, "pushed\n"), login.stderr


def test_ports_forwards_the_exposed_port_to_loopback_until_ctrl_c(cluster, kuser, image, tmp_path):  # noqa: F811
    import signal
    import sys
    import time
    import urllib.request

    proj = project(tmp_path, BUILD.format(config="one"))
    assert kuser.dsl("up", "--target", "k8s", "--image", image, "--detach", "--timeout", "120",
                     cwd=proj).returncode == 0
    kuser.ssh(f"{ENV_NAME}.dsl", "echo served > ~/cache/index.html")  # the daemon serves ~/cache
    ports = subprocess.Popen([sys.executable, "-m", "dsl", "ports", "--target", "k8s", ENV_NAME], cwd=proj,
                             env=kuser.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             # a user's terminal gives Ctrl-C its default action; a test run started
                             # in the background may have handed us an ignored SIGINT
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        line = ""
        while "web" not in line:
            line = ports.stdout.readline()
            assert line, ports.stderr.read()
        address = line.split()[1]
        assert address.startswith("127.0.0.1:")
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://{address}/index.html", timeout=10) as answer:  # noqa: S310
                    assert answer.read() == b"served\n"
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    finally:
        ports.send_signal(signal.SIGINT)
        out, err = ports.communicate(timeout=30)
    assert ports.returncode == 0, err
    assert "Traceback" not in err


def test_an_image_the_node_cannot_pull_fails_at_once_with_the_kubelets_reason(cluster, kuser, tmp_path):
    proj = project(tmp_path, BUILD.format(config="one"))
    missing = "127.0.0.1:9/nothing/here@sha256:" + "0" * 64
    result = kuser.dsl("up", "--target", "k8s", "--image", missing, "--detach", "--timeout", "120", cwd=proj)
    assert result.returncode == 1, result.stderr
    assert f"error: cannot pull the image {missing}" in result.stderr
    assert "events of Pod" in result.stderr and "Traceback" not in result.stderr


def test_a_crash_loop_shows_the_containers_last_log_lines(cluster, kuser, image, tmp_path):  # noqa: F811
    # the image's init script is `sleep "${SLOW_START:-0}"`: a bad value makes the entrypoint fail
    body = BUILD.format(config="one").replace('"CONFIG": "one"', '"CONFIG": "one", "SLOW_START": "soon"')
    proj = project(tmp_path, body)
    result = kuser.dsl("up", "--target", "k8s", "--image", image, "--detach", "--timeout", "120", cwd=proj)
    assert result.returncode == 1, result.stderr
    assert "keeps crashing (CrashLoopBackOff" in result.stderr, result.stderr
    assert "  | dsl-entrypoint: runtime.init #1 failed with status 1" in result.stderr  # its last log lines
    assert "events of Pod" in result.stderr and "BackOff" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_claim_no_provisioner_serves_is_named_with_its_storage_class(cluster, kuser, image, tmp_path):  # noqa: F811
    from tests.engines.kube.conftest import WEB as WITH_CLASS  # a PVC of StorageClass fast-ssd, which nobody serves

    proj = project(tmp_path, WITH_CLASS.format(config="one"))
    result = kuser.dsl("up", "--target", "k8s", "--image", image, "--detach", "--timeout", "20", cwd=proj)
    assert result.returncode == 1, result.stderr
    assert "error: the Pod cannot be scheduled: " in result.stderr
    assert "PVC upimage-cache is Pending (StorageClass 'fast-ssd')" in result.stderr
    assert "events of Pod" in result.stderr and "Traceback" not in result.stderr
