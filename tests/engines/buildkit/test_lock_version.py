"""Which builders get reproducible-timestamp exporter attributes (no engine: a fake channel)."""

from __future__ import annotations

import grpc
import pytest

from dsl.cli._locked import reproducible_attrs
from dsl.engines.buildkit import builder_version, version_at_least
from dsl.engines.buildkit._lock import hash_mismatch_hint
from dsl.engines.buildkit.protos import bk_control_pb2 as control


class _Unimplemented(grpc.RpcError):
    def code(self):
        return grpc.StatusCode.UNIMPLEMENTED

    def details(self):
        return "unknown method Info"


class _Builder:
    """Answers Control.Info with ``version``, or UNIMPLEMENTED (None) as BuildKit v0.8 does."""

    url = "docker://fake"

    def __init__(self, version: str | None) -> None:
        self.version = version

    def unary(self, method, response_type):
        assert method == "/moby.buildkit.v1.Control/Info"

        def call(request, timeout):
            if self.version is None:
                raise _Unimplemented()
            return control.InfoResponse(buildkitVersion=control.BuildkitVersion(version=self.version))
        return call


@pytest.mark.parametrize(("version", "expected"), [("v0.13.0", True), ("v0.16.1-rc1", True), ("v0.12.5", False),
                                                   (None, False), ("garbage", False)])
def test_version_at_least_0_13(version, expected):
    assert version_at_least(version, (0, 13)) is expected


def test_builder_version_reads_info_and_is_none_on_v0_8():
    assert builder_version(_Builder("v0.13.2")) == "v0.13.2"
    assert builder_version(_Builder(None)) is None


def test_a_new_builder_gets_source_date_epoch_and_rewrite_timestamp(capsys):
    assert reproducible_attrs(_Builder("v0.13.2"), 1700000000) == {
        "source-date-epoch": "1700000000", "rewrite-timestamp": "true"}
    assert capsys.readouterr().err == ""


def test_dockerd_20_10_gets_none_and_a_note_saying_why(capsys):
    assert reproducible_attrs(_Builder(None), 1700000000) == {}
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot rewrite layer timestamps" in err and "docs/lock.md" in err


def test_a_pip_hash_mismatch_hint_names_the_distribution():
    logs = ["ERROR: THESE PACKAGES DO NOT MATCH THE HASHES FROM THE REQUIREMENTS FILE. If you have ...",
            "    dsl-b==1.0 from http://idx/files/dsl_b-1.0-py3-none-any.whl#sha256=abc:",
            "        Expected sha256 000", "             Got        abc"]
    hint = hash_mismatch_hint(logs)
    assert hint is not None and hint.startswith("dsl-b 1.0 does not match the sha256 in build.envd.lock")
    assert hash_mismatch_hint(["E: Unable to locate package nosuch"]) is None
