"""What ``dsl up`` does for a Kubernetes runner: the image (``--image``, or built and pushed to
the context's registry, run by digest) and the objects, compiled exactly as ``dsl compile
--target k8s`` compiles them with the same options.

The options ``up`` uses are ordinary compile options, so ``dsl compile --target k8s --image
REF -n NS --ssh-public-key KEY.pub --host-key-secret ENV-host-key --workload W --annotation
K=V ...`` prints the very objects ``up`` applied (the annotations carry the generation and the
identity, and are on the live objects for anyone to read back).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from typing import TYPE_CHECKING, Any

import click

from dsl.errors import UsageError

if TYPE_CHECKING:
    from dsl.identity import Claim, Identity
    from dsl.ir import Environment

HOST_KEY_SECRET_SUFFIX = "host-key"


def registry_of_context() -> str:
    """The current context's registry ("" when it names none)."""
    from dsl.contexts import current_context

    context = current_context()
    return context.registry if context is not None else ""


def build_and_push(ctx: click.Context, env: Environment, identity: Identity, path: str, from_: str | None,
                   build_options: dict[str, Any]) -> str:
    """``dsl build --output type=image,name=<registry>/<instance>,push=true``; returns
    ``<registry>/<instance>@<digest>``, the reference the cluster pulls.

    Raises:
        UsageError: the context names no registry (and no ``--image`` was given).
    """
    from compiler._names import validate_image_ref
    from dsl.cli.build import build

    registry = registry_of_context()
    if not registry:
        raise UsageError("`dsl up --target k8s` needs an image the cluster can pull: no --image given, and the "
                         "context names no registry to push the build to",
                         hint="pass --image REF@sha256:..., or `dsl context create NAME --runner k8s --registry "
                              "REGISTRY/PATH --use`")
    repository = validate_image_ref(f"{registry}/{identity.instance}")
    with tempfile.TemporaryDirectory(prefix="dsl-up-") as scratch:
        metadata = os.path.join(scratch, "metadata.json")
        with contextlib.redirect_stdout(sys.stderr):  # stdout is for the endpoints
            ctx.invoke(build, path=path, from_=from_, tags=(), output=f"type=image,name={repository},push=true",
                       no_cache=False, platform=None, owner=None, metadata_file=metadata, timeout=3600,
                       locked=bool(ctx.params.get("locked")), **build_options)
        with open(metadata, encoding="utf-8") as handle:
            data = json.load(handle)
    pushed = data.get("pushed") or {}
    digest = next(iter(pushed.values()), "") or data.get("containerimage.digest", "")
    if not digest:
        from dsl.errors import EngineError

        raise EngineError(f"the builder pushed {repository} but reported no digest",
                          hint="pass --image REF@sha256:... of the pushed image")
    return f"{repository}@{digest}"


def host_key_secret(instance: str) -> str:
    from compiler._names import child_name

    return child_name(instance, HOST_KEY_SECRET_SUFFIX)


def compile_options(env: Environment, identity: Identity, ref: str, namespace: str, workload: str,
                    public_key_file: str, annotations: dict[str, str]) -> dict[str, Any]:
    """The ``dsl compile --target k8s`` options of what ``up`` applies (option name → value)."""
    from compiler import _runtime

    dev = _runtime.is_dev(env)
    return {
        "image": ref, "namespace": namespace, "workload": workload,
        "ssh_public_key": public_key_file if dev else None,
        "host_key_secret": host_key_secret(identity.instance) if dev else None,
        "annotations": tuple(f"{k}={v}" for k, v in sorted(annotations.items())),
    }


def bookkeeping(identity: Identity, claim: Claim, ssh_user: str, extra: dict[str, str]) -> dict[str, str]:
    """The annotations ``up`` gives every object: identity, generation, who and when."""
    from dsl.identity import ENV_NAME_LABEL, SSH_USER_LABEL

    return {**identity.labels(), **claim.labels(), SSH_USER_LABEL: ssh_user, ENV_NAME_LABEL: identity.name, **extra}


def compiled_objects(env: Environment, opts: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    """Exactly what ``dsl compile --target k8s`` compiles for these options."""
    from compiler.k8s import compile_k8s
    from dsl.cli._emit_runtime import k8s_options

    return compile_k8s(env, k8s_options(opts["image"], opts))


def spec_hash(env: Environment, ref: str) -> str:
    """What ``dsl ls`` compares: the objects of the build file and image alone (no key, no
    namespace, no bookkeeping), as a digest."""
    from compiler.k8s import K8sOptions, compile_k8s
    from dsl.cli.up import spec_hash as digest

    return digest({"objects": list(compile_k8s(env, K8sOptions(image=ref)))})


def refuse_docker_only(name: str | None) -> None:
    if name:
        raise UsageError("--name is for the Docker runner", hint="on Kubernetes, use another namespace (-n) for a "
                         "second instance")
