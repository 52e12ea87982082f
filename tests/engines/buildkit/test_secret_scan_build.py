"""The Jupyter token of a build file is in no byte of the built image or the build's logs.

The build file of tests/test_secret_scan.py (a dev image, ``config.jupyter(token=MARKER)``) is
built once on the test dockerd with ``--progress plain``; the marker must not occur in the
output, in envdsl's cache and config directories (build records, kept build logs: a second,
failing build keeps one), or in the ``docker save`` tarball of the image (layers, config,
labels, history). ``jupyter`` comes from a package index the test serves: a stand-in whose
``python3 -m notebook`` records what it was given, so the same image also shows the token
arriving at run time, the way the Docker create body's runner passes it, and nowhere else.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from dsl.engines.runner import fill_placeholders
from tests.engines.buildkit._containers import bridge_gateway, make_wheel
from tests.engines.buildkit.test_build_e2e import _build, _env

pytestmark = pytest.mark.engine

MARKER = f"MARKER-{uuid.uuid4().hex}"
PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHRlc3Qta2V5LWZvci1zZWNyZXQtc2Nhbi10ZXN0 test"
BUILD_FILE = '''\
def build():
    base(image="{base}", dev=True)
    config.pip_index(url="{index}", trust=True)
    config.jupyter(token="{marker}")

def failing():
    build()
    run(commands=["echo the step fails; exit 3"])
'''
# The stand-in notebook server: records its arguments and token, then stays up.
NOTEBOOK_MAIN = '''\
import json, os, sys, time
seen = {"argv": sys.argv[1:], "JUPYTER_TOKEN": os.environ.get("JUPYTER_TOKEN"),
        "DSL_JUPYTER_TOKEN": os.environ.get("DSL_JUPYTER_TOKEN")}
with open("notebook-seen.json", "w") as f:
    json.dump(seen, f)
time.sleep(3600)
'''


@pytest.fixture(scope="module")
def package_index(docker_api, tmp_path_factory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("index")
    (root / "files").mkdir()
    wheel = make_wheel(root / "files", "jupyter", {"notebook/__init__.py": "", "notebook/__main__.py": NOTEBOOK_MAIN})
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    (root / "simple" / "jupyter").mkdir(parents=True)
    (root / "simple" / "jupyter" / "index.html").write_text(
        f'<a href="../../files/{wheel.name}#sha256={digest}">{wheel.name}</a>\n')

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("0.0.0.0", 0), lambda *a: Quiet(*a, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        host = bridge_gateway(docker_api.inspect_network("bridge"))
        yield f"http://{host}:{server.server_address[1]}/simple/"
    finally:
        server.shutdown()
        server.server_close()


class Built:
    def __init__(self, tag: str, project: Path, home: Path, outputs: dict[str, bytes]) -> None:
        self.tag, self.project, self.home, self.outputs = tag, project, home, outputs


@pytest.fixture(scope="module")
def built(docker_host, docker_api, base_image, ca_bundle, package_index, tmp_path_factory) -> Iterator[Built]:
    home = tmp_path_factory.mktemp("secretscan")
    project = home / "scan"
    project.mkdir()
    project.chmod(0o777)  # bind-mounted as the work directory: the dev user writes into it
    (project / "build.envd").write_text(BUILD_FILE.format(base=base_image, index=package_index, marker=MARKER))
    tag = f"dsl-secret-scan:{uuid.uuid4().hex[:8]}"
    args = ("-t", tag, "--progress", "plain", "--ca-bundle", ca_bundle)
    ok = _build(project, docker_host, home, *args)
    assert ok.returncode == 0, ok.stderr[-3000:]
    failed = _build(project, docker_host, home, *args, "-f", ":failing")
    assert failed.returncode == 1 and "build log: " in failed.stderr, failed.stderr[-3000:]
    outputs = {"build stdout": ok.stdout.encode(), "build stderr": ok.stderr.encode(),
               "failed build stdout": failed.stdout.encode(), "failed build stderr": failed.stderr.encode()}
    try:
        yield Built(tag, project, home, outputs)
    finally:
        docker_api.remove_image(tag, force=True)


def _contains(chunks: Iterable[bytes], needle: bytes) -> tuple[bool, int]:
    """Whether the stream holds ``needle`` (also across chunk boundaries); bytes read."""
    tail, total = b"", 0
    for chunk in chunks:
        total += len(chunk)
        if needle in tail + chunk:
            return True, total
        tail = (tail + chunk)[-(len(needle) - 1):]
    return False, total


def test_the_marker_is_in_no_build_output_record_or_log(built: Built) -> None:
    kept = list((built.home / "cache" / "envdsl" / "logs").glob("build-*.log"))
    assert kept, "the failing build kept no log to scan"
    assert "the step fails" in kept[0].read_text()  # the log has the step's output
    files = {str(p): p.read_bytes() for d in ("cache", "cfg") for p in (built.home / d).rglob("*") if p.is_file()}
    assert any("record" in name or name.endswith(".json") for name in files), sorted(files)  # the build record
    leaks = [name for name, data in {**built.outputs, **files}.items() if MARKER.encode() in data]
    assert leaks == [], f"the token is in: {leaks}"
    assert "DSL_JUPYTER_TOKEN" in built.outputs["build stderr"].decode()  # the warning says where it goes


def test_the_marker_is_not_in_the_exported_image(built: Built, docker_api) -> None:
    found, size = _contains(docker_api.get_image(built.tag), MARKER.encode())
    assert size > 10_000_000  # the whole image: base, dev layer, venv
    assert not found, "the token is in the image tarball"
    info = json.dumps(docker_api.inspect_image(built.tag)) + json.dumps(docker_api.history(built.tag))
    assert MARKER not in info and "dev.envdsl.environment" in info


def _run_body(docker_api, built: Built, token: str | None) -> str:
    """Create the container from ``dsl compile --target docker`` as a runner does (keys and
    token filled into the placeholders, or the token variable left out)."""
    proc = subprocess.run([sys.executable, "-m", "dsl", "compile", "--target", "docker", "--image", built.tag],
                          cwd=built.project, capture_output=True, text=True, env=_env(built.home, ""), timeout=60)
    assert proc.returncode == 0 and MARKER not in proc.stdout + proc.stderr, proc.stderr
    body = json.loads(proc.stdout)
    assert "DSL_JUPYTER_TOKEN=${DSL_JUPYTER_TOKEN}" in body["Env"]
    if token is None:
        body["Env"] = [e for e in body["Env"] if not e.startswith("DSL_JUPYTER_TOKEN=")]
    host_key = built.home / "host_key"
    if not host_key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)], check=True)
        host_key.chmod(0o644)  # read by the container's non-root user
    values = {"DSL_AUTHORIZED_KEYS": PUBLIC_KEY, "DSL_HOST_KEY_FILE": str(host_key)}
    body = fill_placeholders(body, {**values, **({"DSL_JUPYTER_TOKEN": token} if token is not None else {})})
    host = {**body["HostConfig"], "RestartPolicy": {"Name": "no"}}  # one start, one exit status
    return docker_api.create_container_from_config({**body, "HostConfig": host},
                                                   name=f"dsl-scan-{uuid.uuid4().hex[:8]}")["Id"]


def test_the_token_given_at_run_time_reaches_only_the_notebook(built: Built, docker_api) -> None:
    token = f"RUNTIME-{uuid.uuid4().hex}"
    seen_file = built.project / "notebook-seen.json"
    container = _run_body(docker_api, built, token)
    try:
        docker_api.start(container)
        deadline = time.monotonic() + 60
        while not seen_file.exists():
            state = docker_api.inspect_container(container)["State"]
            assert state["Running"] and time.monotonic() < deadline, docker_api.logs(container).decode()
            time.sleep(0.3)
        time.sleep(0.5)  # let the stand-in finish writing
        seen = json.loads(seen_file.read_text())
        assert seen["JUPYTER_TOKEN"] == token and seen["DSL_JUPYTER_TOKEN"] is None
        assert token not in " ".join(seen["argv"]) and "--NotebookApp.token=" not in seen["argv"]
        session_env = docker_api.exec_start(docker_api.exec_create(container, ["cat", "/home/envd/.dsl/environment"]))
        assert token.encode() not in session_env and b"ENVD_WORKDIR" in session_env  # SSH sessions do not get it
        logs = docker_api.logs(container)
        assert MARKER.encode() not in logs and token.encode() not in logs
    finally:
        with contextlib.suppress(Exception):
            docker_api.remove_container(container, force=True)
        seen_file.unlink(missing_ok=True)


def test_without_a_token_the_container_does_not_start(built: Built, docker_api) -> None:
    container = _run_body(docker_api, built, None)
    try:
        docker_api.start(container)
        status = docker_api.wait(container, timeout=60)["StatusCode"]
        logs = docker_api.logs(container).decode()
        assert status == 1 and "no Jupyter token: set DSL_JUPYTER_TOKEN" in logs, logs
        assert not (built.project / "notebook-seen.json").exists()
    finally:
        docker_api.remove_container(container, force=True)
