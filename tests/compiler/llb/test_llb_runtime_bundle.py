"""The dev runtime bundle in the LLB: one stage that depends on nothing of the environment,
joined by a MergeOp (parallel shape) or copied (sequential), and named by its digest.

Running it on images without a package manager, libc or shell: tests/engines/buildkit/
test_runtime_bundle.py.
"""

from __future__ import annotations

import pytest

from compiler.image_config import image_config
from compiler.llb import compile_environment
from compiler.llb._bundle import RUNTIME_BASE, STAGE_NAME, bundle_digest
from compiler.llb._ops import Platform
from dsl.ir import AptPackages, BaseImage, BuildGraph, Environment, PipPackages
from tests.compiler.llb._decode import Decoded, decode
from tests.compiler.llb._envs import dev_workspace

PARALLEL = frozenset({"mergeop", "diffop"})
PREFIX = "/opt/envdsl/runtime"


def _dev(image: str, *steps) -> Environment:
    return Environment("proj", BuildGraph(base=BaseImage(image, dev=True), steps=steps))


def _stage(dec: Decoded) -> str:
    (stage,) = [d for d, _ in dec.execs() if dec.name(d) == STAGE_NAME]
    return stage


@pytest.mark.parametrize("caps", [frozenset(), PARALLEL])
def test_one_stage_for_every_environment_and_base_image(caps) -> None:
    """The stage's bytes depend on neither the build file nor the user's base image: the
    builder caches it once for all of them."""
    envs = [dev_workspace(), _dev("busybox:stable"), _dev("ubuntu:24.04", AptPackages(("jq",)), PipPackages(("six",)))]
    stages = {_stage(decode(compile_environment(e, caps=caps).definition)) for e in envs}
    assert stages == {bundle_digest(Platform())}
    (op,) = [decode(compile_environment(envs[1], caps=caps).definition).ops[d] for d in stages]
    script = op.exec.meta.args[2]
    assert "patchelf --set-interpreter" in script and "--force-rpath --set-rpath" in script
    # built from the pinned Debian, never from the user's image
    dec = decode(compile_environment(envs[1], caps=caps).definition)
    assert dec.ops[op.inputs[0].digest].source.identifier == "docker-image://" + RUNTIME_BASE


def test_parallel_shape_merges_a_layer_of_only_the_prefix() -> None:
    dec = decode(compile_environment(_dev("busybox:stable"), caps=PARALLEL).definition)
    stage = _stage(dec)
    (layer,) = [d for d in dec.digests if dec.ops[d].WhichOneof("op") == "file"
                and any(i.digest == stage for i in dec.ops[d].inputs)]
    file = dec.ops[layer].file
    assert len(dec.ops[layer].inputs) == 1 and file.actions[0].input == -1  # onto scratch
    assert (file.actions[0].copy.src, file.actions[0].copy.dest) == (PREFIX, PREFIX)
    (merge,) = [d for d in dec.digests if dec.ops[d].WhichOneof("op") == "merge"]
    assert [i.digest for i in dec.ops[merge].inputs][1] == layer
    assert dec.ops[dec.ops[merge].inputs[0].digest].source.identifier == "docker-image://docker.io/library/busybox:stable"


def test_sequential_shape_copies_the_prefix_out_of_the_stage() -> None:
    """BuildKit v0.8 (dockerd 20.10) has no MergeOp: the same files, by a FileOp copy."""
    dec = decode(compile_environment(_dev("busybox:stable")).definition)
    assert "merge" not in dec.kinds()
    stage = _stage(dec)
    (copy,) = [d for d in dec.digests if dec.ops[d].WhichOneof("op") == "file"
               and any(i.digest == stage for i in dec.ops[d].inputs)]
    action = dec.ops[copy].file.actions[0]
    assert (action.copy.src, action.copy.dest) == (PREFIX, PREFIX)
    base = dec.ops[copy].inputs[action.input].digest
    assert dec.ops[base].source.identifier == "docker-image://docker.io/library/busybox:stable"


def test_the_runtime_base_is_configurable_and_changes_the_digest() -> None:
    local = compile_environment(_dev("busybox:stable"), runtime_base="debian:bookworm")
    dec = decode(local.definition)
    assert "docker-image://docker.io/library/debian:bookworm" in dec.sources()
    assert _stage(dec) == bundle_digest(Platform(), "debian:bookworm") != bundle_digest(Platform())


def test_dev_images_are_labelled_with_their_runtime_and_find_it_last_on_path() -> None:
    env = _dev("busybox:stable")
    config = image_config(env, base_config=None, runtime_base="debian:bookworm")["config"]
    assert config["Labels"]["dev.envdsl.runtime.bundle"] == bundle_digest(Platform(), "debian:bookworm")
    path = dict(e.split("=", 1) for e in config["Env"])["PATH"]
    assert path.endswith(":/bin:/opt/envdsl/runtime/bin")
    plain = Environment("proj", BuildGraph(base=BaseImage("busybox:stable")))
    labels = image_config(plain, base_config=None)["config"]["Labels"]
    assert "dev.envdsl.runtime.bundle" not in labels
    assert not any(PREFIX in a for _, op in decode(compile_environment(plain).definition).execs()
                   for a in op.exec.meta.args)
