"""install.vscode_extensions with ids without a version: Open VSX's latest, looked up when the
image is built, and still verified against the .sha256 Open VSX publishes.

The two generated steps (look up, then download + verify + unpack) run here as the shell they
are, with their paths moved under a temp dir, against a loopback HTTP server that serves an
Open VSX-like file layout. PATH holds only the tools a case allows, so every fallback (python3
or jq to read the JSON, curl or python3 to download) is exercised.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from compiler.llb import compile_environment
from compiler.llb.protos import ops_pb2 as pb
from dsl.ir import BaseImage, BuildGraph, Environment, Span, VscodeExtensions
from tests.compiler.llb._decode import Decoded, decode

SPAN = Span("build.envd", 4, 5)
ID = "ms-python.python"
VERSION = "2025.1.0"


def _env(*ids: str, dev: bool = False) -> Environment:
    return Environment("x", BuildGraph(base=BaseImage("debian:bookworm", dev=dev),
                                       steps=(VscodeExtensions(ids, span=SPAN),)))


def _steps(dec: Decoded) -> tuple[tuple[str, pb.Op], tuple[str, pb.Op]]:
    """(look-up step, install step), each as (digest, op)."""
    found = [(dg, op) for dg, op in dec.execs() if dec.name(dg).startswith("install.vscode_extensions")]
    lookup = [x for x in found if "look up" in dec.name(x[0])]
    install = [x for x in found if "look up" not in dec.name(x[0])]
    assert len(lookup) == 1 and len(install) == 1, [dec.name(dg) for dg, _ in found]
    return lookup[0], install[0]


# ---- the LLB --------------------------------------------------------------------------------


def test_the_metadata_is_a_source_of_the_lookup_step_only() -> None:
    dec = decode(compile_environment(_env(ID, "a.b-1.0.0")).definition)
    (lookup_dg, lookup), (_, install) = _steps(dec)
    meta = {m.dest: dec.ops[lookup.inputs[m.input].digest].source.identifier
            for m in lookup.exec.mounts if m.mountType == pb.BIND and m.dest != "/"}
    assert meta == {"/run/dsl/vsix-meta/0": "https://open-vsx.org/api/ms-python/python"}
    # the install step sees only what the look-up wrote (a read-only, content-keyed mount), so
    # a metadata change that names the same version does not rerun it
    latest = [m for m in install.exec.mounts if m.dest == "/run/dsl/vsix-latest"]
    assert len(latest) == 1 and latest[0].readonly and latest[0].selector == "/tmp/dsl-vscode-latest"
    assert install.inputs[latest[0].input].digest == lookup_dg
    install_sources = {dec.ops[i.digest].source.identifier for i in install.inputs
                       if dec.ops[i.digest].source.identifier.startswith("http")}
    assert install_sources == {"https://open-vsx.org/api/a/b/1.0.0/file/a.b-1.0.0.vsix",
                               "https://open-vsx.org/api/a/b/1.0.0/file/a.b-1.0.0.sha256"}


def test_the_platform_asked_for_follows_the_build_platform() -> None:
    for platform, name in (("linux/amd64", "linux-x64"), ("linux/arm64", "linux-arm64")):
        dec = decode(compile_environment(_env(ID), platform=platform).definition)
        (_, lookup), _ = _steps(dec)
        assert f"P={name}\n" in lookup.exec.meta.args[2]


# ---- the shell, run ------------------------------------------------------------------------


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture()
def openvsx(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A directory served on loopback (the stand-in for Open VSX's file storage)."""
    root = tmp_path / "served"
    root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _vsix(marker: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("extension/package.json", json.dumps({"name": marker}))
        z.writestr("extension.vsixmanifest", "<x/>")
    return buf.getvalue()


def _publish(root: Path, stem: str, data: bytes, digest: str | None = None) -> None:
    """``<stem>.vsix`` and the ``<stem>.sha256`` beside it (bare hex, as Open VSX writes it)."""
    (root / f"{stem}.vsix").write_bytes(data)
    (root / f"{stem}.sha256").write_text(digest or hashlib.sha256(data).hexdigest())


def _tools(d: Path, *names: str) -> str:
    """A PATH directory with coreutils and ``names`` (python3 is the test's interpreter)."""
    d.mkdir(parents=True, exist_ok=True)
    for tool in ("sha256sum", "mkdir", "rm", "mv", *names):
        found = sys.executable if tool == "python3" else shutil.which(tool)
        if found is None:
            pytest.skip(f"no {tool} on this machine")
        if not (d / tool).exists():
            (d / tool).symlink_to(found)
    return str(d)


@dataclass
class Run:
    lookup: subprocess.CompletedProcess[str]
    install: subprocess.CompletedProcess[str] | None
    extensions: Path


def _run(tmp: Path, metadata: str, *, reader: str = "python3", fetcher: str = "curl") -> Run:
    """Both steps of ``install.vscode_extensions([ID])`` with their paths under ``tmp``; the
    look-up reads ``metadata`` (what BuildKit's http source would have fetched)."""
    dec = decode(compile_environment(_env(ID)).definition)
    (_, lookup), (_, install) = _steps(dec)
    moves = {"/run/dsl/vsix-meta": str(tmp / "meta"), "/run/dsl/vsix-latest": str(tmp / "resolved"),
             "/tmp/dsl-vscode-latest": str(tmp / "resolved"), "/tmp/dsl-vsix-download": str(tmp / "download"),
             "/tmp/dsl-vsix": str(tmp / "work"), "/home/envd/.vscode-server/extensions": str(tmp / "extensions")}

    def script(op: pb.Op) -> str:
        text = op.exec.meta.args[2]
        for old, new in moves.items():  # longer paths first: /tmp/dsl-vsix-download before /tmp/dsl-vsix
            text = text.replace(old, new)
        return text

    (tmp / "meta" / "0").mkdir(parents=True)
    (tmp / "meta" / "0" / "metadata.json").write_text(metadata)
    env = {"PATH": _tools(tmp / "lookup-tools", reader), "LC_ALL": "C"}
    first = subprocess.run(["/bin/bash", "-c", script(lookup)], capture_output=True, text=True, env=env, check=False)
    if first.returncode != 0:
        return Run(first, None, tmp / "extensions")
    env = {"PATH": _tools(tmp / "install-tools", fetcher, "python3"), "LC_ALL": "C"}  # python3 unzips
    second = subprocess.run(["/bin/bash", "-c", script(install)], capture_output=True, text=True, env=env, check=False)
    return Run(first, second, tmp / "extensions")


def _metadata(base: str, **override: object) -> str:
    stem = f"{ID}-{VERSION}"
    data: dict[str, object] = {
        "namespace": "ms-python", "name": "python", "version": VERSION, "targetPlatform": "universal",
        "downloadCount": 123456,
        "files": {"download": f"{base}/{stem}.vsix", "sha256": f"{base}/{stem}.sha256",
                  "manifest": f"{base}/package.json"},
        "downloads": {"universal": f"{base}/{stem}.vsix"},
    }
    data.update(override)
    return json.dumps(data)


@pytest.mark.parametrize(("reader", "fetcher"), [("python3", "curl"), ("jq", "python3")])
def test_the_latest_universal_extension_is_verified_and_installed(tmp_path, openvsx, reader, fetcher) -> None:
    root, base = openvsx
    _publish(root, f"{ID}-{VERSION}", _vsix("latest"))
    run = _run(tmp_path, _metadata(base), reader=reader, fetcher=fetcher)
    assert run.lookup.returncode == 0, run.lookup.stderr
    assert run.install is not None and run.install.returncode == 0, run.install.stderr
    folder = run.extensions / f"{ID}-{VERSION}"
    assert json.loads((folder / "package.json").read_text()) == {"name": "latest"}
    assert not (tmp_path / "download").exists() and not (tmp_path / "work").exists()


def test_a_platform_specific_extension_takes_the_build_platforms_file_and_its_sha256(tmp_path, openvsx) -> None:
    """Open VSX's latest entry is some platform's (here win32-x64); the linux-x64 download of
    the same version is taken, checked against the .sha256 beside it."""
    root, base = openvsx
    _publish(root, f"{ID}-{VERSION}@win32-x64", _vsix("windows"))
    _publish(root, f"{ID}-{VERSION}@linux-x64", _vsix("linux"))
    meta = _metadata(base, targetPlatform="win32-x64",
                     files={"download": f"{base}/{ID}-{VERSION}@win32-x64.vsix",
                            "sha256": f"{base}/{ID}-{VERSION}@win32-x64.sha256"},
                     downloads={"win32-x64": f"{base}/{ID}-{VERSION}@win32-x64.vsix",
                                "linux-x64": f"{base}/{ID}-{VERSION}@linux-x64.vsix"})
    run = _run(tmp_path, meta)
    assert run.install is not None and run.install.returncode == 0, (run.lookup.stderr, run.install.stderr)
    assert json.loads((run.extensions / f"{ID}-{VERSION}" / "package.json").read_text()) == {"name": "linux"}


def test_a_tampered_vsix_fails_naming_the_file_and_both_hashes(tmp_path, openvsx) -> None:
    root, base = openvsx
    served = _vsix("tampered")
    published = hashlib.sha256(b"what the publisher uploaded").hexdigest()
    _publish(root, f"{ID}-{VERSION}", served, digest=published)
    run = _run(tmp_path, _metadata(base))
    assert run.install is not None and run.install.returncode == 1
    assert (f"dsl: install.vscode_extensions: checksum mismatch for {ID}-{VERSION}.vsix: "
            f"{base}/{ID}-{VERSION}.sha256 gives sha256 {published}, the downloaded file has sha256 "
            f"{hashlib.sha256(served).hexdigest()}") in run.install.stderr
    assert not (run.extensions / f"{ID}-{VERSION}").exists()


def test_a_missing_file_fails_naming_its_url(tmp_path, openvsx) -> None:
    _, base = openvsx
    run = _run(tmp_path, _metadata(base))
    assert run.install is not None and run.install.returncode == 1
    assert f"dsl: install.vscode_extensions: cannot download {base}/{ID}-{VERSION}.vsix" in run.install.stderr


META_URL = "https://open-vsx.org/api/ms-python/python"


@pytest.mark.parametrize("reader", ["python3", "jq"])
@pytest.mark.parametrize(("metadata", "problem"), [
    ("<html>rate limited</html>", "is not the JSON object Open VSX answers for an extension"),
    ('["not", "an", "object"]', "is not the JSON object Open VSX answers for an extension"),
    ('{"files": {}}', "names no version"),
    ('{"version": "1.0$(touch${IFS}/tmp/pwned)", "files": {}}', "names an unusable version '1.0$(touch${IFS}/tmp/pwned)'"),
    ('{"version": "1.0 x", "files": {}}', "names no version"),  # not one printable word: not taken at all
    ('{"version": "1.0.0", "targetPlatform": "universal", "files": {"download": "https://x/a.vsix"}}',
     "gives no .sha256 URL for version 1.0.0"),
    ('{"version": "1.0.0", "targetPlatform": "universal", "files": {"download": 7, "sha256": "https://x/a.sha256"}}',
     "gives no .vsix URL for version 1.0.0"),
    ('{"version": "1.0.0", "targetPlatform": "win32-x64", "downloads": {"win32-x64": "https://x/a.vsix"}}',
     "has no universal or linux-x64 build of version 1.0.0"),
])
def test_metadata_without_what_the_step_needs_fails_clearly(tmp_path, reader, metadata, problem) -> None:
    run = _run(tmp_path, metadata, reader=reader)
    assert run.lookup.returncode == 1 and run.install is None
    assert f"dsl: install.vscode_extensions: {ID}: Open VSX's metadata ({META_URL}) {problem}" in run.lookup.stderr
    assert not Path("/tmp/pwned").exists()


def test_without_python3_or_jq_the_lookup_installs_jq_with_the_package_manager(tmp_path) -> None:
    run = _run(tmp_path, "{}", reader="mkdir")  # neither reader on PATH, nor apt-get/apk/dnf
    assert run.lookup.returncode == 1
    assert ("install.vscode_extensions (to read Open VSX's metadata) needs a package manager"
            in run.lookup.stderr)
