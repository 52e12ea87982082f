"""``dsl compile``: a build file → Kubernetes manifests, a Docker run spec, LLB or image config.

Each target's emitting code lives in its own module (``dsl.cli._emit_*``); this module only
parses options, evaluates the build file and dispatches.
"""

from __future__ import annotations

import click

from dsl.cli._options import check_image, from_option, path_argument

TARGETS = ("k8s", "docker", "llb", "image-config")
WORKLOADS = ("pod", "statefulset", "deployment")  # compiler.k8s.WORKLOADS, without importing it


@click.command("compile")
@click.option("--target", "-t", type=click.Choice(TARGETS), required=True, help="What to produce.")
@path_argument
@from_option
@click.option("--image", callback=check_image,
              help="Image reference to run, e.g. myteam/ws:1 (pin with REF@sha256:...); default <env>:dev.")
@click.option("--namespace", "-n", help="Kubernetes namespace for every object.")
@click.option("--output", "-o", "out", type=click.Path(), help="Write into this directory (k8s: one file per object + kustomization.yaml).")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 with a diff if --output differs from what would be generated.")
@click.option("--format", "-F", "fmt", type=click.Choice(["yaml", "json", "compose"]), help="Output format (default: yaml for k8s, json for docker/image-config, binary for llb).")
@click.option("--ssh-secret", help="Secret holding authorized_keys (default <env>-ssh).")
@click.option("--ssh-public-key", type=click.Path(exists=True, dir_okay=False), help="Emit the SSH Secret too, from this public key file.")
@click.option("--host-key-secret", help="Secret with an SSH host key to mount read-only (keeps the host identity across restarts).")
@click.option("--service-account", help="serviceAccountName for the Pod.")
@click.option("--image-pull-secret", "image_pull_secrets", multiple=True, help="imagePullSecrets entry (repeatable).")
@click.option("--ephemeral-workdir", is_flag=True, help="Use an emptyDir for the work directory instead of a PVC.")
@click.option("--workload", type=click.Choice(WORKLOADS),
              help="k8s: what runs the environment: pod (default; named <env>-<config hash>), "
                   "statefulset or deployment (one replica, same Pod spec).")
@click.option("--annotation", "annotations", multiple=True, metavar="KEY=VALUE",
              help="k8s: an annotation on every object (repeatable; not on the Pod template, not in the hashes).")
@click.option("--gc-schedule", metavar="CRON", help='k8s: also emit a CronJob running `dsl gc` in the cluster on this '
              'schedule, e.g. "*/30 * * * *" (with --gc-idle and --gc-image).')
@click.option("--gc-idle", metavar="DURATION", help="k8s: the CronJob's `dsl gc --idle`, e.g. 2h.")
@click.option("--gc-image", metavar="REF", help="k8s: the CronJob's image, one with dsl installed (pin it by digest).")
@click.option("--caps", help="LLB: builder capabilities, e.g. mergeop,diffop (parallel graph shape).")
@click.option("--sequential", is_flag=True, help="LLB: force the sequential graph shape.")
@click.option("--owner", help="Dev user UID[:GID] (default: config.owner, else 1000:1000, so that output is the same on every machine).")
@click.option("--ca-bundle", type=click.Path(exists=True, dir_okay=False), help="LLB: extra CA bundle mounted into RUN steps at build time.")
@click.option("--locked", is_flag=True,
              help="Use build.envd.lock (exit 2 if missing or stale): llb with its pins; k8s needs "
                   "--image REF@sha256:... and records the lock's hash.")
def compile_(target: str, path: str, from_: str | None, **opts: object) -> None:
    """Compile PATH's build file for TARGET (k8s, docker, llb, image-config)."""
    from dsl.cli._load import load_evaluation

    for option in ("workload", "annotations", "gc_schedule", "gc_idle", "gc_image"):
        if opts.get(option) and target != "k8s":
            from dsl.errors import UsageError

            flag = "--" + option.rstrip("s").replace("_", "-")
            raise UsageError(f"{flag} is for --target k8s", hint="drop it, or use --target k8s")
    if target == "k8s":  # option errors before the build file's: no build file needed to see them
        from dsl.cli._emit_runtime import gc_options

        gc_options(opts)
    env, evaluation = load_evaluation(path, from_, owner=opts.get("owner"))
    if opts.get("locked"):
        from dsl.cli._locked import locked_pins

        opts["pins"], opts["lock"] = locked_pins(env, evaluation, path=path, from_=from_, platform=None)
    if target in ("k8s", "docker"):
        from dsl.cli import _emit_runtime

        _emit_runtime.emit(target, env, opts)
    else:
        from dsl.cli import _emit_llb

        _emit_llb.emit(target, env, opts)
