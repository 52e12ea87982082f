"""Builds behind a TLS-inspecting proxy: a certificate failure points to ``--ca-bundle``, and
``DSL_CA_BUNDLE`` or a context's ``ca_bundle`` set the bundle once.

The "proxy" is an HTTPS server on the Docker bridge with a self-signed certificate that no
build step trusts; a RUN step fetches from it with Python's urllib (what pip's requests does
under the hood), so the failure is the real ``CERTIFICATE_VERIFY_FAILED``.
"""

from __future__ import annotations

import http.server
import json
import ssl
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engines.buildkit._containers import bridge_gateway
from tests.engines.buildkit.test_build_e2e import _build, _env

pytestmark = pytest.mark.engine

BUILD_FILE = '''\
def build():
    base(image="{base}", dev=False)
    run(commands=["python3 -c 'import urllib.request; print(urllib.request.urlopen(\\"{url}\\").read())' # {marker}"])
'''


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the http.server name
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"hello through the proxy")

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def tls_server(docker_api, tmp_path) -> Iterator[tuple[str, Path]]:
    """(an https URL build steps reach, the self-signed certificate that verifies it)."""
    host = bridge_gateway(docker_api.inspect_network("bridge"))
    cert, key = tmp_path / "proxy-ca.pem", tmp_path / "proxy-ca.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=dsl test proxy", "-addext", f"subjectAltName=IP:{host}",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    server = http.server.ThreadingHTTPServer(("0.0.0.0", 0), _Hello)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://{host}:{server.server_address[1]}/", cert
    finally:
        server.shutdown()
        server.server_close()


def _project(tmp_path: Path, base: str, url: str) -> Path:
    project = tmp_path / f"proxy-{uuid.uuid4().hex[:8]}"
    project.mkdir()
    (project / "build.envd").write_text(BUILD_FILE.format(base=base, url=url, marker=uuid.uuid4().hex))
    return project


def test_certificate_failure_hints_at_ca_bundle(docker_host, base_image, tls_server, tmp_path):
    url, _cert = tls_server
    proc = _build(_project(tmp_path, base_image, url), docker_host, tmp_path, "--progress", "plain")
    assert proc.returncode == 1, proc.stderr
    assert "CERTIFICATE_VERIFY_FAILED" in proc.stderr
    hint = [line for line in proc.stderr.splitlines() if "--ca-bundle" in line]
    assert hint and "DSL_CA_BUNDLE" in hint[0], proc.stderr


def test_dsl_ca_bundle_and_a_context_setting_trust_the_proxy(docker_host, base_image, tls_server, tmp_path,
                                                            monkeypatch):
    url, cert = tls_server
    monkeypatch.setenv("DSL_CA_BUNDLE", str(cert))
    by_env = _build(_project(tmp_path, base_image, url), docker_host, tmp_path, "--progress", "plain")
    assert by_env.returncode == 0, by_env.stderr
    assert "hello through the proxy" in by_env.stderr
    monkeypatch.delenv("DSL_CA_BUNDLE")

    made = subprocess.run([sys.executable, "-m", "dsl", "context", "create", "corp", "--ca-bundle", str(cert),
                           "--use"], capture_output=True, text=True, env=_env(tmp_path, docker_host))
    assert made.returncode == 0, made.stderr
    stored = json.loads((tmp_path / "cfg" / "envdsl" / "contexts.json").read_text())
    assert stored["contexts"]["corp"]["ca_bundle"] == str(cert)
    by_context = _build(_project(tmp_path, base_image, url), docker_host, tmp_path, "--progress", "plain")
    assert by_context.returncode == 0, by_context.stderr
    assert "hello through the proxy" in by_context.stderr

