"""The download check on the real dockerd BuildKit: archive and checksum file as http sources
mounted into one step, the step's verification before the unpack.

The publishers (go.dev, GitHub, Open VSX) are not reachable here, so a loopback HTTP server
stands in for one: BuildKit fetches http sources from the daemon's side, where the loopback
address is the test machine's. The step is assembled from the same pieces the toolchain steps
use (``_verify.verify_lines``, the mount directories of ``_toolchains``).
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from compiler.llb import BindMount, http, image, marshal
from compiler.llb._script import bash
from compiler.llb._toolchains import CHECKSUM_DIR, DOWNLOAD_DIR
from compiler.llb._verify import LISTING, verify_lines
from dsl.engines.buildkit import Plan, connect, solve
from dsl.errors import SolveFailed

pytestmark = pytest.mark.engine


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture()
def publisher(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A directory served over HTTP on loopback, and its base URL."""
    handler = partial(_QuietHandler, directory=str(tmp_path))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _plan(base: str, url: str, sums_url: str, name: str):
    dl = http(url, filename=name, name=f"download {name}")
    sums = http(sums_url, filename="SHASUMS256.txt", name="download SHASUMS256.txt")
    lines = verify_lines(archive=f"{DOWNLOAD_DIR}/{name}", sums=f"{CHECKSUM_DIR}/SHASUMS256.txt",
                         name=name, sums_url=sums_url, what="install.test", shape=LISTING)
    st = image(base).run(bash(*lines, "echo unpacked > /unpacked"), name="install.test",
                         mounts=(BindMount(DOWNLOAD_DIR, dl.output), BindMount(CHECKSUM_DIR, sums.output)))
    m = marshal(st)
    return lambda caps, platform: Plan(m.definition, base, m.spans)


def test_a_good_archive_passes_and_a_tampered_one_fails_the_step(docker_host, base_image, publisher) -> None:
    root, base_url = publisher
    # a unique directory per run: BuildKit caches http sources by URL (and ETag)
    run = uuid.uuid4().hex[:12]
    (root / run).mkdir()
    name = "tool-v1-linux-x64.tar.xz"
    good = f"archive {run}".encode()
    digest = hashlib.sha256(good).hexdigest()
    (root / run / name).write_bytes(good)
    (root / run / "SHASUMS256.txt").write_text(
        f"{'0' * 64}  {name}.asc\n{digest}  {name}\n")
    url, sums_url = f"{base_url}/{run}/{name}", f"{base_url}/{run}/SHASUMS256.txt"
    with connect(f"docker://{docker_host}") as builder:
        solve(builder, _plan(base_image, url, sums_url, name))

        tampered_dir = root / f"{run}-t"
        tampered_dir.mkdir()
        (tampered_dir / name).write_bytes(good + b"!")
        (tampered_dir / "SHASUMS256.txt").write_text(f"{digest}  {name}\n")
        bad_url, bad_sums = f"{base_url}/{run}-t/{name}", f"{base_url}/{run}-t/SHASUMS256.txt"
        with pytest.raises(SolveFailed) as info:
            solve(builder, _plan(base_image, bad_url, bad_sums, name))
    err, log = info.value, "\n".join(info.value.log_tail)
    assert err.step == "install.test"
    assert f"dsl: install.test: checksum mismatch for {name}: {bad_sums}" in log
    assert digest in log and hashlib.sha256(good + b"!").hexdigest() in log


def test_a_vscode_extension_is_verified_and_unpacked_by_the_compiled_step(
        docker_host, docker_api, base_image, publisher, monkeypatch) -> None:
    """The whole compiled step: Open VSX's layout on the loopback server, python3's zipfile
    on the Debian base (it has no unzip)."""
    import io
    import zipfile

    from compiler.llb import _vscode, compile_environment
    from dsl.engines.buildkit import Exporter
    from dsl.ir import BaseImage, BuildGraph, Environment, VscodeExtensions

    root, base_url = publisher
    run = uuid.uuid4().hex[:12]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("extension/package.json", f'{{"name": "t{run}"}}')
        z.writestr("extension.vsixmanifest", "<x/>")
    vsix = buf.getvalue()
    stem = f"p{run}.ext-1.0.0"
    files = root / "api" / f"p{run}" / "ext" / "1.0.0" / "file"
    files.mkdir(parents=True)
    (files / f"{stem}.vsix").write_bytes(vsix)
    (files / f"{stem}.sha256").write_text(hashlib.sha256(vsix).hexdigest())
    monkeypatch.setattr(_vscode, "OPEN_VSX_API", f"{base_url}/api")
    env = Environment("x", BuildGraph(base=BaseImage(base_image), steps=(VscodeExtensions((stem,)),)))
    res = compile_environment(env)
    tag = f"dsl-vsix-{run}:dev"
    with connect(f"docker://{docker_host}") as builder:
        solve(builder, lambda caps, platform: Plan(res.definition, res.base_image, res.vertex_spans),
              image_config=lambda base, platform: base, exporter=Exporter("moby", {"name": tag}))
    try:
        path = f"/home/envd/.vscode-server/extensions/p{run}.ext-1.0.0"
        container = docker_api.create_container(tag, command=["sh", "-c", f"cat {path}/package.json; echo; ls {path}"])
        try:
            docker_api.start(container)
            assert docker_api.wait(container, timeout=60)["StatusCode"] == 0
            out = docker_api.logs(container).decode().split()
        finally:
            docker_api.remove_container(container, force=True)
        assert out == ['{"name":', f'"t{run}"}}', "package.json"]
    finally:
        docker_api.remove_image(tag, force=True)


def test_a_latest_vscode_extension_is_looked_up_verified_and_installed_and_cached_by_version(
        docker_host, docker_api, base_image, tmp_path, monkeypatch) -> None:
    """An id without a version on the real builder: Open VSX's metadata is an http source of the
    look-up step, the install step downloads from the URLs it names (so the stand-in server
    listens on the Docker bridge, where RUN steps reach the host) and verifies. A second build
    whose metadata differs only in its download counter installs nothing again: the install
    step is keyed by what the look-up found, not by the metadata's bytes."""
    import collections
    import contextlib
    import io
    import json
    import zipfile

    import docker

    from compiler.llb import _vscode, compile_environment
    from dsl.engines.buildkit import Exporter
    from dsl.ir import BaseImage, BuildGraph, Environment, VscodeExtensions
    from tests.engines.buildkit._containers import bridge_gateway, run_in

    run = uuid.uuid4().hex[:12]
    publisher, version = f"p{run}", "2.0.0"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("extension/package.json", f'{{"name": "latest{run}"}}')
    vsix = buf.getvalue()
    root = tmp_path / "openvsx"
    stem = f"{publisher}.ext-{version}"
    (root / "files").mkdir(parents=True)
    (root / "files" / f"{stem}.vsix").write_bytes(vsix)
    (root / "files" / f"{stem}.sha256").write_text(hashlib.sha256(vsix).hexdigest())
    (root / "api" / publisher).mkdir(parents=True)
    requests: collections.Counter = collections.Counter()

    class Counting(_QuietHandler):
        def do_GET(self) -> None:  # http.server's name
            requests[self.path] += 1
            super().do_GET()

    server = ThreadingHTTPServer(("0.0.0.0", 0), partial(Counting, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://{bridge_gateway(docker_api.inspect_network('bridge'))}:{server.server_address[1]}"

    def publish_metadata(downloads: int) -> None:
        (root / "api" / publisher / "ext").write_text(json.dumps({
            "namespace": publisher, "name": "ext", "version": version, "targetPlatform": "universal",
            "downloadCount": downloads,
            "files": {"download": f"{base}/files/{stem}.vsix", "sha256": f"{base}/files/{stem}.sha256"}}))

    monkeypatch.setattr(_vscode, "OPEN_VSX_API", f"{base}/api")
    env = Environment("x", BuildGraph(base=BaseImage(base_image), steps=(VscodeExtensions((f"{publisher}.ext",)),)))
    res = compile_environment(env)

    def plan(caps: object, platform: object) -> Plan:
        return Plan(res.definition, res.base_image, res.vertex_spans)

    tag = f"dsl-vsix-latest-{run}:dev"
    try:
        with connect(f"docker://{docker_host}") as builder:
            publish_metadata(1)
            solve(builder, plan, image_config=lambda base_config, platform: base_config,
                  exporter=Exporter("moby", {"name": tag}))
            out = run_in(docker_api, tag, f"cat /home/envd/.vscode-server/extensions/{publisher}.ext-{version}/package.json")
            assert json.loads(out) == {"name": f"latest{run}"}
            assert requests[f"/files/{stem}.vsix"] == 1 and requests[f"/files/{stem}.sha256"] == 1

            publish_metadata(2)  # a busy day on Open VSX: same version, another counter
            solve(builder, plan)
        assert requests[f"/api/{publisher}/ext"] >= 2, requests  # looked up again ...
        assert requests[f"/files/{stem}.vsix"] == 1, requests  # ... but not installed again
    finally:
        server.shutdown()
        server.server_close()
        with contextlib.suppress(docker.errors.ImageNotFound):
            docker_api.remove_image(tag, force=True)


def test_codex_is_verified_against_the_release_listing_and_runs_as_usr_bin_codex(
        docker_host, docker_api, base_image, publisher, monkeypatch) -> None:
    """The compiled install.codex step on the real builder: openai/codex's release layout on
    the loopback server, the package unpacked under /opt/codex, /usr/bin/codex on PATH."""
    import contextlib
    import io
    import tarfile

    import docker

    from compiler.llb import _toolchains, compile_environment
    from dsl.engines.buildkit import Exporter
    from dsl.ir import BaseImage, BuildGraph, CodexInstall, Environment
    from tests.engines.buildkit._containers import run_in

    root, base_url = publisher
    run = uuid.uuid4().hex[:12]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in {"bin/codex": f"#!/bin/sh\necho codex-cli {run}\n".encode(),
                           "codex-path/rg": b"#!/bin/sh\n"}.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    package = buf.getvalue()
    asset = "codex-package-x86_64-unknown-linux-musl.tar.gz"
    release = root / run / "download" / "rust-v0.155.1"
    release.mkdir(parents=True)
    (release / asset).write_bytes(package)
    (release / "codex-package_SHA256SUMS").write_text(
        f"{'0' * 64}  codex-package-aarch64-unknown-linux-musl.tar.gz\n{hashlib.sha256(package).hexdigest()}  {asset}\n")
    monkeypatch.setattr(_toolchains, "CODEX_RELEASES", f"{base_url}/{run}")
    env = Environment("x", BuildGraph(base=BaseImage(base_image), steps=(CodexInstall("0.155.1"),)))
    res = compile_environment(env)
    tag = f"dsl-codex-{run}:dev"
    try:
        with connect(f"docker://{docker_host}") as builder:
            solve(builder, lambda caps, platform: Plan(res.definition, res.base_image, res.vertex_spans),
                  image_config=lambda base, platform: base, exporter=Exporter("moby", {"name": tag}))
        out = run_in(docker_api, tag, "codex; readlink /usr/bin/codex; test -x /opt/codex/codex-path/rg && echo rg")
        assert out.split() == ["codex-cli", run, "/opt/codex/bin/codex", "rg"]
    finally:
        with contextlib.suppress(docker.errors.ImageNotFound):
            docker_api.remove_image(tag, force=True)
