"""``dsl up``: build (unless ``--image``), run the compiled Docker body, wait for SSH, print how
to reach it.

The container is created from exactly what ``dsl compile --target docker`` prints for the same
build file and image; ``dsl up`` only fills its run-time placeholders (the public key, the
environment's host key file, a Jupyter token) and adds identity and ownership labels.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from dsl.cli._builder_options import builder_options
from dsl.cli._options import from_option, path_argument
from dsl.cli._runner import endpoint_lines, open_runner, runner_options, ssh_key_option, ssh_target, user_key_path
from dsl.errors import EngineError, UsageError

if TYPE_CHECKING:
    from dsl.engines.runner import ImageInfo, Runner, UpRequest, UpResult
    from dsl.identity import Claim, Identity
    from dsl.ir import Environment

# Values that fill a placeholder but must not reach a label, even hashed.
_SECRET_VALUES = frozenset({"DSL_JUPYTER_TOKEN"})
DEV_LABEL = "dev.envdsl.dev"
ENV_NAME_IMAGE_LABEL = "dev.envdsl.env.name"
ENVIRONMENT_IMAGE_LABEL = "dev.envdsl.environment"


@click.command("up")
@path_argument
@from_option
@click.option("--image", metavar="REF", help="Run this image instead of building PATH's (no build).")
@click.option("--name", metavar="NAME", help="Run it under another name (a second instance; it shares the named volumes).")
@click.option("--detach", "-d", is_flag=True, help="Do not attach a shell; print the endpoints and return.")
@click.option("--generation", type=click.IntRange(min=1), metavar="N",
              help="This configuration's generation (default: one more than the running one). An older "
                   "generation never replaces a newer one: for scripts and CI that number their runs.")
@ssh_key_option
@click.option("--no-ssh-config", is_flag=True, envvar="DSL_NO_SSH_CONFIG",
              help="Do not add the Include line to ~/.ssh/config ($DSL_NO_SSH_CONFIG=1).")
@click.option("--jupyter-token", envvar="DSL_JUPYTER_TOKEN", metavar="TOKEN",
              help="Jupyter's token when the environment takes it at run time (default $DSL_JUPYTER_TOKEN).")
@click.option("--timeout", type=click.FloatRange(min=1), default=60, show_default=True,
              help="Seconds to wait for the environment's sshd to accept our key (k8s: for its Pod to be Ready).")
@click.option("--workload", type=click.Choice(("pod", "statefulset", "deployment")), default=None,
              help="k8s: what runs the environment (as `dsl compile --workload`; default pod).")
@runner_options
@builder_options
@click.option("--ca-bundle", type=click.Path(exists=True, dir_okay=False), envvar="DSL_CA_BUNDLE",
              help="Extra CA bundle for the build's steps (as `dsl build --ca-bundle`).")
@click.option("--progress", type=click.Choice(("auto", "tty", "plain", "json", "quiet")), default="auto",
              show_default=True, help="The build's progress output.")
@click.option("--locked", is_flag=True, help="Build as `dsl build --locked` (from build.envd.lock).")
@click.pass_context
def up(ctx: click.Context, path: str, from_: str | None, image: str | None, name: str | None, detach: bool,
       generation: int | None, ssh_key: str | None, no_ssh_config: bool, jupyter_token: str | None,
       timeout: float, workload: str | None, where: dict, builder: str | None, tls_ca: str | None,
       tls_cert: str | None, tls_key: str | None, ca_bundle: str | None, progress: str,
       locked: bool = False) -> None:
    """Start PATH's environment (build it first unless --image) and open a shell in it.

    An unchanged, running environment is left as it is; a stopped one is started; a changed
    configuration replaces the container and keeps its named volumes.
    """
    from compiler import _runtime
    from compiler._names import dns_label
    from dsl.identity import Claim, Identity, now, owner

    runner = open_runner(where)
    try:
        if runner.target != "k8s" and workload:
            raise UsageError("--workload is for --target k8s", hint="drop it, or add --target k8s")
        if runner.target == "k8s":
            from dsl.cli._up_k8s import refuse_docker_only

            refuse_docker_only(name)

        def own_image(ref: str) -> ImageInfo:  # bring your own image: + the dev runtime, once
            if runner.target != "docker":  # a cluster's images are not inspected here
                return runner.image(ref)
            from dsl.cli._runtime_image import with_runtime

            with contextlib.redirect_stdout(sys.stderr):  # stdout is for the endpoints
                return runner.image(with_runtime(runner, ref, builder=builder, tls=(tls_ca, tls_cert, tls_key),
                                                 ca_bundle=ca_bundle, progress=progress))

        env, info = _environment(runner, path, from_, image, own_image)
        project_dir = os.path.dirname(os.path.abspath(env.source))
        identity = Identity(env.name, dns_label(name, what="--name") if name else _runtime.instance_name(env),
                            project_dir)
        seen = runner.generation(identity.id)  # before the build: the generation this command follows
        if info is None:
            build_options = {"builder": builder, "tls_ca": tls_ca, "tls_cert": tls_cert, "tls_key": tls_key,
                             "ca_bundle": ca_bundle, "progress": progress}
            if runner.target == "k8s":
                from dsl.cli._up_k8s import build_and_push

                info = runner.image(build_and_push(ctx, env, identity, path, from_, build_options))
            else:
                info = runner.image(_build(ctx, env, path, from_, **build_options))
        dev = _runtime.is_dev(env)
        if dev and info.known and info.labels.get(DEV_LABEL) != "true":
            raise UsageError(f"image {info.ref} has no envdsl dev layer (no sshd to log in to)",
                             hint="build it from a build file with base(dev=True): `dsl up` without --image")
        values, key = _run_time_values(identity, info, dev, ssh_key, jupyter_token)
        claim = Claim(generation or seen + 1, owner(), now())
        if runner.target == "k8s":
            request = _k8s_request(env, identity, info, values, claim, dev, runner, workload or "pod", key, timeout)
        else:
            request = _request(env, identity, info, values, claim, dev)
        result = runner.up(request)
        alias = _ssh_config(runner, identity, result, key, no_ssh_config) if dev else None
        if dev and result.action != "unchanged" and not runner.ready_on_up:  # unchanged: a no-op, as promised
            _wait_for_ssh(runner, result, key, timeout)
        _report(result, alias)
        if dev and not detach and sys.stdin.isatty() and sys.stdout.isatty():
            from dsl.ssh import ssh_argv

            argv = ssh_argv(ssh_target(runner, result.state, key), tty=True)
            runner.close()
            os.execv(argv[0], argv)
    finally:
        runner.close()


def _request(env: Environment, identity: Identity, info: ImageInfo, values: dict[str, str], claim: Claim,
             dev: bool) -> UpRequest:
    from dsl.cli.envs import BUILD_FILE_LABEL, PORTS_LABEL, SPEC_LABEL
    from dsl.engines.runner import UpRequest

    spec = _compiled_body(env, info.ref)
    return UpRequest(identity=identity, spec=spec, values=values, config_hash=_config_hash(spec, info, values),
                     claim=claim, ssh_user=(info.env.get("USER") or "envd") if dev else "",
                     labels={SPEC_LABEL: spec_hash(spec), BUILD_FILE_LABEL: os.path.abspath(env.source),
                             PORTS_LABEL: _port_names(env)})


def _k8s_request(env: Environment, identity: Identity, info: ImageInfo, values: dict[str, str], claim: Claim,
                 dev: bool, runner: Runner, workload: str, key_file: str | None, timeout: float) -> UpRequest:
    """The request of a Kubernetes runner: the objects `dsl compile --target k8s` prints for
    the same options (the bookkeeping among them, as --annotation values)."""
    from dsl.cli import _up_k8s
    from dsl.cli.envs import BUILD_FILE_LABEL, FUNCTION_LABEL, PORTS_LABEL, SPEC_LABEL
    from dsl.engines.runner import UpRequest
    from dsl.ssh import user_key

    ssh_user = (info.env.get("USER") or "envd") if dev else ""
    notes = _up_k8s.bookkeeping(identity, claim, ssh_user, {
        SPEC_LABEL: _up_k8s.spec_hash(env, info.ref), BUILD_FILE_LABEL: os.path.abspath(env.source),
        FUNCTION_LABEL: env.function or "build", PORTS_LABEL: _port_names(env)})
    public_key = str(user_key(key_file).private) + ".pub"
    opts = _up_k8s.compile_options(env, identity, info.ref, getattr(runner, "namespace", ""), workload, public_key,
                                   notes)
    objects = _up_k8s.compiled_objects(env, opts)
    return UpRequest(identity=identity, spec=objects, values=values, config_hash="", claim=claim, ssh_user=ssh_user,
                     timeout=timeout)


def compiled_spec_hash(target: str, env: Environment, ref: str) -> str:
    """What ``dsl ls`` compares with the running environment's ``envdsl/spec-hash``."""
    if target == "k8s":
        from dsl.cli._up_k8s import spec_hash as k8s_spec_hash

        return k8s_spec_hash(env, ref)
    return spec_hash(_compiled_body(env, ref))


def _environment(runner: Runner, path: str, from_: str | None, image: str | None,
                 own_image: Callable[[str], ImageInfo]) -> tuple[Environment, ImageInfo | None]:
    """The environment to run: PATH's build file, else (``--image`` only) the one the image's
    labels carry; plus the image when it is given (None: build it). A dev environment's
    ``--image`` goes through ``own_image`` (the image, or the image + the dev runtime)."""
    from compiler._names import validate_image_ref
    from dsl.cli._load import invoking_owner, load_evaluation

    info = runner.image(validate_image_ref(image)) if image else None
    if info is not None and from_ is None and not _has_build_file(path):
        if ENVIRONMENT_IMAGE_LABEL not in info.labels:  # built elsewhere: run it with the runtime
            info = own_image(info.ref)
        return _environment_of_image(info, path), info
    env, _ = load_evaluation(path, from_, default_owner=invoking_owner())
    if info is not None and env.build.base.dev:
        info = own_image(info.ref)
    built_for = (info.labels.get(ENV_NAME_IMAGE_LABEL) if info is not None else None) or env.name
    if built_for != env.name:
        click.echo(f"note: image {image} was built for environment {built_for!r}, not {env.name!r}: its init "
                   f"scripts, daemons and SSH sessions are {built_for!r}'s", err=True)
    return env, info


def _has_build_file(path: str) -> bool:
    from dsl.lang import resolve_target

    try:
        resolve_target(path)
    except UsageError:
        return False
    return True


def _environment_of_image(info: ImageInfo, path: str) -> Environment:
    """The environment an image built by ``dsl build`` carries in its labels, run from ``path``."""
    import dataclasses

    from dsl.ir import IRDataError, environment_from_data

    text = info.labels.get(ENVIRONMENT_IMAGE_LABEL)
    if not text:
        raise UsageError(f"image {info.ref} carries no envdsl environment (it was not built by `dsl build`), "
                         f"and {path} has no build file",
                         hint="run it from its project directory, where its build.envd is")
    try:
        env = environment_from_data(json.loads(text))
    except (ValueError, IRDataError) as exc:
        raise UsageError(f"image {info.ref}: its {ENVIRONMENT_IMAGE_LABEL} label cannot be read: {exc}",
                         hint="it was built by another envdsl version; rebuild it, or run it from its project") from exc
    # The project directory is PATH (bind-mounted at the work directory), as with a build file.
    return dataclasses.replace(env, source=os.path.join(os.path.abspath(path), "build.envd"))


def _build(ctx: click.Context, env: Environment, path: str, from_: str | None, builder: str | None,
           tls_ca: str | None, tls_cert: str | None, tls_key: str | None, ca_bundle: str | None,
           progress: str) -> str:
    """``dsl build`` with its defaults (so its up-to-date record is shared); returns the tag."""
    from compiler._names import default_image_ref
    from dsl.cli.build import build

    with contextlib.redirect_stdout(sys.stderr):  # stdout is for the endpoints
        ctx.invoke(build, path=path, from_=from_, builder=builder, tls_ca=tls_ca, tls_cert=tls_cert, tls_key=tls_key,
                   tags=(), output=None, progress=progress, no_cache=False, ca_bundle=ca_bundle, platform=None,
                   owner=None, metadata_file=None, timeout=3600,
                   locked=bool(ctx.params.get("locked")))  # --locked: read here, not passed along (issue 14)
    return default_image_ref(env.name)


def _compiled_body(env: Environment, ref: str) -> dict[str, Any]:
    """What ``dsl compile --target docker --image REF`` prints for this build file."""
    from compiler._names import validate_image_ref
    from compiler.docker import compile_container
    from dsl.cli._emit_runtime import docker_options

    validate_image_ref(ref)
    return compile_container(env, docker_options(env, ref))


def _run_time_values(identity: Identity, info: ImageInfo, dev: bool, ssh_key: str | None,
                     jupyter_token: str | None) -> tuple[dict[str, str], str | None]:
    """The placeholder values this command knows, and the client key file used."""
    values: dict[str, str] = {}
    if jupyter_token:
        values["DSL_JUPYTER_TOKEN"] = jupyter_token
    if not dev:
        return values, None
    from dsl.ssh import host_key, pin, user_key

    key_file = user_key_path(ssh_key)
    client = user_key(key_file)
    host = host_key(identity.id, reader=info.user)
    pin(identity.alias, host.public_key)
    values["DSL_AUTHORIZED_KEYS"] = client.public
    values["DSL_HOST_KEY_FILE"] = str(host.private)
    return values, key_file


def _port_names(env: Environment) -> str:
    from compiler import _runtime

    return json.dumps([{"name": p.name, "port": p.container_port} for p in _runtime.ports(env)],
                      separators=(",", ":"))


def spec_hash(spec: dict[str, Any]) -> str:
    """The digest of a compiled body (placeholders unfilled): what ``dsl ls`` compares."""
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def _config_hash(spec: dict[str, Any], info: ImageInfo, values: dict[str, str]) -> str:
    """Equal exactly when the container would be the same: body, image, non-secret values."""
    data = {"body": spec, "image": info.id,
            "values": {k: v for k, v in sorted(values.items()) if k not in _SECRET_VALUES}}
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def _ssh_config(runner: Runner, identity: Identity, result: UpResult, key_file: str | None,
                no_ssh_config: bool) -> str:
    """Write the environment's Host block (and the Include line once); the alias to print."""
    from dsl.ssh import HostBlock, dsl_command, ensure_user_include, host_aliases, known_hosts_file, user_key, write_host

    taken = host_aliases().get(identity.short_alias)
    aliases = (identity.alias,) if taken not in (None, identity.id) else (identity.short_alias, identity.alias)
    write_host(HostBlock(env_id=identity.id, aliases=aliases, user=result.state.ssh_user,
                         identity_file=user_key(key_file).private, known_hosts=known_hosts_file(),
                         host_key_alias=identity.alias, proxy_command=(*dsl_command(), "ssh", "--stdio", *runner.proxy_args(), identity.id),
                         comment=f"{identity.name} in {identity.project_dir}"))
    if no_ssh_config:
        return aliases[0] if _included() else ""
    outcome = ensure_user_include()
    if outcome.changed:
        click.echo(f"added `{outcome.line}` to {outcome.path} (once; --no-ssh-config or DSL_NO_SSH_CONFIG=1 "
                   "opts out)", err=True)
    elif outcome.status in ("symlink", "read-only"):
        why = f"is a symlink to {outcome.detail}" if outcome.status == "symlink" else "is read-only"
        click.echo(f"note: {outcome.path} {why}; not editing it. For `ssh {aliases[0]}`, add `{outcome.line}` "
                   "before its first Host line", err=True)
        return ""
    return aliases[0]


def _included() -> bool:
    from dsl.ssh import envdsl_dir
    from dsl.ssh._include import includes

    config = envdsl_dir().parent / "config"
    try:
        return includes(config.read_bytes(), ("~/.ssh/envdsl/config", "envdsl/config", str(envdsl_dir() / "config")))
    except OSError:
        return False


def _wait_for_ssh(runner: Runner, result: UpResult, key_file: str | None, timeout: float) -> None:
    from dsl.ssh import wait_ready

    state = result.state
    if not state.running:  # a newer `dsl up` may be removing it already: say why, as the wait would
        reason = runner.wait_stopped_reason(state.id, state.object_id)
        if reason is not None:
            raise EngineError(reason)
        state = runner.get(state.id) or state  # it runs now: the state we were given was older
    target = ssh_target(runner, state, key_file)
    try:
        wait_ready(target, timeout=timeout, alive=lambda: runner.wait_stopped_reason(state.id, state.object_id))
    except EngineError as exc:
        if "did not accept a login within" in exc.message:  # still running: its log says why
            for source, data in runner.logs(state.id, follow=False, tail=20):
                lines = data.decode(errors="replace").rstrip().splitlines()
                click.echo("".join(f"  | {source}: {line}\n" for line in lines), err=True, nl=False)
            exc.hint = exc.hint or f"its last log lines are above; `dsl logs {state.id}` shows more"
        raise


def _report(result: UpResult, alias: str | None) -> None:
    state = result.state
    what = {"created": "created", "recreated": "recreated (named volumes kept)", "started": "started",
            "unchanged": "already running, unchanged"}[result.action]
    replaced = f"; replaced {result.replaced.describe()}" if result.replaced else ""
    click.echo(f"{state.id}: {what} (generation {state.claim.generation}{replaced})")
    for line in endpoint_lines(state, alias=alias):
        click.echo(line)
