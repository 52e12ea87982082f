"""install.vscode_extensions with versions: Open VSX downloads verified against Open VSX's
.sha256, unpacked where VS Code Server looks. Ids without a version (Open VSX's latest, looked
up at build time): tests/compiler/llb/test_llb_vscode_latest.py."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from compiler.llb import compile_environment
from compiler.llb.protos import ops_pb2 as pb
from dsl.errors import CompileError
from dsl.ir import (
    BaseImage,
    BuildGraph,
    Environment,
    Owner,
    Span,
    VscodeExtensions,
)
from tests.compiler.llb._decode import Decoded, decode

SPAN = Span("build.envd", 4, 5)
API = "https://open-vsx.org/api"


def _env(*ids: str, dev: bool = True, owner: Owner | None = None) -> Environment:
    return Environment("x", BuildGraph(base=BaseImage("debian:bookworm", dev=dev), owner=owner,
                                       steps=(VscodeExtensions(ids, span=SPAN),)))


def _step(dec: Decoded) -> pb.Op:
    found = [op for dg, op in dec.execs()
             if dec.name(dg).startswith("install.vscode_extensions") and "look up" not in dec.name(dg)]
    assert len(found) == 1
    return found[0]


def _sources(dec: Decoded, op: pb.Op) -> dict[str, str]:
    return {m.dest: dec.ops[op.inputs[m.input].digest].source.identifier
            for m in op.exec.mounts if m.mountType == pb.BIND and m.dest != "/"}


def test_each_extension_and_its_open_vsx_checksum_are_sources_of_one_step() -> None:
    dec = decode(compile_environment(_env("ms-python.python-2024.8.1", "REditorSupport.r-lsp-0.1.0")).definition)
    op = _step(dec)
    assert _sources(dec, op) == {
        "/run/dsl/vsix/0": f"{API}/ms-python/python/2024.8.1/file/ms-python.python-2024.8.1.vsix",
        "/run/dsl/vsix-sha256/0": f"{API}/ms-python/python/2024.8.1/file/ms-python.python-2024.8.1.sha256",
        "/run/dsl/vsix/1": f"{API}/REditorSupport/r-lsp/0.1.0/file/REditorSupport.r-lsp-0.1.0.vsix",
        "/run/dsl/vsix-sha256/1": f"{API}/REditorSupport/r-lsp/0.1.0/file/REditorSupport.r-lsp-0.1.0.sha256",
    }
    script = op.exec.meta.args[2]
    assert script.index('if [ "$got" != "$want" ]') < script.index('dsl_unzip "$A" "$T"')
    assert script.rstrip().endswith("chown -R 1000:1000 /home/envd/.vscode-server")
    assert op.exec.meta.user == ""  # root unpacks, then hands the tree to the user


def test_root_dev_user_and_non_dev_images_need_no_chown() -> None:
    for env in (_env("a.b-1.0.0", owner=Owner(0, 0)), _env("a.b-1.0.0", dev=False)):
        assert "chown" not in _step(decode(compile_environment(env).definition)).exec.meta.args[2]


def test_versioned_ids_need_no_lookup_step_and_no_download_tool() -> None:
    """Pinned extensions keep their one step (http sources only): nothing is resolved or
    fetched at build time."""
    dec = decode(compile_environment(_env("ms-python.python-2024.8.1")).definition)
    names = [dec.name(dg) for dg, _ in dec.execs()]
    assert not any("look up" in n for n in names), names
    assert "dsl_fetch" not in _step(dec).exec.meta.args[2]


def test_an_id_that_is_not_an_extension_is_a_located_compile_error() -> None:
    with pytest.raises(CompileError) as err:
        compile_environment(_env("python"))
    assert "invalid VS Code extension id" in str(err.value) and err.value.span == SPAN


def _vsix(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


def _run(tmp: Path, vsix: bytes, sums: bytes, *, tools: str) -> subprocess.CompletedProcess[str]:
    """The step's script with its paths moved under ``tmp``; ``tools`` is a PATH directory
    holding only what the script may use (so both unpack tools are exercised)."""
    op = _step(decode(compile_environment(_env("ms-python.python-2024.8.1", dev=False)).definition))
    stem = "ms-python.python-2024.8.1"
    (tmp / "vsix" / "0").mkdir(parents=True)
    (tmp / "vsix-sha256" / "0").mkdir(parents=True)
    (tmp / "vsix" / "0" / f"{stem}.vsix").write_bytes(vsix)
    (tmp / "vsix-sha256" / "0" / f"{stem}.sha256").write_bytes(sums)
    script = (op.exec.meta.args[2].replace("/run/dsl/vsix", str(tmp / "vsix"))
              .replace("/home/envd/.vscode-server/extensions", str(tmp / "extensions"))
              .replace("/tmp/dsl-vsix", str(tmp / "work")))
    return subprocess.run(["/bin/bash", "-c", script], capture_output=True, text=True,
                          env={"PATH": tools, "LC_ALL": "C"}, check=False)


def _tools(tmp: Path, *names: str) -> str:
    """A directory of symlinks to the host's tools (coreutils for the script, plus ``names``)."""
    import shutil

    d = tmp / "bin"
    d.mkdir()
    for tool in ("sha256sum", "mkdir", "rm", "mv", *names):
        found = shutil.which(tool) if tool != "python3" else sys.executable
        assert found, tool
        (d / tool).symlink_to(found)
    return str(d)


@pytest.mark.parametrize("unpacker", ["python3", "unzip"])
def test_the_step_shell_unpacks_a_verified_vsix(unpacker: str, tmp_path: Path) -> None:
    import shutil

    if unpacker == "unzip" and not shutil.which("unzip"):
        pytest.skip("no unzip on this machine")
    vsix = _vsix({"extension/package.json": b'{"name": "python"}', "extension.vsixmanifest": b"<x/>"})
    good = _run(tmp_path, vsix, hashlib.sha256(vsix).hexdigest().encode(), tools=_tools(tmp_path, unpacker))
    assert good.returncode == 0, good.stderr
    folder = tmp_path / "extensions" / "ms-python.python-2024.8.1"
    assert (folder / "package.json").read_bytes() == b'{"name": "python"}'
    assert not (folder / "extension.vsixmanifest").exists() and not (tmp_path / "work").exists()


def test_a_tampered_vsix_is_refused_before_anything_is_unpacked(tmp_path: Path) -> None:
    vsix = _vsix({"extension/package.json": b"{}"})
    want = hashlib.sha256(b"what Open VSX served").hexdigest()
    bad = _run(tmp_path, vsix, want.encode(), tools=_tools(tmp_path, "python3"))
    assert bad.returncode == 1
    assert "checksum mismatch for ms-python.python-2024.8.1.vsix" in bad.stderr
    assert want in bad.stderr and hashlib.sha256(vsix).hexdigest() in bad.stderr
    assert not (tmp_path / "extensions" / "ms-python.python-2024.8.1").exists()


def test_a_vsix_without_an_extension_directory_fails_clearly(tmp_path: Path) -> None:
    vsix = _vsix({"package.json": b"{}"})
    res = _run(tmp_path, vsix, hashlib.sha256(vsix).hexdigest().encode(), tools=_tools(tmp_path, "python3"))
    assert res.returncode == 1 and "has no extension/ directory" in res.stderr


def test_without_unzip_or_python3_the_step_installs_unzip_with_the_package_manager(tmp_path: Path) -> None:
    vsix = _vsix({"extension/package.json": b"{}"})
    res = _run(tmp_path, vsix, hashlib.sha256(vsix).hexdigest().encode(), tools=_tools(tmp_path))
    assert res.returncode == 1  # this PATH has no apt-get, apk or dnf either
    assert "install.vscode_extensions (to unpack .vsix files) needs a package manager" in res.stderr
    op = _step(decode(compile_environment(_env("a.b-1.0.0")).definition))
    assert "apk add --no-cache unzip" in op.exec.meta.args[2]
