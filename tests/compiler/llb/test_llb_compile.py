"""IR → LLB: structure of the decoded definition, both graph shapes, caches, quoting."""

from __future__ import annotations

import shlex

import pytest

from compiler.llb import compile_environment
from compiler.llb.protos import ops_pb2 as pb
from dsl.errors import CompileError
from dsl.ir import AptPackages, BaseImage, BuildGraph, Environment, PipPackages, Run, Span
from tests.compiler.llb._decode import Decoded, decode
from tests.compiler.llb._envs import apt_pip, dev_workspace

PARALLEL = frozenset({"mergeop", "diffop"})


def _exec_named(dec: Decoded, prefix: str) -> pb.Op:
    found = [op for dg, op in dec.execs() if dec.name(dg).startswith(prefix)]
    assert found, f"no exec step named {prefix!r}: {[dec.name(d) for d in dec.digests]}"
    return found[0]


def _script(op: pb.Op) -> str:
    """The script of a step: bash, or the dev runtime's sh for the dev layer's own steps."""
    args = list(op.exec.meta.args)
    assert args[:2] in (["bash", "-c"], ["/opt/envdsl/runtime/bin/sh", "-c"])
    assert args[2].startswith("set -euo pipefail\n")
    return args[2]


@pytest.mark.parametrize("caps", [frozenset(), PARALLEL])
@pytest.mark.parametrize("make", [apt_pip, dev_workspace])
def test_definition_is_well_formed(make, caps) -> None:
    res = compile_environment(make(), caps=caps)
    dec = decode(res.definition)
    declared = set().union(*(set(dec.definition.metadata[d].caps) for d in dec.digests))
    assert declared == set(res.caps_used)
    assert res.shape == ("parallel" if caps else "sequential")
    assert res.base_image == "docker.io/library/debian:bookworm"
    assert dec.sources()[0] == "docker-image://docker.io/library/debian:bookworm"


def test_sequential_shape_has_no_merge_or_diff() -> None:
    res = compile_environment(dev_workspace(), caps=frozenset({"source.image"}))
    assert not {"mergeop", "diffop"} & res.caps_used
    assert not {"merge", "diff"} & decode(res.definition).kinds()
    forced = compile_environment(dev_workspace(), caps=PARALLEL, sequential=True)
    assert forced.shape == "sequential" and "mergeop" not in forced.caps_used


def test_parallel_shape_builds_apt_and_toolchains_from_one_parent() -> None:
    dec = decode(compile_environment(dev_workspace(), caps=PARALLEL).definition)
    apt = _exec_named(dec, "install.apt_packages")
    py = _exec_named(dec, "install.python")
    go = _exec_named(dec, "install.go")
    assert apt.inputs[0].digest == py.inputs[0].digest == go.inputs[0].digest
    merges = [dec.ops[d] for d in dec.digests if dec.ops[d].WhichOneof("op") == "merge"]
    diffs = [dec.ops[d] for d in dec.digests if dec.ops[d].WhichOneof("op") == "diff"]
    assert len(diffs) == 3 and merges


def test_both_shapes_run_the_same_steps() -> None:
    def steps(caps):
        dec = decode(compile_environment(dev_workspace(), caps=caps).definition)
        return sorted(list(op.exec.meta.args) for _, op in dec.execs())
    assert steps(frozenset()) == steps(PARALLEL)


def test_apt_uses_global_locked_caches_and_keeps_archives() -> None:
    dec = decode(compile_environment(apt_pip()).definition)
    apt = _exec_named(dec, "install.apt_packages")
    caches = {m.dest: m.cacheOpt for m in apt.exec.mounts if m.mountType == pb.CACHE}
    assert caches["/var/cache/apt"].ID == "dsl-apt-cache-debian-bookworm-amd64"
    assert caches["/var/lib/apt"].ID == "dsl-apt-lists-debian-bookworm-amd64"
    assert {c.sharing for c in caches.values()} == {pb.LOCKED}
    script = _script(apt)
    assert "rm -f /etc/apt/apt.conf.d/docker-clean" in script
    assert "apt-get update -o Acquire::Languages=none" in script
    assert "apt-get install -y --no-install-recommends -o Dpkg::Options::=--force-unsafe-io jq curl" in script


def test_pip_uses_a_venv_on_system_python_and_a_shared_cache() -> None:
    dec = decode(compile_environment(apt_pip()).definition)
    pip = _exec_named(dec, "install.python_packages six idna")
    assert "python3 -m venv --without-pip --system-site-packages /opt/dsl/python" in _script(
        _exec_named(dec, "install.apt_packages"))
    assert _script(pip) == "set -euo pipefail\n/opt/dsl/python/bin/python -m pip install six idna"
    (cache,) = [m for m in pip.exec.mounts if m.mountType == pb.CACHE]
    assert cache.dest == "/root/.cache/pip" and cache.cacheOpt.sharing == pb.SHARED
    assert cache.cacheOpt.ID == "dsl-pip-cache-amd64"
    assert any(e.startswith("PATH=/opt/dsl/python/bin:") for e in pip.exec.meta.env)
    # each python_packages call is its own step, in order
    names = [dec.name(d) for d, _ in dec.execs()]
    assert names.index("install.python_packages six idna") < names.index("install.python_packages requests")


def test_version_specs_are_quoted() -> None:
    dec = decode(compile_environment(dev_workspace()).definition)
    pip = _exec_named(dec, "install.python_packages numpy")
    assert shlex.split(_script(pip).splitlines()[-1])[-2:] == ["numpy", "pandas>=2,<3"]
    assert "'pandas>=2,<3'" in _script(pip)


def test_run_steps_are_one_bash_script_as_the_dev_user_in_the_workdir() -> None:
    dec = decode(compile_environment(dev_workspace()).definition)
    run = _exec_named(dec, "run ")
    assert _script(run) == "set -euo pipefail\necho 'it''s' > out.txt\nls"
    assert run.exec.meta.user == "1234:2345" and run.exec.meta.cwd == "/home/envd/workspace"


def test_ca_bundle_is_a_secret_mount_on_every_exec_and_never_a_file() -> None:
    res = compile_environment(dev_workspace(), ca_bundle=True)
    dec = decode(res.definition)
    assert res.secrets == ("dsl-ca-bundle",)
    # the dev runtime's stage is the one exception: the same bytes with or without a CA bundle,
    # so every build on a builder shares it (it fetches from Debian's http mirrors)
    (stage,) = [dg for dg, _ in dec.execs() if dec.name(dg).startswith("dev runtime:")]
    assert stage in decode(compile_environment(dev_workspace()).definition).ops
    for dg, op in dec.execs():
        if dg == stage:
            assert not [m for m in op.exec.mounts if m.mountType == pb.SECRET]
            continue
        (secret,) = [m for m in op.exec.mounts if m.mountType == pb.SECRET]
        assert (secret.dest, secret.secretOpt.ID, secret.secretOpt.mode, secret.readonly) == (
            "/run/dsl/ca-bundle.crt", "dsl-ca-bundle", 0o444, True)
        assert "PIP_CERT=/run/dsl/ca-bundle.crt" in op.exec.meta.env
        assert "SSL_CERT_FILE=/run/dsl/ca-bundle.crt" in op.exec.meta.env
    apt = _script(_exec_named(dec, "install.apt_packages"))
    assert "-o Acquire::https::CAInfo=/run/dsl/ca-bundle.crt" in apt
    for d in dec.digests:
        if dec.ops[d].WhichOneof("op") == "file":
            for a in dec.ops[d].file.actions:
                assert "ca-bundle" not in (a.mkfile.path if a.HasField("mkfile") else "")


def test_build_context_is_served_once_with_only_the_needed_paths() -> None:
    res = compile_environment(dev_workspace())
    (src,) = res.local_sources
    assert src.name == "context"
    assert src.include == ("dist/x-1.0-py3-none-any.whl", "requirements.txt", "src")
    dec = decode(res.definition)
    (local,) = [dec.ops[d].source for d in dec.digests if dec.ops[d].source.identifier.startswith("local://")]
    assert local.identifier == "local://context"
    assert local.attrs["local.sharedkeyhint"] == "context" and "local.session" not in local.attrs
    assert compile_environment(apt_pip()).local_sources == ()


def test_http_download_is_checksummed_source() -> None:
    dec = decode(compile_environment(dev_workspace()).definition)
    (dl,) = [dec.ops[d].source for d in dec.digests
             if dec.ops[d].source.identifier == "https://example.com/data.tgz"]
    assert dl.attrs["http.checksum"] == "sha256:" + "ab" * 32


def test_vertex_spans_point_at_the_build_file() -> None:
    res = compile_environment(apt_pip())
    by_name = {res.names[d]: str(s) for d, s in res.vertex_spans.items()}
    assert by_name["install.python_packages requests"] == "build.envd:9:5"


def test_dev_layer_files_and_entrypoint() -> None:
    dec = decode(compile_environment(dev_workspace()).definition)
    files = {a.mkfile.path: a.mkfile for d in dec.digests if dec.ops[d].WhichOneof("op") == "file"
             for a in dec.ops[d].file.actions if a.HasField("mkfile")}
    entry = files["/usr/local/bin/dsl-entrypoint"]
    assert entry.mode == 0o755
    text = entry.data.decode()
    assert "DSL_AUTHORIZED_KEYS" in text and "ENVD_AUTHORIZED_KEYS_PATH" in text
    assert "supervise daemon-1 sleep 1000" in text
    sshd = files["/etc/dsl/sshd/sshd_config"].data.decode()
    assert "Port 2222" in sshd and "UsePAM no" in sshd and "PasswordAuthentication no" in sshd
    assert not any(p.endswith("authorized_keys") for p in files)  # no key baked in
    user = _script(_exec_named(dec, "dev: user envd"))
    assert "uid=1234 gid=2345" in user


@pytest.mark.parametrize(("step", "bad"), [
    (lambda: AptPackages(("jq; rm -rf /",), span=Span("b.envd", 3, 1)), "apt package"),
    (lambda: PipPackages(("numpy; rm -rf /",), span=Span("b.envd", 3, 1)), "python package"),
    (lambda: PipPackages(("$(reboot)",), span=Span("b.envd", 3, 1)), "python package"),
])
def test_injection_attempts_are_errors_with_location(step, bad) -> None:
    env = Environment("x", BuildGraph(base=BaseImage("debian:bookworm"), steps=(step(),)))
    with pytest.raises(CompileError) as err:
        compile_environment(env)
    assert err.value.format().startswith("b.envd:3:1: invalid " + bad)


def test_a_dev_image_needs_no_package_manager_but_shell_zsh_says_clearly_it_does() -> None:
    env = Environment("x", BuildGraph(base=BaseImage("busybox", dev=True), steps=(Run(("true",)),)))
    dec = decode(compile_environment(env).definition)
    on_image = [dec.name(d) for d, op in dec.execs() if "docker.io/library/busybox" in _root_source(dec, op)]
    assert on_image == ["dev: user envd (1000:1000), home /home/envd", "run true"]
    assert not any("apt-get" in a or "apk" in a for d, op in dec.execs() if dec.name(d) in on_image
                   for a in op.exec.meta.args)
    zsh = Environment("x", BuildGraph(base=BaseImage("busybox", dev=True), shell="zsh"))
    script = _script(_exec_named(decode(compile_environment(zsh).definition), "dev: install zsh"))
    assert 'dsl: shell("zsh") needs a package manager (apt-get, apk, dnf)' in script and "exit 1" in script


def _root_source(dec: Decoded, op: pb.Op) -> str:
    """The image an op's root filesystem descends from (first input, all the way down)."""
    while op.WhichOneof("op") != "source":
        op = dec.ops[op.inputs[0].digest]
    return op.source.identifier
