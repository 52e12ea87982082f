"""install.uv(python_version=) and install.pixi(use_pixi_mirror=, pypi_index=) change the build
as envd's do: uv installs the Python (and sets uv's variables), pixi gets /etc/pixi/config.toml."""

from __future__ import annotations

import tomllib

import pytest

from compiler.image_config import image_config
from compiler.llb import compile_environment
from compiler.llb._toolchains import _toml, pixi_config
from compiler.llb.protos import ops_pb2 as pb
from dsl.errors import CompileError
from dsl.ir import (
    BaseImage,
    BuildGraph,
    Environment,
    Owner,
    PixiInstall,
    Span,
    UvInstall,
)
from tests.compiler.llb._decode import Decoded, decode

SPAN = Span("build.envd", 3, 5)


def _env(step, *, dev: bool = False, owner: Owner | None = None) -> Environment:
    return Environment("x", BuildGraph(base=BaseImage("debian:bookworm", dev=dev), owner=owner, steps=(step,)))


def _named(dec: Decoded, name: str) -> list[pb.Op]:
    return [dec.ops[d] for d in dec.digests if dec.name(d) == name]


# ---- uv -------------------------------------------------------------------------------------


def test_uv_installs_the_requested_python_as_root_in_a_plain_image() -> None:
    dec = decode(compile_environment(_env(UvInstall("3.12", span=SPAN))).definition)
    (op,) = _named(dec, "install.uv: python 3.12")
    assert op.exec.meta.args[2].endswith("\nuv python install 3.12")
    assert op.exec.meta.user == ""
    assert {"UV_LINK_MODE=copy", "UV_PYTHON_PREFERENCE=only-managed"} <= set(op.exec.meta.env)


def test_uv_python_version_changes_the_llb() -> None:
    a = compile_environment(_env(UvInstall("3.12"))).definition
    b = compile_environment(_env(UvInstall("3.11"))).definition
    assert a != b
    assert _named(decode(b), "install.uv: python 3.11")


def test_uv_installs_python_as_the_dev_user_in_their_home() -> None:
    dec = decode(compile_environment(_env(UvInstall("3.12"), dev=True, owner=Owner(1001, 1002))).definition)
    (op,) = _named(dec, "install.uv: python 3.12")
    assert op.exec.meta.user == "1001:1002" and "HOME=/home/envd" in op.exec.meta.env
    # only that step: the unpack into /usr/local/bin stays root's
    (unpack,) = _named(dec, "install.uv")
    assert unpack.exec.meta.user == ""


def test_uv_sets_envds_variables_in_the_image() -> None:
    env = image_config(_env(UvInstall("3.12")), base_config=None)["config"]["Env"]
    assert "UV_LINK_MODE=copy" in env and "UV_PYTHON_PREFERENCE=only-managed" in env
    assert not any(e.startswith("UV_") for e in image_config(_env(PixiInstall()), base_config=None)["config"]["Env"])


def test_a_bad_uv_python_version_is_a_located_compile_error() -> None:
    with pytest.raises(CompileError) as err:
        compile_environment(_env(UvInstall("3.12; rm -rf /", span=SPAN)))
    assert err.value.span == SPAN


# ---- pixi -----------------------------------------------------------------------------------


def _pixi_file(step: PixiInstall) -> tuple[bytes, int] | None:
    dec = decode(compile_environment(_env(step)).definition)
    ops = _named(dec, "install.pixi: /etc/pixi/config.toml")
    if not ops:
        return None
    (op,) = ops
    mk = [a.mkfile for a in op.file.actions if a.WhichOneof("action") == "mkfile"]
    assert [m.path for m in mk] == ["/etc/pixi/config.toml"]
    return mk[0].data, mk[0].mode


def test_pixi_without_settings_writes_no_config() -> None:
    assert _pixi_file(PixiInstall()) is None


def test_pixi_mirror_maps_anaconda_to_prefix_dev_except_label_channels() -> None:
    data, mode = _pixi_file(PixiInstall(use_pixi_mirror=True))
    assert mode == 0o644
    assert tomllib.loads(data.decode()) == {"mirrors": {
        "https://conda.anaconda.org": ["https://prefix.dev/"],
        "https://conda.anaconda.org/conda-forge/label": ["https://conda.anaconda.org/conda-forge/label"],
    }}


def test_pixi_pypi_index_is_written_as_pypi_config() -> None:
    data, _ = _pixi_file(PixiInstall(pypi_index="https://mirror.example/simple"))
    assert tomllib.loads(data.decode()) == {"pypi-config": {"index-url": "https://mirror.example/simple"}}


def test_pixi_both_settings_give_both_tables() -> None:
    data, _ = _pixi_file(PixiInstall(use_pixi_mirror=True, pypi_index="https://mirror.example/simple"))
    doc = tomllib.loads(data.decode())
    assert set(doc) == {"mirrors", "pypi-config"}
    assert doc["pypi-config"]["index-url"] == "https://mirror.example/simple"


def test_every_pixi_setting_changes_the_llb() -> None:
    blobs = {compile_environment(_env(PixiInstall(m, i))).definition
             for m in (False, True) for i in ("", "https://mirror.example/simple")}
    assert len(blobs) == 4


def test_a_bad_pixi_index_is_a_located_compile_error() -> None:
    with pytest.raises(CompileError) as err:
        pixi_config(PixiInstall(pypi_index="https://x/\"\n[evil]", span=SPAN))
    assert err.value.span == SPAN


@pytest.mark.parametrize("text", ['a"b', "back\\slash", "new\nline", "tab\tdel\x7f", "ünïcode"])
def test_toml_strings_round_trip(text: str) -> None:
    assert tomllib.loads(f"k = {_toml(text)}")["k"] == text
