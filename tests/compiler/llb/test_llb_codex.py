"""install.codex: openai/codex's package archive, checked against the release's
codex-package_SHA256SUMS before it is unpacked under /opt/codex (/usr/bin/codex links to it)."""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from compiler.llb import compile_environment
from compiler.llb.protos import ops_pb2 as pb
from dsl.errors import CompileError
from dsl.ir import BaseImage, BuildGraph, CodexInstall, Environment, Span
from tests.compiler.llb._decode import Decoded, decode

SPAN = Span("build.envd", 3, 5)
RELEASES = "https://github.com/openai/codex/releases"


def _env(version: str = "") -> Environment:
    return Environment("x", BuildGraph(base=BaseImage("debian:bookworm", dev=True),
                                       steps=(CodexInstall(version=version, span=SPAN),)))


def _step(dec: Decoded) -> pb.Op:
    (op,) = [op for dg, op in dec.execs() if dec.name(dg) == "install.codex"]
    return op


def _sources(dec: Decoded, op: pb.Op) -> dict[str, str]:
    return {m.dest: dec.ops[op.inputs[m.input].digest].source.identifier
            for m in op.exec.mounts if m.mountType == pb.BIND and m.dest != "/"}


@pytest.mark.parametrize(("version", "platform", "base", "triple"), [
    ("0.155.1", "linux/amd64", f"{RELEASES}/download/rust-v0.155.1", "x86_64-unknown-linux-musl"),
    ("0.156.0-alpha.2", "linux/arm64", f"{RELEASES}/download/rust-v0.156.0-alpha.2", "aarch64-unknown-linux-musl"),
    ("", "linux/amd64", f"{RELEASES}/latest/download", "x86_64-unknown-linux-musl"),
])
def test_the_package_archive_and_the_releases_checksum_listing_are_the_steps_sources(
        version, platform, base, triple) -> None:
    dec = decode(compile_environment(_env(version), platform=platform).definition)
    assert _sources(dec, _step(dec)) == {
        "/run/dsl/download": f"{base}/codex-package-{triple}.tar.gz",
        "/run/dsl/checksum": f"{base}/codex-package_SHA256SUMS",
    }


def test_a_version_older_than_the_checksummed_releases_is_a_located_compile_error() -> None:
    with pytest.raises(CompileError) as err:
        compile_environment(_env("0.98.0"))
    assert "older than 0.141.0" in str(err.value) and err.value.span == SPAN
    assert "0.141.0 or later" in err.value.hint


def test_a_platform_openai_does_not_build_for_is_a_compile_error() -> None:
    with pytest.raises(CompileError) as err:
        compile_environment(_env("0.155.1"), platform="linux/ppc64le")
    assert "amd64 and arm64, not ppc64le" in str(err.value) and err.value.span == SPAN


def _package(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


ASSET = "codex-package-x86_64-unknown-linux-musl.tar.gz"
CODEX = b"#!/bin/sh\necho codex-cli 0.155.1\n"


def _run(tmp: Path, archive: bytes, sums: str) -> subprocess.CompletedProcess[str]:
    """The compiled step's script with its paths under ``tmp``."""
    script = _step(decode(compile_environment(_env("0.155.1")).definition)).exec.meta.args[2]
    for old, new in {"/run/dsl/download": tmp / "download", "/run/dsl/checksum": tmp / "checksum",
                     "/opt/codex": tmp / "opt" / "codex", "/usr/bin/codex": tmp / "usr-bin-codex"}.items():
        script = script.replace(old, str(new))
    (tmp / "download").mkdir()
    (tmp / "checksum").mkdir()
    (tmp / "download" / ASSET).write_bytes(archive)
    (tmp / "checksum" / "codex-package_SHA256SUMS").write_text(sums)
    tools = tmp / "bin"
    tools.mkdir()
    for tool in ("sha256sum", "mkdir", "rm", "tar", "gzip", "ln"):
        found = shutil.which(tool)
        assert found, tool
        (tools / tool).symlink_to(found)
    return subprocess.run(["/bin/bash", "-c", script], capture_output=True, text=True,
                          env={"PATH": str(tools), "LC_ALL": "C"}, check=False)


def _listing(digest: str) -> str:
    """The shape of openai/codex's listing: ``<sha256>  <asset>`` for every package archive."""
    return (f"{'1' * 64}  codex-app-server-package-x86_64-unknown-linux-musl.tar.gz\n"
            f"{'2' * 64}  codex-package-aarch64-unknown-linux-musl.tar.gz\n"
            f"{digest}  {ASSET}\n"
            f"{'3' * 64}  {ASSET}.sigstore\n")


def test_a_verified_package_is_unpacked_whole_and_linked_at_usr_bin_codex(tmp_path: Path) -> None:
    archive = _package({"bin/codex": CODEX, "codex-resources/bwrap": b"bwrap", "codex-path/rg": b"rg"})
    res = _run(tmp_path, archive, _listing(hashlib.sha256(archive).hexdigest()))
    assert res.returncode == 0, res.stderr
    home = tmp_path / "opt" / "codex"
    assert (home / "codex-resources" / "bwrap").read_bytes() == b"bwrap"
    link = tmp_path / "usr-bin-codex"
    assert link.is_symlink() and link.resolve() == (home / "bin" / "codex").resolve()
    assert link.read_bytes() == CODEX


def test_a_tampered_package_is_refused_before_it_is_unpacked(tmp_path: Path) -> None:
    archive = _package({"bin/codex": CODEX})
    published = hashlib.sha256(b"the archive openai built").hexdigest()
    res = _run(tmp_path, archive, _listing(published))
    assert res.returncode == 1
    assert (f"dsl: install.codex: checksum mismatch for {ASSET}: {RELEASES}/download/rust-v0.155.1/"
            f"codex-package_SHA256SUMS gives sha256 {published}, the downloaded file has sha256 "
            f"{hashlib.sha256(archive).hexdigest()}") in res.stderr
    assert not (tmp_path / "opt").exists() and not (tmp_path / "usr-bin-codex").exists()


def test_a_listing_without_the_asset_and_an_archive_without_the_binary_fail_clearly(tmp_path: Path) -> None:
    archive = _package({"README": b"x"})
    (tmp_path / "a").mkdir()
    missing = _run(tmp_path / "a", archive, f"{'1' * 64}  codex-package-aarch64-unknown-linux-musl.tar.gz\n")
    assert missing.returncode == 1
    assert f"codex-package_SHA256SUMS lists {ASSET} 0 times (expected once)" in missing.stderr
    (tmp_path / "b").mkdir()
    empty = _run(tmp_path / "b", archive, _listing(hashlib.sha256(archive).hexdigest()))
    assert empty.returncode == 1 and f"dsl: install.codex: {ASSET} has no bin/codex" in empty.stderr
