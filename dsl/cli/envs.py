"""``dsl ls``, ``dsl ports``, ``dsl logs`` and ``dsl down``: environments as the engine sees them."""

from __future__ import annotations

import datetime
import json
import sys
from typing import TYPE_CHECKING

import click

from dsl.cli._options import echo_table
from dsl.cli._runner import endpoint_lines, open_runner, resolve, runner_options
from dsl.errors import UsageError

if TYPE_CHECKING:
    from dsl.engines.runner import EnvState, Runner

SPEC_LABEL = "envdsl/spec-hash"
PORTS_LABEL = "envdsl/ports"  # read back by the runner (dsl.engines.docker._state)
BUILD_FILE_LABEL = "envdsl/build-file"
FUNCTION_LABEL = "envdsl/function"


@click.command("ls")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--all-namespaces", "-A", is_flag=True, help="k8s: every namespace, not only the runner's.")
@runner_options
def ls(fmt: str, all_namespaces: bool, where: dict) -> None:
    """List environments: status, image, whether the build file still says the same, ports, age."""
    runner = open_runner(where)
    try:
        if all_namespaces and runner.target != "k8s":
            raise UsageError("--all-namespaces is for Kubernetes", hint="add --target k8s")
        states = runner.list(all_namespaces=all_namespaces)
        rows = [_row(runner, s) for s in states]
    finally:
        runner.close()
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    spaced = runner.target == "k8s"
    table = [("NAME", *(("NAMESPACE", "KIND") if spaced else ()), "STATUS", "IMAGE", "CONFIG", "PORTS", "AGE")]
    table += [(r["id"], *((r["namespace"], r["kind"]) if spaced else ()), r["status"], r["image"], r["config"],
               " ".join(f"{p['name']}={p['host']}:{p['host_port']}" for p in r["ports"] if p["host_port"]) or "-",
               _age(r["created"])) for r in rows]
    if len(table) == 1:
        click.echo("no environments", err=True)
        return
    echo_table(table)


def _row(runner: Runner, state: EnvState) -> dict:
    extra = {"namespace": state.where, "kind": state.kind, "pod": state.object_id} if state.kind else {}
    return {
        "id": state.id, **extra, "name": state.name, "status": state.status, "image": state.image,
        "image_id": state.image_id, "config": _config_state(runner, state), "project_dir": state.project_dir,
        "generation": state.claim.generation, "owner": state.claim.owner, "created": state.claim.created,
        "ports": [{"name": e.name, "container_port": e.container_port, "host": e.host, "host_port": e.host_port}
                  for e in state.endpoints],
    }


def _config_state(runner: Runner, state: EnvState) -> str:
    """``current`` when the build file and the image tag still give what runs, ``stale`` (why) if
    not, ``unknown`` when the build file cannot be read here."""
    build_file = state.labels.get(BUILD_FILE_LABEL, "")
    if not build_file:
        return "unknown"
    import contextlib
    import io

    from dsl.cli._load import invoking_owner, load_evaluation
    from dsl.cli.up import compiled_spec_hash
    from dsl.errors import DslError

    try:
        with contextlib.redirect_stderr(io.StringIO()):  # the build file's print()s and warnings
            env, _ = load_evaluation(build_file, ":" + state.labels.get(FUNCTION_LABEL, "build"),
                                     default_owner=invoking_owner())
        if compiled_spec_hash(runner.target, env, state.image) != state.labels.get(SPEC_LABEL):
            return "stale (build file changed)"
        if runner.target == "docker" and runner.image(state.image).id != state.image_id:
            return "stale (image rebuilt)"  # (Kubernetes: the image is pinned by digest)
    except (DslError, OSError):  # a moved, unreadable or now broken build file: we cannot tell
        return "unknown"
    return "current"


def _age(created: str) -> str:
    try:
        when = datetime.datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        return "?"
    seconds = int((datetime.datetime.now(datetime.timezone.utc) - when).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


@click.command("ports")
@click.argument("env")
@runner_options
def ports(env: str, where: dict) -> None:
    """Show where ENV's ports are published (k8s: forward them to 127.0.0.1 until Ctrl-C)."""
    from dsl.identity import SSH_SUFFIX

    runner = open_runner(where)
    try:
        state = resolve(runner, env)
        alias = state.id + SSH_SUFFIX if state.ssh_user else None
        forwarding = runner.forward_ports(state)
        if forwarding is None:
            for line in endpoint_lines(state, alias=alias):
                click.echo(line.strip())
            return
        if not state.running:
            raise UsageError(f"environment {state.id} is {state.status}", hint="start it with `dsl up`")
        with forwarding as live:
            for line in endpoint_lines(live, alias=alias):
                click.echo(line.strip())
            click.echo("forwarding; Ctrl-C stops", err=True)
            _wait_for_interrupt()
    finally:
        runner.close()


def _wait_for_interrupt() -> None:
    import threading

    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass


@click.command("logs")
@click.argument("env")
@click.option("--follow", "-f", is_flag=True, help="Keep printing as the logs grow (Ctrl-C stops).")
@click.option("--tail", type=click.IntRange(min=0), default=0, help="Only the last N lines of each log (0 = all).")
@runner_options
def logs(env: str, follow: bool, tail: int, where: dict) -> None:
    """Print ENV's logs: the entrypoint's (and sshd's), then each daemon's."""
    runner = open_runner(where)
    out = sys.stdout.buffer
    try:
        state = resolve(runner, env)
        for source, data in runner.logs(state.id, follow=follow, tail=tail):
            if follow:
                prefix = f"{source} | ".encode()
                out.write(b"".join(prefix + line for line in data.splitlines(keepends=True)))
            else:
                if source != "entrypoint":
                    out.write(f"==> {source} <==\n".encode())
                out.write(data)
            out.flush()
    except KeyboardInterrupt:
        pass
    finally:
        runner.close()


def _down_id(runner: Runner, ref: str, purge: bool) -> str:
    """The id ``down`` removes. ``down --purge`` after a ``down`` finds no running environment,
    but its kept volumes (Kubernetes: PVCs and Secrets) are still to be removed: the id itself,
    or the name in the current directory's project."""
    import os

    from dsl.identity import SSH_SUFFIX, project_hash

    try:
        return resolve(runner, ref).id
    except UsageError:
        if not purge or runner.target != "k8s":
            raise
    ref = ref.removesuffix(SSH_SUFFIX)
    return ref if "." in ref else f"{ref}.{project_hash(os.getcwd())}"


@click.command("down")
@click.argument("envs", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Every environment you (user@host) started on this runner.")
@click.option("--purge", is_flag=True, help="Also remove its own named volumes (k8s: PVCs and Secrets), its image "
              "and its SSH host key.")
@runner_options
def down(envs: tuple[str, ...], all_: bool, purge: bool, where: dict) -> None:
    """Remove environments (and their SSH blocks); named volumes and images stay unless --purge."""
    if bool(envs) == all_:
        raise UsageError("name the environments to remove, or pass --all")
    from dsl.identity import SSH_SUFFIX
    from dsl.ssh import remove_host, remove_host_key, unpin

    runner = open_runner(where)
    try:
        if all_:
            from dsl.identity import owner

            me = owner()
            ids = [s.id for s in runner.list() if s.claim.owner == me]  # a shared engine: not others'
        else:
            ids = [_down_id(runner, e, purge) for e in envs]
        for env_id in ids:
            result = runner.down(env_id, purge=purge)
            remove_host(env_id)
            if purge:
                remove_host_key(env_id)
                unpin(env_id + SSH_SUFFIX)
            kept = f"; kept volumes {', '.join(result.kept_volumes)}" if result.kept_volumes else ""
            gone = f"; removed volumes {', '.join(result.volumes)}" if result.volumes else ""
            image = f"; removed image {result.image}" if result.image else ""
            click.echo(f"{env_id}: removed{gone}{kept}{image}")
    finally:
        runner.close()
