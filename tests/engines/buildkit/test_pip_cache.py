"""The build caches on the real dockerd: pip and apt downloads stay in cache mounts, not images.

pip's cache keeps what the index allows it to cache (``Cache-Control``, as PyPI sends). This
machine's TLS-re-signing proxy strips those headers from PyPI's answers, so the test serves
its own package index on the Docker bridge (the address RUN steps reach the host at), with
PyPI's caching headers, and counts the downloads there: a second build with one more package
must fetch only the new wheel. Likewise one more apt package must take the earlier archives
from apt's cache mount, and neither cache may leave files in the image.

A run-unique comment in sources.list makes every step run on each test run. ``--no-cache`` is
not used: BuildKit gives it fresh, empty cache mounts (moby/buildkit#1213).
"""

from __future__ import annotations

import collections
import hashlib
import http.server
import ipaddress
import re
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engines.buildkit._containers import bridge_gateway, make_wheel, run_in
from tests.engines.buildkit.test_build_e2e import _build

pytestmark = pytest.mark.engine

BUILD_FILE = '''\
def build():
    base(image="{base}", dev=False)
    config.apt_source(source="# {marker}\\ndeb http://deb.debian.org/debian bookworm main\\n")
    config.pip_index(url="{index}", trust=True)
    install.apt_packages(name={apt})
    install.python_packages(name={pip})
'''


class _Index(http.server.SimpleHTTPRequestHandler):
    """A PEP 503 index over the served directory, with PyPI's cache headers on files."""

    downloads: collections.Counter

    def end_headers(self) -> None:
        if self.path.endswith(".whl"):
            self.send_header("Cache-Control", "max-age=365000000, immutable, public")
            self.downloads[self.path.rsplit("/", 1)[-1]] += 1
        super().end_headers()

    def log_message(self, *args) -> None:  # quiet: the counter is what the test reads
        pass


@pytest.fixture
def package_index(docker_api, tmp_path) -> Iterator[tuple[str, list[str], collections.Counter]]:
    """(index URL as RUN steps see it, two fresh package names, wheel downloads by file name)."""
    root = tmp_path / "index"
    suffix = uuid.uuid4().hex[:8]
    names = [f"dslcache_a_{suffix}", f"dslcache_b_{suffix}"]
    files = _mkdir(root / "files")
    for name in names:
        wheel = make_wheel(files, name)
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        page = _mkdir(root / "simple" / name.replace("_", "-"))
        (page / "index.html").write_text(f'<a href="../../files/{wheel.name}#sha256={digest}">{wheel.name}</a>\n')
    downloads: collections.Counter = collections.Counter()
    handler = type("Index", (_Index,), {"downloads": downloads})
    server = http.server.ThreadingHTTPServer(
        ("0.0.0.0", 0), lambda *a: handler(*a, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    gateway = bridge_gateway(docker_api.inspect_network("bridge"))
    try:
        yield f"http://{gateway}:{server.server_address[1]}/simple/", names, downloads
    finally:
        server.shutdown()
        server.server_close()


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _step_log(stderr: str, marker: str) -> str:
    """The plain-progress lines of the vertex whose name contains ``marker``."""
    number = next(line.split()[0] for line in stderr.splitlines()
                  if line.startswith("#") and marker in line)
    return "\n".join(line for line in stderr.splitlines() if line.startswith(number + " "))


def test_adding_a_package_downloads_only_it(docker_host, docker_api, base_image, ca_bundle, tmp_path,
                                            package_index):
    index, (first_pkg, second_pkg), downloads = package_index
    project = _mkdir(tmp_path / "pipcache")
    tag = f"dsl-pip-cache:{uuid.uuid4().hex[:8]}"
    args = ("-t", tag, "--progress", "plain", "--ca-bundle", ca_bundle)
    marker = uuid.uuid4().hex
    try:
        (project / "build.envd").write_text(
            BUILD_FILE.format(base=base_image, marker=marker, index=index, apt=["jq"], pip=[first_pkg]))
        first = _build(project, docker_host, tmp_path, *args)
        assert first.returncode == 0, first.stderr[-3000:]
        assert sorted(downloads.values()) == [1], downloads

        (project / "build.envd").write_text(BUILD_FILE.format(
            base=base_image, marker=marker, index=index, apt=["jq", "file"], pip=[first_pkg, second_pkg]))
        second = _build(project, docker_host, tmp_path, *args)
        assert second.returncode == 0, second.stderr[-3000:]
        assert sorted(downloads.values()) == [1, 1], f"a wheel was downloaded again: {downloads}"
        pip_log = _step_log(second.stderr, f"install.python_packages {first_pkg} {second_pkg}")
        assert re.search(rf"Using cached \S*/{first_pkg}-1\.0-", pip_log), pip_log
        assert re.search(rf"Downloading \S*/{second_pkg}-1\.0-", pip_log), pip_log
        apt_log = _step_log(second.stderr, "install.apt_packages jq file")
        # "Get:3 http://deb.debian.org/debian bookworm/main amd64 jq amd64 1.6-2.1 [64.0 kB]"
        fetched = re.findall(r"Get:\d+ \S+ \S+ \S+ (\S+) \S+ \S+ \[", apt_log)
        assert "Need to get" in apt_log and not {"jq", "libjq1", "libonig5"} & set(fetched), apt_log

        # nothing of either cache is in the image: compare with the base image itself
        listing = ("ls /var/cache/apt/archives | grep '\\.deb$' | sort; echo ---; "
                   "find /var/lib/apt/lists -type f ! -name lock | sort; echo ---; "
                   "ls -A /root/.cache/pip 2>/dev/null | sort; echo ---")
        base = run_in(docker_api, base_image, listing).split("---")
        built = run_in(docker_api, tag, listing + "; jq --version; "
                        f"/opt/dsl/python/bin/python -c 'import {first_pkg}, {second_pkg}'").split("---")
        assert built[0] == base[0], "the build left .deb archives in the image"
        assert built[1] == base[1], "the build left apt lists in the image"
        assert built[2].strip() == "", "the build left a pip cache in the image"
        assert built[3].strip().startswith("jq-")
    finally:
        docker_api.remove_image(tag, force=True)


def test_bridge_gateway_without_the_ipam_field_is_the_bridge_address(docker_api):
    # A fresh dockerd 20.10 data root has no IPAM Gateway; the fallback must give what a
    # restarted daemon reports (or, when it is absent here too, the bridge's subnet's address).
    network = docker_api.inspect_network("bridge")
    stripped = {**network, "IPAM": {**network["IPAM"], "Config": [
        {k: v for k, v in c.items() if k != "Gateway"} for c in network["IPAM"]["Config"]]}}
    fallback = bridge_gateway(stripped)
    reported = [c["Gateway"] for c in network["IPAM"]["Config"] if c.get("Gateway")]
    if reported:
        assert fallback == reported[0]
    subnet = ipaddress.ip_network(network["IPAM"]["Config"][0]["Subnet"])
    assert ipaddress.ip_address(fallback) in subnet
