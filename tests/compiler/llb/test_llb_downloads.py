"""Every toolchain download is verified before it is unpacked.

For each toolchain the decoded LLB must show the archive source, the publisher's checksum file
as a second source (or, for Miniconda, a pinned ``http.checksum`` BuildKit checks itself), and a
step that compares the two before the unpack line. The step's own shell is then run here
against a fake archive and a checksum file in the publisher's format: the good file passes, a
tampered one fails with a message naming the file and both hashes, and nothing is unpacked.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from compiler.llb import compile_environment
from compiler.llb.protos import ops_pb2 as pb
from dsl.errors import CompileError
from dsl.ir import (
    BaseImage,
    BuildGraph,
    CondaInstall,
    Environment,
    GoInstall,
    JuliaInstall,
    NodejsInstall,
    PixiInstall,
    RustInstall,
    Span,
    UvInstall,
)
from tests.compiler.llb._decode import Decoded, decode

SPAN = Span("build.envd", 3, 5)


def _env(*steps, dev: bool = False) -> Environment:
    return Environment("x", BuildGraph(base=BaseImage("debian:bookworm", dev=dev), steps=steps))


def _exec(dec: Decoded, name: str) -> pb.Op:
    found = [op for dg, op in dec.execs() if dec.name(dg) == name]
    assert len(found) == 1, [dec.name(d) for d in dec.digests]
    return found[0]


def _mount_sources(dec: Decoded, op: pb.Op) -> dict[str, pb.SourceOp]:
    """dest → the source op mounted there (bind mounts of http sources)."""
    out = {}
    for m in op.exec.mounts:
        if m.dest != "/" and m.mountType == pb.BIND and m.input >= 0:
            src = dec.ops[op.inputs[m.input].digest]
            if src.WhichOneof("op") == "source":
                out[m.dest] = src.source
    return out


def _script(op: pb.Op) -> str:
    args = list(op.exec.meta.args)
    assert args[:2] == ["bash", "-c"]
    return args[2]


# (step, exec name, archive URL, checksum-file URL, unpack line's start, sums file format)
# The format is what the publisher writes: Go and rustup a bare/`hex  name` single hash,
# GitHub release assets `hex *name`, Node.js and Julia a listing of every file of the release.
CASES = [
    (GoInstall("1.25.3", span=SPAN), "install.go",
     "https://go.dev/dl/go1.25.3.linux-amd64.tar.gz",
     "https://go.dev/dl/go1.25.3.linux-amd64.tar.gz.sha256", "rm -rf /usr/local/go", "bare"),
    (NodejsInstall("25.1.0", span=SPAN), "install.nodejs",
     "https://nodejs.org/dist/v25.1.0/node-v25.1.0-linux-x64.tar.xz",
     "https://nodejs.org/dist/v25.1.0/SHASUMS256.txt", "mkdir -p /opt/nodejs", "listing"),
    (JuliaInstall(span=SPAN), "install.julia",
     "https://julialang-s3.julialang.org/bin/linux/x64/1.10/julia-1.10.10-linux-x86_64.tar.gz",
     "https://julialang-s3.julialang.org/bin/checksums/julia-1.10.10.sha256", "mkdir -p /opt/julia", "listing"),
    (UvInstall("3.11", span=SPAN), "install.uv",
     "https://github.com/astral-sh/uv/releases/download/0.9.22/uv-x86_64-unknown-linux-gnu.tar.gz",
     "https://github.com/astral-sh/uv/releases/download/0.9.22/uv-x86_64-unknown-linux-gnu.tar.gz.sha256",
     "tar -C /usr/local/bin", "star"),
    (PixiInstall(span=SPAN), "install.pixi",
     "https://github.com/prefix-dev/pixi/releases/download/v0.62.2/pixi-x86_64-unknown-linux-musl.tar.gz",
     "https://github.com/prefix-dev/pixi/releases/download/v0.62.2/pixi-x86_64-unknown-linux-musl.tar.gz.sha256",
     "tar -C /usr/local/bin", "named"),
    (RustInstall("", span=SPAN), "install.rust",
     "https://static.rust-lang.org/rustup/dist/x86_64-unknown-linux-gnu/rustup-init",
     "https://static.rust-lang.org/rustup/dist/x86_64-unknown-linux-gnu/rustup-init.sha256",
     "cp \"$A\" /tmp/rustup-init", "named"),
]
IDS = [c[1] for c in CASES]


def _sums_file(fmt: str, name: str, digest: str) -> bytes:
    other = "0" * 64
    if fmt == "bare":  # Go: the hex digest, no newline
        return digest.encode()
    if fmt == "star":
        return f"{digest} *{name}\n".encode()
    if fmt == "named":
        return f"{digest}  {name}\n".encode()
    # a listing with decoys: a longer name that contains ours, another platform
    return (f"{other}  {name}.asc\n{digest}  {name}\n{'1' * 64}  other-{name}\n").encode()


@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize(("step", "what", "url", "sums_url", "unpack", "fmt"), CASES, ids=IDS)
def test_archive_and_publisher_checksum_are_sources_of_the_step(step, what, url, sums_url, unpack, fmt,
                                                                parallel) -> None:
    caps = frozenset({"mergeop", "diffop"}) if parallel else frozenset()
    dec = decode(compile_environment(_env(step), caps=caps).definition)
    op = _exec(dec, what)
    mounts = _mount_sources(dec, op)
    assert mounts["/run/dsl/download"].identifier == url
    assert mounts["/run/dsl/checksum"].identifier == sums_url
    # the publisher's file is fetched as is: no pinned hash on either source
    assert "http.checksum" not in dict(mounts["/run/dsl/download"].attrs)
    lines = _script(op).split("\n")
    compare = next(i for i, line in enumerate(lines) if 'if [ "$got" != "$want" ]' in line)
    unpack_at = next(i for i, line in enumerate(lines) if line.startswith(unpack))
    assert compare < unpack_at, "the archive is unpacked before it is verified"


def _run_step_shell(op: pb.Op, unpack: str, tmp: Path, archive: bytes, sums: bytes,
                    name: str, sums_name: str) -> subprocess.CompletedProcess[str]:
    """Run the step's script with its mounts moved under ``tmp`` and the unpack line replaced."""
    (tmp / "download").mkdir(exist_ok=True)
    (tmp / "checksum").mkdir(exist_ok=True)
    (tmp / "download" / name).write_bytes(archive)
    (tmp / "checksum" / sums_name).write_bytes(sums)
    lines = []
    for line in _script(op).split("\n"):
        line = line.replace("/run/dsl/download", str(tmp / "download"))
        line = line.replace("/run/dsl/checksum", str(tmp / "checksum"))
        lines.append("echo unpacked" if line.startswith(unpack) else line)
    return subprocess.run(["bash", "-c", "\n".join(lines)], capture_output=True, text=True, check=False)


@pytest.mark.parametrize(("step", "what", "url", "sums_url", "unpack", "fmt"), CASES, ids=IDS)
def test_the_step_shell_accepts_the_good_file_and_rejects_a_tampered_one(
        step, what, url, sums_url, unpack, fmt, tmp_path: Path) -> None:
    op = _exec(decode(compile_environment(_env(step)).definition), what)
    name, sums_name = url.rsplit("/", 1)[-1], sums_url.rsplit("/", 1)[-1]
    good = b"the archive the publisher built"
    digest = hashlib.sha256(good).hexdigest()
    sums = _sums_file(fmt, name, digest)

    ok = _run_step_shell(op, unpack, tmp_path, good, sums, name, sums_name)
    assert ok.returncode == 0 and ok.stdout.strip() == "unpacked", ok.stderr

    bad = _run_step_shell(op, unpack, tmp_path, good + b"!", sums, name, sums_name)
    assert bad.returncode == 1 and "unpacked" not in bad.stdout
    tampered = hashlib.sha256(good + b"!").hexdigest()
    assert f"dsl: {what}: checksum mismatch for {name}" in bad.stderr
    assert digest in bad.stderr and tampered in bad.stderr and sums_url in bad.stderr


def test_a_listing_without_the_file_fails_instead_of_matching_a_longer_name(tmp_path: Path) -> None:
    step, what, url, _, unpack, _ = CASES[1]
    op = _exec(decode(compile_environment(_env(step)).definition), what)
    name = url.rsplit("/", 1)[-1]
    good = b"node"
    only_asc = f"{hashlib.sha256(good).hexdigest()}  {name}.asc\n".encode()
    res = _run_step_shell(op, unpack, tmp_path, good, only_asc, name, "SHASUMS256.txt")
    assert res.returncode == 1 and "unpacked" not in res.stdout
    assert f"lists {name} 0 times" in res.stderr


def test_a_single_checksum_file_with_two_hashes_is_refused(tmp_path: Path) -> None:
    step, what, url, sums_url, unpack, _ = CASES[0]
    op = _exec(decode(compile_environment(_env(step)).definition), what)
    name = url.rsplit("/", 1)[-1]
    digest = hashlib.sha256(b"go").hexdigest()
    res = _run_step_shell(op, unpack, tmp_path, b"go", f"{digest}\n{digest}\n".encode(), name,
                          sums_url.rsplit("/", 1)[-1])
    assert res.returncode == 1 and "should hold one checksum, it has 2 lines" in res.stderr


def test_a_user_chosen_version_changes_both_urls() -> None:
    dec = decode(compile_environment(_env(GoInstall("1.22.1"))).definition)
    mounts = _mount_sources(dec, _exec(dec, "install.go"))
    assert mounts["/run/dsl/download"].identifier == "https://go.dev/dl/go1.22.1.linux-amd64.tar.gz"
    assert mounts["/run/dsl/checksum"].identifier == "https://go.dev/dl/go1.22.1.linux-amd64.tar.gz.sha256"


@pytest.mark.parametrize(("platform", "arch", "digest"), [
    ("linux/amd64", "x86_64", "238abad23f8d4d8ba89dd05df0b0079e278909a36e06955f12bbef4aa94e6131"),
    ("linux/arm64", "aarch64", "4e0723b9d76aa491cf22511dac36f4fdec373e41d2a243ff875e19b8df39bf94"),
])
def test_miniconda_is_pinned_so_buildkit_verifies_it(platform, arch, digest) -> None:
    dec = decode(compile_environment(_env(CondaInstall(span=SPAN)), platform=platform).definition)
    src = _mount_sources(dec, _exec(dec, "install.conda"))["/run/dsl/miniconda"]
    assert src.identifier == f"https://repo.anaconda.com/miniconda/Miniconda3-py311_25.9.1-1-Linux-{arch}.sh"
    assert dict(src.attrs)["http.checksum"] == f"sha256:{digest}"


def test_miniconda_on_an_architecture_without_a_pinned_hash_is_a_located_error() -> None:
    with pytest.raises(CompileError) as err:
        compile_environment(_env(CondaInstall(span=SPAN)), platform="linux/s390x")
    assert "no pinned checksum" in str(err.value) and err.value.span == SPAN
    assert "install.python()" in err.value.hint
