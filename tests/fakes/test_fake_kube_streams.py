"""exec, port-forward and logs of the fake API server, through the ``kubernetes`` client's own
stream functions, to Pods that the Docker-backed kubelet runs on the test dockerd."""

from __future__ import annotations

import json
import os
import socket
import threading
import time

import pytest
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import portforward, stream

from tests.fakes.conftest import wait_for

# A Pod's tiny servers (the bookworm test image has python3): an upper-casing echo server bound
# to 127.0.0.1 only (a port-forward dials inside the Pod, as the container runtime does), and
# one that says hello then closes.
ECHO = """
import socket, threading
def serve(conn):
    while data := conn.recv(4096):
        conn.sendall(data.upper())
    conn.close()
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 7000)); s.listen()
h = socket.socket(); h.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
h.bind(("0.0.0.0", 7001)); h.listen()
def hello():
    while True:
        c, _ = h.accept(); c.sendall(b"hello\\n"); c.close()
threading.Thread(target=hello, daemon=True).start()
print("serving", flush=True)
while True:
    conn, _ = s.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
"""


def pod(name: str, image: str, command: list[str], **spec) -> dict:
    container = {"name": "app", "image": image, "command": command}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {"containers": [container], **spec}}


def running(core, name: str):
    return wait_for(lambda: (p := core.read_namespaced_pod(name, "default")).status.phase == "Running"
                    and p.status.container_statuses[0].ready and p)


@pytest.fixture
def server_pod(core, base_image):
    core.create_namespaced_pod("default", pod("server", base_image, ["python3", "-u", "-c", ECHO]))
    running(core, "server")
    wait_for(lambda: "serving" in core.read_namespaced_pod_log("server", "default"))
    return "server"


def run_exec(core, name: str, command: list[str], **options):
    ws = stream(core.connect_get_namespaced_pod_exec, name, "default", command=command, stdout=True,
                stderr=options.pop("stderr", True), stdin=options.pop("stdin", False), tty=options.pop("tty", False),
                _preload_content=False, **options)
    return ws


def test_exec_returns_stdout_stderr_and_the_exit_code(core, server_pod):
    ws = run_exec(core, server_pod, ["sh", "-c", 'echo "out $0 $1"; echo "err" >&2; exit 3', "first arg", "b"])
    ws.run_forever(timeout=20)
    assert ws.subprotocol == "v5.channel.k8s.io"  # the client offers v5 first, as a 1.32 server takes it
    assert ws.read_stdout() == "out first arg b\n"  # every repeated command= parameter, in order
    assert ws.read_stderr() == "err\n"
    assert ws.returncode == 3

    ok = run_exec(core, server_pod, ["true"])
    ok.run_forever(timeout=20)
    assert ok.returncode == 0


def test_exec_without_preload_gives_the_output_as_one_string(core, server_pod):
    out = stream(core.connect_get_namespaced_pod_exec, server_pod, "default", command=["sh", "-c", "id -u; pwd"],
                 stdout=True, stderr=True, stdin=False, tty=False)
    assert out == "0\n/\n"


def test_exec_stdin_is_closed_by_a_v5_half_close_and_a_tty_is_honoured(core, server_pod):
    ws = run_exec(core, server_pod, ["sh", "-c", "wc -c; echo done"], stdin=True)
    ws.write_stdin("twelve bytes")
    ws.close_channel(0)
    ws.run_forever(timeout=20)
    assert ws.read_stdout().split() == ["12", "done"] and ws.returncode == 0

    tty = run_exec(core, server_pod, ["sh", "-c", "test -t 0 && test -t 1 && stty size"], stdin=True, stderr=False, tty=True)
    tty.write_channel(4, json.dumps({"Width": 91, "Height": 33}))
    time.sleep(0.3)
    tty.run_forever(timeout=20)
    assert tty.returncode == 0, tty.read_all()


def test_exec_speaks_v4_when_the_client_asks_for_it(core, server_pod):
    from kubernetes.stream import ws_client

    configuration = core.api_client.configuration
    url = f"{configuration.host}/api/v1/namespaces/default/pods/{server_pod}/exec"
    old = ws_client.WSClient(configuration, ws_client.get_websocket_url(
        url, [("command", ["sh", "-c", "echo v4; exit 7"]), ("stdout", "true")]),
        {"sec-websocket-protocol": "v4.channel.k8s.io"}, capture_all=True)
    old.run_forever(timeout=20)
    assert old.subprotocol == "v4.channel.k8s.io"
    assert old.read_stdout() == "v4\n" and old.returncode == 7


def test_a_command_that_cannot_start_is_an_internal_error_not_an_exit_code(core, server_pod):
    ws = run_exec(core, server_pod, ["no-such-command", "x"])
    ws.run_forever(timeout=20)
    assert ws.read_stdout() == ""
    status = json.loads(ws.read_channel(3))
    assert status["reason"] == "InternalError" and status["code"] == 500
    assert status["message"].startswith("Internal error occurred: error executing command in container: ")
    assert 'exec: "no-such-command": executable file not found in $PATH' in status["message"]
    assert list(status["details"]["causes"][0]) == ["message"]  # no exit code to parse, as from a real node


def test_exec_over_the_base64_channel_protocol(core, server_pod):
    import base64

    import websocket as websocket_client

    host = core.api_client.configuration.host.replace("http://", "ws://")
    ws = websocket_client.create_connection(
        f"{host}/api/v1/namespaces/default/pods/{server_pod}/exec?command=echo&command=b64&stdout=true",
        subprotocols=["v4.base64.channel.k8s.io"])
    assert ws.subprotocol == "v4.base64.channel.k8s.io"
    messages = []
    while True:
        try:
            opcode, data = ws.recv_data()
        except websocket_client.WebSocketConnectionClosedException:
            break
        if opcode == websocket_client.ABNF.OPCODE_CLOSE:
            break
        messages.append((chr(data[0]), base64.b64decode(data[1:])))
    assert messages[0] == ("1", b"") and ("1", b"b64\n") in messages
    assert messages[-1][0] == "3" and json.loads(messages[-1][1])["status"] == "Success"


def test_the_real_kubectl_execs_and_reads_logs(fake_kube_node, server_pod, tmp_path):
    import shutil
    import subprocess

    binary = shutil.which("kubectl")
    if binary is None:
        pytest.skip("kubectl is not installed")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "KUBECONFIG": str(fake_kube_node.kubeconfig)}

    def kubectl(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([binary, f"--cache-dir={tmp_path / 'cache'}", *args], check=False, env=env, input=stdin,
                              capture_output=True, text=True, timeout=60)

    done = kubectl("exec", server_pod, "--", "sh", "-c", "echo out; echo err >&2; exit 4")
    assert (done.returncode, done.stdout) == (4, "out\n") and done.stderr.startswith("err\n")
    piped = kubectl("exec", "-i", server_pod, "--", "wc", "-c", stdin="12345")
    assert (piped.returncode, piped.stdout) == (0, "5\n")
    logs = kubectl("logs", server_pod)
    assert logs.stdout == "serving\n"


def test_streams_refuse_what_a_real_server_refuses(core, server_pod, base_image):
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_pod_log("nobody", "default")
    assert missing.value.status == 404 and json.loads(missing.value.body)["message"] == 'pods "nobody" not found'

    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "slow"},
             "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "nope",
                      "resources": {"requests": {"storage": "1Gi"}}}}
    core.create_namespaced_persistent_volume_claim("default", claim)
    core.create_namespaced_pod("default", pod("unbound", base_image, ["sleep", "60"], volumes=[
        {"name": "data", "persistentVolumeClaim": {"claimName": "slow"}}]))
    with pytest.raises(ApiException) as unscheduled:
        stream(core.connect_get_namespaced_pod_exec, "unbound", "default", command=["true"], stdout=True,
               stderr=True, stdin=False, tty=False)
    assert "pod unbound does not have a host assigned" in unscheduled.value.reason
    assert core.read_namespaced_pod_log("unbound", "default") == ""  # nothing to stream yet

    with pytest.raises(ApiException) as bad_container:
        core.read_namespaced_pod_log(server_pod, "default", container="other")
    assert json.loads(bad_container.value.body)["message"] == "container other is not valid for pod server"


def test_port_forward_reaches_a_server_bound_to_the_pods_loopback(core, server_pod):
    forward = portforward(core.connect_get_namespaced_pod_portforward, server_pod, "default", ports="7000,7001")
    echo, hello = forward.socket(7000), forward.socket(7001)
    echo.sendall(b"ping")
    assert echo.recv(100) == b"PING"
    assert hello.recv(100) == b"hello\n"
    echo.close()
    hello.close()


def test_when_the_pods_side_closes_the_forwarded_socket_ends(core, server_pod):
    forward = portforward(core.connect_get_namespaced_pod_portforward, server_pod, "default", ports="7001")
    hello = forward.socket(7001)
    hello.settimeout(10)
    assert hello.recv(100) == b"hello\n"
    assert hello.recv(100) == b""  # the server closed its end: the kubelet ends the stream


def test_several_port_forwards_at_once(core, server_pod):
    results: dict[int, bytes] = {}

    def one(index: int) -> None:
        forward = portforward(core.connect_get_namespaced_pod_portforward, server_pod, "default", ports="7000")
        sock = forward.socket(7000)
        sock.settimeout(20)
        payload = f"client {index} ".encode() * 2000  # several frames each way
        sock.sendall(payload)
        got = b""
        while len(got) < len(payload):
            got += sock.recv(65536)
        results[index] = got
        sock.close()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert {i: r == (f"client {i} ".encode() * 2000).upper() for i, r in results.items()} == {i: True for i in range(6)}


def test_port_forward_to_a_closed_port_reports_on_the_error_channel(core, server_pod):
    forward = portforward(core.connect_get_namespaced_pod_portforward, server_pod, "default", ports="7999")
    sock = forward.socket(7999)
    sock.settimeout(10)
    assert sock.recv(10) == b""
    error = wait_for(lambda: forward.error(7999), timeout=10)
    assert "error forwarding port 7999 to pod server_default" in error and "connection refused" in error


def test_logs_tail_timestamps_and_follow(core, base_image):
    script = "for i in 1 2 3; do echo line $i; done; sleep 1.5; echo later; sleep 0.5"
    core.create_namespaced_pod("default", pod("talker", base_image, ["sh", "-c", script], restartPolicy="Never"))
    wait_for(lambda: core.read_namespaced_pod("talker", "default").status.phase == "Running")
    wait_for(lambda: "line 3" in core.read_namespaced_pod_log("talker", "default"))
    assert core.read_namespaced_pod_log("talker", "default", tail_lines=1) == "line 3\n"
    stamped = core.read_namespaced_pod_log("talker", "default", timestamps=True).splitlines()[0]
    assert stamped.endswith("Z line 1") and stamped[:4].isdigit()

    followed = core.read_namespaced_pod_log("talker", "default", follow=True, _preload_content=False)
    lines = [line.decode() for line in followed.stream()]
    assert "".join(lines) == "line 1\nline 2\nline 3\nlater\n"  # ends when the container stops
    wait_for(lambda: core.read_namespaced_pod("talker", "default").status.phase == "Succeeded")


def test_no_exec_into_a_pod_whose_container_does_not_run(core, base_image):
    core.create_namespaced_pod("default", pod("quick", base_image, ["true"], restartPolicy="Never"))
    wait_for(lambda: core.read_namespaced_pod("quick", "default").status.phase == "Succeeded")
    with pytest.raises(ApiException) as caught:
        stream(core.connect_get_namespaced_pod_exec, "quick", "default", command=["true"], stdout=True,
               stderr=True, stdin=False, tty=False)
    assert "500" in caught.value.reason and 'container not found (\\"app\\")' in caught.value.reason \
        or 'container not found ("app")' in caught.value.reason


def test_a_forwarded_socket_carries_binary_data_both_ways(core, server_pod):
    forward = portforward(core.connect_get_namespaced_pod_portforward, server_pod, "default", ports="7000")
    sock = forward.socket(7000)
    data = bytes(range(97, 123)) * 4
    sock.sendall(data)
    got = b""
    while len(got) < len(data):
        got += sock.recv(4096)
    assert got == data.upper()
    sock.shutdown(socket.SHUT_WR)
    sock.close()
