"""The LLB builder and marshaller: digests as BuildKit computes them, immutability, metadata."""

from __future__ import annotations

import pytest

from compiler.llb import (
    BindMount,
    CacheMount,
    CacheSharing,
    CopyFrom,
    Mkdir,
    Mkfile,
    Owner,
    Platform,
    SecretMount,
    diff,
    http,
    image,
    local,
    marshal,
    merge,
    normalize_image_ref,
)
from compiler.llb.protos import ops_pb2 as pb
from dsl.errors import CompileError
from dsl.ir import Span
from tests.compiler.llb._decode import decode

# What dockerd 20.10's own Go Dockerfile frontend produced for `FROM bb:latest` (facts §1).
GO_FROM_BB_DIGEST = "sha256:c55e5eaeed324e3fc3a25d8a03df19ab7aff8beaca09df0babc30ec978300c37"


def test_image_source_digest_equals_buildkit_dockerfile_frontend() -> None:
    m = marshal(image("bb:latest"))
    assert m.digests == (GO_FROM_BB_DIGEST,)
    assert marshal(image("docker.io/library/bb")).digests == (GO_FROM_BB_DIGEST,)


def _chain(names: tuple[str, str, str]):
    base = image("debian:bookworm", name=names[0])
    ctx = local("context", include=["a.txt"], shared_key_hint="context")
    st = base.with_cwd("/w").with_env("A", "1").run(
        ["bash", "-c", "true"], name=names[1],
        mounts=[CacheMount("/var/cache/apt", "apt", CacheSharing.LOCKED),
                BindMount("/ctx", ctx.output), SecretMount("/run/s", "sid", mode=0o444)])
    return st.file(Mkdir("/x", owner=Owner(1000, 1000)), CopyFrom(ctx.output, "a.txt", "/x/a"),
                   Mkfile("/x/b", b"data"), name=names[2])


def test_names_never_change_digests_and_remarshal_is_byte_identical() -> None:
    a = marshal(_chain(("one", "two", "three")))
    b = marshal(_chain(("uno", "dos", "tres")))
    assert a.digests == b.digests
    assert a.definition != b.definition  # only metadata differs
    assert marshal(_chain(("one", "two", "three"))).definition == a.definition
    assert set(a.names.values()) == {"one", "two", "three", "local://context"}


def test_states_are_immutable_values() -> None:
    base = image("debian:bookworm")
    child = base.with_env("X", "1").with_cwd("/tmp").run(["true"])
    assert base.env == () and base.cwd == "/" and base.output is not child.output
    assert base.with_env("X", "1").with_env("X", "2").env == (("X", "2"),)


def test_decoded_structure_mounts_and_file_actions() -> None:
    dec = decode(marshal(_chain(("one", "two", "three"))).definition)
    (dg, ex), = dec.execs()
    mounts = {m.dest: m for m in ex.exec.mounts}
    assert list(mounts) == ["/", "/ctx", "/run/s", "/var/cache/apt"]  # root first, then sorted
    assert mounts["/"].input == 0 and mounts["/"].output == 0
    assert mounts["/var/cache/apt"].mountType == pb.CACHE and mounts["/var/cache/apt"].input == -1
    assert mounts["/var/cache/apt"].cacheOpt.sharing == pb.LOCKED
    assert mounts["/run/s"].mountType == pb.SECRET and mounts["/run/s"].secretOpt.mode == 0o444
    assert mounts["/ctx"].readonly and mounts["/ctx"].output == -1
    assert list(ex.exec.meta.env) == ["A=1"] and ex.exec.meta.cwd == "/w"
    caps = set(dec.definition.metadata[dg].caps)
    assert {"exec.meta.base", "exec.mount.cache", "exec.mount.secret", "exec.mount.bind"} <= caps
    fop = dec.ops[dec.digests[-2]]
    acts = fop.file.actions
    assert [a.WhichOneof("action") for a in acts] == ["mkdir", "copy", "mkfile"]
    assert [a.output for a in acts] == [-1, -1, 0]
    assert acts[1].input == len(fop.inputs) and acts[2].input == len(fop.inputs) + 1
    assert acts[0].mkdir.owner.user.byID == 1000 and acts[0].mkdir.timestamp == -1
    assert acts[1].copy.mode == -1 and acts[1].copy.timestamp == -1


def test_identical_ops_collapse_to_one_vertex() -> None:
    a, b = image("bb"), image("bb")
    dec = decode(marshal(merge([a, b.run(["true"])])).definition)
    assert dec.sources().count("docker-image://docker.io/library/bb:latest") == 1


def test_merge_and_diff_declare_modern_caps() -> None:
    base = image("bb")
    m = marshal(merge([base, diff(base, base.run(["touch", "/x"]))]))
    assert {"mergeop", "diffop"} <= m.caps
    dec = decode(m.definition)
    assert dec.kinds() == {"source", "exec", "diff", "merge"}


def test_local_and_http_sources_carry_attrs_and_caps() -> None:
    ctx = local("context", include=["b", "a", "a"], shared_key_hint="context")
    dl = http("https://example.com/f.tgz", checksum="sha256:" + "0" * 64, filename="f.tgz")
    st = image("bb").file(CopyFrom(ctx.output, "a", "/a"), CopyFrom(dl.output, "f.tgz", "/f"))
    m = marshal(st)
    dec = decode(m.definition)
    loc = next(dec.ops[d] for d in dec.digests if dec.ops[d].source.identifier == "local://context")
    assert dict(loc.source.attrs) == {"local.includepattern": '["a", "b"]',
                                      "local.sharedkeyhint": "context"}
    assert "local.session" not in loc.source.attrs and "local.unique" not in loc.source.attrs
    assert {"source.local.includepatterns", "source.http.checksum"} <= m.caps


def test_platform_on_every_op() -> None:
    p = Platform.parse("linux/arm64/v8")
    dec = decode(marshal(image("bb", platform=p).run(["true"])).definition)
    for dg in dec.digests[:-1]:
        assert (dec.ops[dg].platform.OS, dec.ops[dg].platform.Architecture,
                dec.ops[dg].platform.Variant) == ("linux", "arm64", "v8")


def test_bad_input_is_raised_at_marshal_with_span() -> None:
    st = image("Not A Ref", span=Span("build.envd", 3, 5))  # constructing never fails
    with pytest.raises(CompileError) as err:
        marshal(st)
    assert str(err.value).startswith("build.envd:3:5: ")
    with pytest.raises(CompileError):
        marshal(image("bb").run([]))


def test_deep_graphs_do_not_recurse() -> None:
    st = image("bb")
    for i in range(3000):
        st = st.run(["echo", str(i)])
    assert len(decode(marshal(st).definition).digests) == 3002


@pytest.mark.parametrize(("ref", "want"), [
    ("ubuntu", "docker.io/library/ubuntu:latest"),
    ("ubuntu:22.04", "docker.io/library/ubuntu:22.04"),
    ("nvidia/cuda:12.1.0-runtime", "docker.io/nvidia/cuda:12.1.0-runtime"),
    ("index.docker.io/library/bb", "docker.io/library/bb:latest"),
    ("ghcr.io/o/i@sha256:" + "a" * 64, "ghcr.io/o/i@sha256:" + "a" * 64),
    ("localhost:5000/x:1", "localhost:5000/x:1"),
    ("127.0.0.1:5000/team/x", "127.0.0.1:5000/team/x:latest"),
    ("debian:bookworm@sha256:" + "b" * 64, "docker.io/library/debian:bookworm@sha256:" + "b" * 64),
])
def test_image_refs_are_normalised_like_docker(ref: str, want: str) -> None:
    assert normalize_image_ref(ref) == want


@pytest.mark.parametrize("ref", ["", "Ubuntu", "a b", "x@sha256:12", "x:bad tag", "x:-t", "a//b"])
def test_bad_image_refs_are_rejected(ref: str) -> None:
    with pytest.raises(ValueError):
        normalize_image_ref(ref)
