"""What ``dsl lock`` asks a builder: image digests, the pip resolution tree, its version.

* :func:`resolve_image_digest`: the gateway's ``ResolveImageConfig`` (the builder's own image
  resolver, with the session's registry credentials) gives the digest of the manifest (or
  index) a build of that tag would use. dockerd 20.10 answers from its local image store first
  and gives no digest for a local image; then the digest the image was pulled or pushed with
  (its ``RepoDigests``) is the pin. An image that never came from a registry has none: the
  lock records its image ID instead (``local image``), which a locked build checks.
* :func:`builder_version`: ``Control.Info`` (BuildKit ≥ 0.11); older builders (dockerd
  20.10's v0.8) do not have it, reported as ``None``.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from dataclasses import dataclass

from dsl.engines.buildkit._connect import Builder
from dsl.engines.buildkit._errors import map_rpc_error, rpc_code_name
from dsl.engines.buildkit._progress import ProgressTracker
from dsl.engines.buildkit._solve import (
    PING_TIMEOUT,
    RESOLVE_TIMEOUT,
    _Job,
    _platforms,
    parse_platform,
)
from dsl.errors import EngineError, UsageError
from dsl.rules import parse_image_ref

# An image only in dockerd's store (built or imported there, never pulled or pushed): no registry
# digest exists, so the lock records its image ID and a locked build checks the tag still names it.
LOCAL_IMAGE = "local image"


@dataclass(frozen=True, slots=True)
class ResolvedImage:
    """A tag's digest as the builder sees it.

    Attributes:
        digest: ``sha256:…`` of the manifest or index (for a ``local image``: its image ID).
        platform: the platform the builder resolved for.
        source: ``registry``, ``local store`` (dockerd's image store, via its RepoDigests) or
            ``local image`` (only in dockerd's store: ``digest`` is the image ID).
    """

    digest: str
    platform: str
    source: str


def resolve_image_digest(builder: Builder, ref: str, *, platform: str | None,
                         timeout: float = RESOLVE_TIMEOUT) -> ResolvedImage:
    """The digest ``ref`` (normalised, with a tag) resolves to on ``builder``, asked with a
    session whose Auth service gives the builder the user's registry credentials (as a build).

    Raises:
        UsageError: the builder gave no digest and the engine cannot name the image.
        EngineUnavailable / EngineTimeout / EngineError: as mapped from gRPC.
    """
    from dsl.engines.buildkit.session import Session

    with Session() as session:
        session.attach(builder)
        return _resolve(builder, ref, platform=platform, session_id=session.id, timeout=timeout)


def _resolve(builder: Builder, ref: str, *, platform: str | None, session_id: str, timeout: float) -> ResolvedImage:
    import grpc

    from dsl.engines.buildkit.protos import bk_control_pb2 as control
    from dsl.engines.buildkit.protos import bk_gateway_pb2 as gateway

    job = _Job(builder, ProgressTracker(), None, timeout)
    job.start(control.ControlSolveRequest(Ref=job.ref, Session=session_id))
    try:
        pong = job.bridge("Ping", gateway.PingRequest(), gateway.PongResponse, PING_TIMEOUT)
        target = platform or (_platforms(pong) or ("linux/amd64",))[0]
        request = gateway.ResolveImageConfigRequest(
            Ref=ref, Platform=parse_platform(target), ResolveMode="default",
            LogName=f"[internal] resolve {ref} for build.envd.lock",
        )
        resp = job.bridge("ResolveImageConfig", request, gateway.ResolveImageConfigResponse, timeout)
    except grpc.RpcError as exc:
        raise map_rpc_error(exc, builder=builder.url, remedy=builder.address.remedy,
                            what=f"resolving {ref}") from exc
    finally:
        job.abort("lock: image resolved", returned=False)
        job.finish()
    if resp.Digest:
        return ResolvedImage(resp.Digest, target, "registry")
    digest = _repo_digest(builder, ref) if builder.is_dockerd else None
    if digest is not None:
        return ResolvedImage(digest, target, "local store")
    from dsl.engines.buildkit._uptodate import docker_image_id

    image_id = docker_image_id(builder.docker_host or "", ref) if builder.is_dockerd else None
    if image_id is None:
        raise UsageError(f"the builder resolved {ref} without a digest, and its engine cannot say which image it is",
                         hint="push the image to a registry and build from there")
    return ResolvedImage(image_id, target, LOCAL_IMAGE)


def _repo_digest(builder: Builder, ref: str) -> str | None:
    """The digest of the local image ``ref`` in its own repository's ``RepoDigests``."""
    from dsl.engines.buildkit import _dockerapi as api

    status, info = api.request(builder.docker_host or "", "GET", f"/images/{urllib.parse.quote(ref, safe='')}/json")
    if status != 200 or not isinstance(info, dict):
        return None
    name = parse_image_ref(ref).name
    for repo_digest in info.get("RepoDigests") or []:
        try:
            parsed = parse_image_ref(repo_digest)
        except ValueError:
            continue
        if parsed.name == name and parsed.digest:
            return parsed.digest
    return None


def builder_version(builder: Builder, *, timeout: float = PING_TIMEOUT) -> str | None:
    """BuildKit's version (``v0.13.2``), or None when the builder cannot say (older than 0.11).

    Raises:
        EngineUnavailable / EngineTimeout: the builder cannot be reached.
    """
    import grpc

    from dsl.engines.buildkit._solve import CONTROL
    from dsl.engines.buildkit.protos import bk_control_pb2 as control

    try:
        resp = builder.unary(CONTROL + "Info", control.InfoResponse)(control.InfoRequest(), timeout=timeout)
    except grpc.RpcError as exc:
        if rpc_code_name(exc) == "UNIMPLEMENTED":
            return None
        mapped = map_rpc_error(exc, builder=builder.url, remedy=builder.address.remedy, what="info")
        if type(mapped) is EngineError:  # anything else but "cannot reach": unknown version
            return None
        raise mapped from exc
    return resp.buildkitVersion.version or None


def version_at_least(version: str | None, wanted: tuple[int, int]) -> bool:
    """``v0.13.1`` ≥ (0, 13)? None (unknown, i.e. older than 0.11) never is."""
    if not version:
        return False
    parts = version.lstrip("v").split("-", 1)[0].split(".")
    try:
        return (int(parts[0]), int(parts[1])) >= wanted
    except (ValueError, IndexError):
        return False


_HASH_MISMATCH = "DO NOT MATCH THE HASHES"
_MISMATCHED = re.compile(r"^\s*(\S+?)==(\S+) from \S+")


def hash_mismatch_hint(logs: list[str]) -> str | None:
    """The hint for a locked pip step whose download did not match the lock (pip names the
    distribution under its "DO NOT MATCH THE HASHES" line), or None for another failure."""
    if not any(_HASH_MISMATCH in line for line in logs):
        return None
    names = [f"{m.group(1)} {m.group(2)}" for line in logs if (m := _MISMATCHED.match(line))]
    what = ", ".join(dict.fromkeys(names)) or "a distribution"
    return (f"{what} does not match the sha256 in build.envd.lock: the index served another file than the "
            "one locked (or the lock was edited); check it, then move the pin with `dsl lock --update NAME`")


def read_reports(directory: str) -> dict[str, dict]:
    """The pip reports of a resolution tree (``pip/pip-<i>.json``) by step index."""
    import os

    out = {}
    pip_dir = os.path.join(directory, "pip")
    for name in sorted(os.listdir(pip_dir)) if os.path.isdir(pip_dir) else []:
        if name.startswith("pip-") and name.endswith(".json"):
            with open(os.path.join(pip_dir, name), encoding="utf-8") as f:
                out[name[4:-5]] = json.load(f)
    return out
