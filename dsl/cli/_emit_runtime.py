"""``dsl compile --target k8s|docker``: run the runtime compilers and write their output.

Everything that touches the machine (reading the public key file, resolving ``~`` and the
build directory, writing ``-o DIR``) happens here, so ``compiler.k8s``/``compiler.docker``
stay pure. Imports only the standard library, click and our own modules (PyYAML only when a
value needs it): no ``kubernetes``, ``docker``, ``grpc`` or ``jinja2`` (``dsl compile`` must
start fast).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from compiler import _runtime
from compiler._names import default_image_ref, validate_image_ref
from dsl.cli._load import read_option_file
from dsl.errors import UsageError
from dsl.ir import Environment

if TYPE_CHECKING:
    from compiler.docker import DockerOptions
    from compiler.k8s import GcOptions, K8sOptions

COMPOSE_FILE = "compose.yaml"


def emit(target: str, env: Environment, opts: dict[str, Any]) -> None:
    """Compile ``env`` for ``target`` (``k8s`` or ``docker``) and print or write the result.

    Args:
        target: ``k8s`` or ``docker``.
        env: the evaluated environment.
        opts: the remaining ``dsl compile`` options (image, namespace, out, check, fmt, ...).

    Raises:
        UsageError: conflicting or invalid options.
        CompileError: the environment cannot be expressed for the target.
        OutputConflict: ``-o DIR`` holds a file envdsl did not generate.
        SystemExit: ``--check`` found a difference (exit 1).
    """
    if opts.get("check") and not opts.get("out"):
        raise UsageError("--check needs --output DIR", hint="dsl compile --target k8s -o DIR --check")
    image = opts.get("image") or _default_image(env, gitops=target == "k8s" and not opts.get("lock"))
    validate_image_ref(image)
    if opts.get("lock") and target == "k8s":
        _require_digest(image)
    if target == "k8s":
        _emit_k8s(env, image, opts)
    else:
        _emit_docker(env, image, opts)


def _require_digest(image: str) -> None:
    """``--locked`` manifests run an image by digest: a tag could be moved under them.

    Raises:
        UsageError: ``image`` has no ``@sha256:`` digest.
    """
    from dsl.rules import parse_image_ref

    if not parse_image_ref(image).digest:
        raise UsageError(f"--locked: the image {image} is not pinned by digest",
                         hint="push it with `dsl build --locked -o type=image,name=REF,push=true` and pass "
                              "the REF@sha256:... it prints as --image")


def _lock_hash(lock: dict[str, Any]) -> str:
    """The hash of the lock's bytes: its pins and inputs."""
    import hashlib

    from dsl.lock import dumps

    return "sha256:" + hashlib.sha256(dumps(lock).encode()).hexdigest()


def _default_image(env: Environment, *, gitops: bool) -> str:
    """The tag ``dsl build`` gives; manifests (committed, pulled by a cluster) get a warning,
    a Docker spec (run on the machine that built the image) does not need one."""
    ref = default_image_ref(env.name)
    if gitops:
        click.echo(
            f"warning: no --image given; using {ref}, the tag `dsl build` gives. "
            "For GitOps, pin the image you built: --image REF@sha256:<digest>",
            err=True,
        )
    return ref


def k8s_options(image: str, opts: dict[str, Any]) -> K8sOptions:
    """The ``K8sOptions`` for the command-line options (reads ``--ssh-public-key``).

    Raises:
        UsageError: the public key file cannot be read or is not a public key.
    """
    from compiler.k8s import K8sOptions, check_public_key

    public_key = ""
    if opts.get("ssh_public_key"):
        public_key = check_public_key(read_option_file(opts["ssh_public_key"], "--ssh-public-key"))
    return K8sOptions(
        image=image,
        namespace=opts.get("namespace") or "",
        ssh_secret=opts.get("ssh_secret") or "",
        ssh_public_key=public_key,
        host_key_secret=opts.get("host_key_secret") or "",
        service_account=opts.get("service_account") or "",
        image_pull_secrets=tuple(opts.get("image_pull_secrets") or ()),
        ephemeral_workdir=bool(opts.get("ephemeral_workdir")),
        workload=opts.get("workload") or "pod",
        annotations=parse_annotations(opts.get("annotations") or ()),
    )


def gc_options(opts: dict[str, Any]) -> GcOptions | None:
    """``--gc-schedule/--gc-idle/--gc-image`` (all or none), checked; None when not given.

    Raises:
        UsageError: only some of them given, or a value ``dsl gc`` or Kubernetes would refuse.
    """
    from compiler.k8s import GcOptions

    given = {flag: opts.get(key) for flag, key in (("--gc-schedule", "gc_schedule"), ("--gc-idle", "gc_idle"),
                                                   ("--gc-image", "gc_image"))}
    if not any(given.values()):
        return None
    missing = [flag for flag, value in given.items() if not value]
    if missing:
        raise UsageError(f"the in-cluster gc also needs {', '.join(missing)}",
                         hint='e.g. --gc-schedule "*/30 * * * *" --gc-idle 2h --gc-image REPO/dsl@sha256:...')
    gc = GcOptions(schedule=str(given["--gc-schedule"]), idle=str(given["--gc-idle"]), image=str(given["--gc-image"]))
    gc.check()
    return gc


def parse_annotations(items: tuple[str, ...] | list[str]) -> tuple[tuple[str, str], ...]:
    """``KEY=VALUE`` items → sorted ``(key, value)`` pairs (keys checked by ``K8sOptions``).

    Raises:
        UsageError: an item has no ``=``.
    """
    pairs = []
    for item in items:
        key, eq, value = item.partition("=")
        if not eq:
            raise UsageError(f"--annotation {item!r} is not KEY=VALUE", hint="e.g. --annotation team.example.com/owner=ml")
        pairs.append((key, value))
    return tuple(sorted(pairs))


def _emit_k8s(env: Environment, image: str, opts: dict[str, Any]) -> None:
    from compiler.k8s import compile_k8s, synth_files, synth_json, synth_yaml

    fmt = opts.get("fmt") or "yaml"
    if fmt == "compose":
        raise UsageError("--format compose is for --target docker", hint="use yaml or json for k8s")
    lock = opts.get("lock")
    options = k8s_options(image, opts)
    gc = gc_options(opts)  # checked before anything is compiled: a bad schedule is the first error
    objects = compile_k8s(env, options, lock_hash=_lock_hash(lock) if lock else "")
    if gc is not None:
        from compiler.k8s import environment_labels, gc_objects, instance_name

        objects += gc_objects(instance_name(env), options.namespace, gc, environment_labels(env))
    if opts.get("out"):
        if fmt != "yaml":
            raise UsageError("--output writes YAML files; drop --format json")
        _write_tree(env, "k8s", synth_files(objects), opts)
        return
    click.echo(synth_json(objects) if fmt == "json" else synth_yaml(objects), nl=False)


def docker_options(env: Environment, image: str) -> DockerOptions:
    """The ``DockerOptions``: build directory (of ``env.source``) and home directory."""
    from compiler.docker import DockerOptions

    source_dir = os.path.dirname(env.source) if env.source else "."
    return DockerOptions(image=image, build_dir=os.path.abspath(source_dir),
                         home=os.path.expanduser("~"))


def _emit_docker(env: Environment, image: str, opts: dict[str, Any]) -> None:
    from compiler.docker import compile_container, compose_file
    from compiler.k8s import dump_yaml

    fmt = opts.get("fmt") or ("compose" if opts.get("out") else "json")
    body = compile_container(env, docker_options(env, image))
    if fmt == "yaml":
        raise UsageError("--target docker prints json (the create body) or compose")
    if opts.get("out") and fmt != "compose":
        raise UsageError("--output writes a compose file; drop --format json")
    if fmt != "compose":
        click.echo(json.dumps(body, indent=2, sort_keys=True, ensure_ascii=False))
        return
    compose = dump_yaml(compose_file(_runtime.instance_name(env), body))
    if opts.get("out"):
        _write_tree(env, "docker", {COMPOSE_FILE: compose}, opts)
    else:
        click.echo(compose, nl=False)


def _write_tree(env: Environment, target: str, files: dict[str, str], opts: dict[str, Any]) -> None:
    from dsl.cli import _gitops  # only -o needs the writer

    instance = _runtime.instance_name(env)
    head = _gitops.header(instance, target)
    out_dir = Path(opts["out"])
    plan = _gitops.plan(out_dir, instance, {n: head + t for n, t in files.items()})
    if opts.get("check"):
        text = _gitops.diff(out_dir, plan)
        if text:
            click.echo(text, nl=False)
            click.echo(f"{out_dir} is out of date; run without --check to update it", err=True)
            sys.exit(1)
        return
    with _gitops.writing(out_dir):
        _gitops.apply(out_dir, plan)
