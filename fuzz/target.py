"""The property the fuzzer checks, usable without the fuzzer (tests replay inputs through it).

One input is the bytes of a ``build.envd``. It is evaluated as ``dsl check`` would (in memory,
nothing read from disk, ``include()`` refused: no network) and the environment is compiled for
every target ``dsl compile`` has: LLB in both graph shapes (binary and the ``--format json``
dump), the image config, the Docker create body and its compose file, and the Kubernetes
objects as YAML, JSON and a GitOps tree. Each step must return or raise a :class:`DslError`
(which must render as the CLI renders it); any other exception is a bug, and so is a run
that does not end (the harness times it).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from compiler import _runtime
from compiler._names import default_image_ref, validate_image_ref
from compiler.docker import DockerOptions, compile_container, compose_file
from compiler.image_config import default_base_config, image_config
from compiler.k8s import K8sOptions, compile_k8s, dump_yaml, synth_files, synth_json, synth_yaml
from compiler.llb import compile_environment, describe_definition
from dsl.errors import DslError
from dsl.ir import Environment
from dsl.lang import _include, evaluate_source

CONTEXT_DIR = "/fuzz/project"
PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGZ1enotdGVzdC1rZXktbm90LWEtcmVhbC1vbmUxMjM0 fuzz@test"
EVAL_TIMEOUT_S = 1.0
# Files an input may load(): the shared-lib example's library, so its seed evaluates.
_LIB = Path(__file__).resolve().parent.parent / "examples" / "shared-lib"
LOADABLE = {str(p.relative_to(_LIB)): p.read_bytes() for p in sorted(_LIB.glob("lib/*.star"))}


def _no_network(url: str, **_: Any) -> None:
    raise _include.IncludeFailed(f"include({url!r}) is not fetched while fuzzing", "fuzzing runs offline")


_include.fetch = _no_network  # the fuzzer must never reach a git server


def _llb(env: Environment) -> None:
    for caps, ca_bundle in ((frozenset(), False), (frozenset({"mergeop", "diffop"}), True)):
        res = compile_environment(env, caps=caps, ca_bundle=ca_bundle)
        json.dumps(describe_definition(res.definition), ensure_ascii=False)
    compile_environment(env, caps=frozenset({"mergeop", "diffop"}), sequential=True)


def _image_config(env: Environment) -> None:
    json.dumps(image_config(env, base_config=None), indent=2)
    json.dumps(image_config(env, base_config=default_base_config("linux/arm64")), sort_keys=True)


def _image(env: Environment) -> str:
    ref = default_image_ref(env.name)
    validate_image_ref(ref)
    return ref


def _docker(env: Environment) -> None:
    body = compile_container(env, DockerOptions(image=_image(env), build_dir=CONTEXT_DIR, home="/home/fuzz"))
    json.dumps(body, indent=2, sort_keys=True, ensure_ascii=False)
    dump_yaml(compose_file(_runtime.instance_name(env), body))


def _k8s(env: Environment) -> None:
    image = _image(env)
    plain = compile_k8s(env, K8sOptions(image=image))
    synth_yaml(plain)
    synth_json(plain)
    full = compile_k8s(env, K8sOptions(
        image=image + "@sha256:" + "ab" * 32, namespace="envs", ssh_public_key=PUBLIC_KEY,
        host_key_secret="hostkey", service_account="builder", image_pull_secrets=("regcred",),
        ephemeral_workdir=True,
    ))
    synth_files(full)


TARGETS: dict[str, Callable[[Environment], None]] = {
    "llb": _llb, "image-config": _image_config, "docker": _docker, "k8s": _k8s,
}


def _rendered(exc: DslError) -> str:
    """What the CLI prints for ``exc`` (formatting an error must not fail either)."""
    text = exc.format()
    assert isinstance(text, str) and isinstance(exc.exit_code, int)
    return text


def run_one(data: bytes, *, eval_timeout: float = EVAL_TIMEOUT_S) -> dict[str, str]:
    """Evaluate and compile one build file.

    Args:
        data: the build file's bytes.
        eval_timeout: the evaluation time limit (the CLI's is 10 s; fuzzing uses less).

    Returns:
        ``{"eval": "ok" | "error", <target>: "ok" | "error", ...}``: targets are compiled
        only when evaluation succeeded.

    Raises:
        Exception: anything that is not a ``DslError``: the bug the fuzzer looks for.
    """
    try:
        env = evaluate_source(data, files=LOADABLE, context_dir=CONTEXT_DIR, timeout=eval_timeout).environment
    except DslError as exc:
        _rendered(exc)
        return {"eval": "error"}
    outcome = {"eval": "ok"}
    for name, compile_target in TARGETS.items():
        try:
            compile_target(env)
        except DslError as exc:
            _rendered(exc)
            outcome[name] = "error"
        else:
            outcome[name] = "ok"
    return outcome
