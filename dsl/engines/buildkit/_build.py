"""One image build end to end: session, solve, export, and the post-steps an output needs.

The CLI gives a :class:`BuildRequest` (the compile callbacks plus where the result goes);
:func:`build` attaches a session (build context, registry credentials, secrets, FileSend),
solves through the gateway forwarder, then pushes through the Engine API (dockerd + push) or
loads the ``docker`` tarball into the Docker engine (standalone buildkitd).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dsl.engines.buildkit._connect import Builder
from dsl.engines.buildkit._hijack import docker_host_from_env
from dsl.engines.buildkit._outputs import OutputSpec, exporter_for
from dsl.engines.buildkit._progress import ProgressTracker, Renderer
from dsl.engines.buildkit._solve import ConfigFn, Exporter, PlanFn, SolveOutcome, solve
from dsl.errors import EngineError
from dsl.rules import tag_reference


@dataclass(frozen=True, slots=True)
class BuildRequest:
    """Everything one build needs besides the builder.

    Attributes:
        plan: ``(LLB caps, platform)`` → the LLB (``--no-cache`` is compiled into it:
            ``compile_environment(no_cache=True)``).
        image_config: ``(base image config, platform)`` → the result's image config (None: no
            config).
        output: where the result goes.
        context_dir: the build context served as ``local://context`` (None: no context).
        secrets: secret id → host file (e.g. the CA bundle).
        platform: target platform (``linux/amd64``); None = the builder's first.
        timeout: deadline for the whole build, seconds.
        exporter_attrs: extra attributes for an image exporter (``source-date-epoch``,
            ``rewrite-timestamp`` of a reproducible ``--locked`` build).
    """

    plan: PlanFn
    image_config: ConfigFn | None = None
    output: OutputSpec = OutputSpec()
    context_dir: str | None = None
    secrets: Mapping[str, str] = field(default_factory=dict)
    platform: str | None = None
    timeout: float = 3600.0
    exporter_attrs: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BuildResult:
    """What a finished build produced."""

    output: OutputSpec
    digest: str  # image ID on dockerd, manifest/config digest elsewhere; "" for file outputs
    pushed: Mapping[str, str]  # reference → registry digest
    outcome: SolveOutcome
    dockerd: bool = False

    def metadata(self) -> dict[str, Any]:
        """The ``--metadata-file`` document."""
        data: dict[str, Any] = dict(self.outcome.exporter_response)
        data["output.type"] = self.output.type
        if self.output.type in ("docker", "image", "oci"):
            data["image.name"] = ",".join(self.output.names)
        if self.digest:
            data["containerimage.digest"] = self.digest
            if self.dockerd:  # dockerd's image ID is the digest of the image config
                data.setdefault("containerimage.config.digest", self.digest)
        if self.output.dest:
            data["output.dest"] = os.path.abspath(self.output.dest)
        if self.pushed:
            data["pushed"] = dict(sorted(self.pushed.items()))
        data["build.ref"] = self.outcome.ref
        # How long the build waited on BuildKit; wall time minus this is client overhead.
        data["solve_seconds"] = round(self.outcome.waited, 6)
        return data


def build(
    builder: Builder,
    request: BuildRequest,
    *,
    renderer: Renderer | None = None,
    tracker: ProgressTracker | None = None,
) -> BuildResult:
    """Run one build on ``builder``.

    Raises:
        UsageError: the builder cannot produce the requested output.
        OutputConflict: the output destination exists.
        SolveFailed, BuildCancelled, EngineUnavailable, EngineTimeout, EngineError.
    """
    from dsl.engines.buildkit.session import DirectoryExport, DockerCredentials, FileExport, Session

    output = request.output
    exporter = exporter_for(output, dockerd=builder.is_dockerd)
    if request.exporter_attrs and output.type in ("docker", "image", "oci"):
        exporter = Exporter(exporter.name, {**exporter.attrs, **request.exporter_attrs})
    load_tar: str | None = None
    sink: DirectoryExport | FileExport | None = None
    with tempfile.TemporaryDirectory(prefix="dsl-build-") as scratch:
        if output.type == "local":
            sink = DirectoryExport(output.dest, replace=False)
        elif output.type in ("oci", "tar"):
            sink = FileExport(output.dest, replace=False)
        elif exporter.name == "docker":
            load_tar = os.path.join(scratch, "image.tar")
            sink = FileExport(load_tar, replace=True)
        with Session(context_dir=request.context_dir, secrets=dict(request.secrets), exporter_sink=sink) as session:
            if builder.is_dockerd:
                assert builder.docker_host is not None
                session.attach_docker(builder.docker_host)
            else:
                session.attach_control(builder.channel)
            outcome = solve(
                builder, request.plan, image_config=request.image_config, exporter=exporter,
                session_id=session.id, platform=request.platform, timeout=request.timeout,
                renderer=renderer, tracker=tracker,
            )
        digest = outcome.exporter_response.get("containerimage.digest", "")
        pushed: dict[str, str] = {}
        if load_tar is not None:
            _docker_load(builder.docker_host or docker_host_from_env(), load_tar)
        if output.type == "image" and output.push and builder.is_dockerd:
            credentials = DockerCredentials()
            for ref in output.names:
                pushed[ref] = _push(builder.docker_host or docker_host_from_env(), ref, credentials)
        elif output.type == "image" and output.push:
            pushed = {ref: digest for ref in output.names}
    return BuildResult(output=output, digest=digest, pushed=pushed, outcome=outcome, dockerd=builder.is_dockerd)


def _push(docker_host: str, ref: str, credentials: Any) -> str:
    """Push one tag through the Engine API; return the registry's manifest digest."""
    from dsl.engines.buildkit import _dockerapi as api  # http.client: only pushes and loads need it

    name = tag_reference(ref)  # checked by the CLI already: a malformed name never gets here
    host, repo, tag = name.domain, name.familiar_name(), name.tag or "latest"
    cred = credentials.lookup(host)
    auth = {"serveraddress": host}
    if cred.username:
        auth.update(username=cred.username, password=cred.secret)
    elif cred.secret:
        auth["identitytoken"] = cred.secret
    digest = ""

    def on_event(event: dict[str, Any]) -> None:
        nonlocal digest
        digest = (event.get("aux") or {}).get("Digest", digest)

    try:
        api.stream_json(docker_host, "POST", f"/images/{api.quote(repo)}/push?tag={api.quote(tag)}",
                        headers=api.registry_auth_header(auth), on_event=on_event)
    except EngineError as exc:
        raise EngineError(f"push of {ref} failed: {exc.message}",
                          hint=f"check `docker login {host}` and that the registry accepts pushes") from exc
    return digest


def _docker_load(docker_host: str, tar_path: str) -> None:
    """Load the ``docker`` exporter's tarball into the Docker engine (``docker load``)."""
    from dsl.engines.buildkit import _dockerapi as api

    def chunks() -> Any:
        with open(tar_path, "rb") as f:
            while block := f.read(1 << 20):
                yield block

    try:
        api.stream_json(docker_host, "POST", "/images/load?quiet=1", body=chunks(),
                        headers={"Content-Type": "application/x-tar"})
    except EngineError as exc:
        raise EngineError(f"loading the image into the Docker engine at {docker_host} failed: {exc.message}") from exc
