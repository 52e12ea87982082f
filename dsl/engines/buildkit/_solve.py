"""Solve through BuildKit's gateway forwarder: the client acts as its own frontend.

One build is::

    Control.Solve(Ref=R, no Definition, Frontend="", exporter…)  ─ async, beside Status(R)
    LLBBridge.Ping                 → the builder's caps (parallel or sequential graph shape)
                                     and platforms (the default target: its first)
    plan(caps, platform)           → the LLB definition, compiled for those caps
    LLBBridge.ResolveImageConfig   → the base image's config
    LLBBridge.Solve(definition)    → a result ref (lazy: nothing runs yet)
    LLBBridge.Return(ref, metadata={"containerimage.config": …})
    Control.Solve returns          → the exporter's response (image digest)

It works the same on dockerd 20.10 (BuildKit v0.8) and a modern buildkitd, and is the only
way to give a raw-LLB image its config on dockerd. Every call has a deadline; any failure or
Ctrl-C sends ``Return(error)`` and cancels ``Control.Solve`` so nothing keeps running.

The time this process spends blocked on the builder's answers (the LLBBridge calls and the
final wait for ``Control.Solve``, not the client work in between) is reported as
``SolveOutcome.waited``: wall time minus that is the client-side overhead of a build.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from compiler.llb.protos import ops_pb2 as llb
from dsl.engines.buildkit._connect import Builder
from dsl.engines.buildkit._errors import map_rpc_error, rpc_code_name, rpc_details
from dsl.engines.buildkit._progress import ProgressTracker, Renderer, VertexState
from dsl.engines.buildkit.protos import bk_control_pb2 as control
from dsl.engines.buildkit.protos import bk_gateway_pb2 as gateway
from dsl.engines.buildkit.protos import bk_types_pb2 as types
from dsl.errors import BuildCancelled, EngineError, SolveFailed

CONTROL = "/moby.buildkit.v1.Control/"
BRIDGE = "/moby.buildkit.v1.frontend.LLBBridge/"
BUILD_ID_HEADER = "buildkit-controlapi-buildid"
PING_TIMEOUT = 15.0
RESOLVE_TIMEOUT = 300.0  # may pull a manifest from a slow registry
BRIDGE_TIMEOUT = 60.0
STATUS_DRAIN = 3.0
_GRPC_CANCELLED = 1


@dataclass(frozen=True, slots=True)
class Plan:
    """What the LLB compiler made for the builder's caps.

    Attributes:
        definition: marshalled ``pb.Definition`` bytes.
        base_image: the image whose config the result starts from (None: no config lookup).
        vertex_spans: op digest → build-file location, to point a failed step at its line.
    """

    definition: bytes
    base_image: str | None = None
    vertex_spans: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Exporter:
    """How Control.Solve exports the result: BuildKit exporter name and attrs."""

    name: str = ""  # "" = build only, results stay in the cache
    attrs: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SolveOutcome:
    """The end of a successful build.

    Attributes:
        waited: seconds this process was blocked on the builder's answers during the solve.
        platform: the target platform the build used.
        base_digest: the manifest digest the builder resolved the base image's tag to
            (``""``: no lookup, or dockerd answered from its local image store).
    """

    ref: str
    exporter_response: dict[str, str]
    caps: frozenset[str]
    vertices: int
    cached: int
    waited: float = 0.0
    platform: str = ""
    base_digest: str = ""


def parse_platform(text: str) -> llb.Platform:
    """``os/arch[/variant]`` as an LLB ``pb.Platform`` message."""
    parts = text.split("/")
    return llb.Platform(OS=parts[0], Architecture=parts[1] if len(parts) > 1 else "",
                          Variant=parts[2] if len(parts) > 2 else "")


PlanFn = Callable[[frozenset[str], str], Plan]
ConfigFn = Callable[[dict[str, Any] | None, str], dict[str, Any] | None]


def solve(
    builder: Builder,
    plan: PlanFn,
    *,
    image_config: ConfigFn | None = None,
    exporter: Exporter = Exporter(),
    session_id: str = "",
    platform: str | None = None,
    timeout: float = 3600.0,
    renderer: Renderer | None = None,
    tracker: ProgressTracker | None = None,
) -> SolveOutcome:
    """Build ``plan(caps)`` on ``builder`` and export it.

    Args:
        builder: a connected builder.
        plan: ``(LLB caps, platform)`` → the LLB (called once, after Ping).
        image_config: ``(base image config or None, platform)`` → the result's image config.
        exporter: the exporter and its attrs.
        session_id: the client session serving local sources, secrets, auth, FileSend.
        platform: the target platform ``os/arch[/variant]``; None = the builder's first
            platform from its Ping (no extra round trip).
        timeout: deadline in seconds for the whole build.
        renderer: receives progress events as they arrive.
        tracker: collects vertex state (a fresh one when None).

    Returns:
        The exporter's response and a summary of the build.

    Raises:
        SolveFailed: a build step failed (its name, build-file line and last log lines).
        BuildCancelled: Ctrl-C; the remote build was cancelled.
        EngineUnavailable / EngineTimeout / EngineError: as mapped from gRPC.
    """
    tracker = tracker or ProgressTracker()
    job = _Job(builder, tracker, renderer, timeout)
    request = control.ControlSolveRequest(
        Ref=job.ref, Exporter=exporter.name, ExporterAttrs=dict(exporter.attrs), Session=session_id,
    )
    job.start(request)
    returned = False
    compiled: Plan | None = None
    try:
        pong = job.bridge("Ping", gateway.PingRequest(), gateway.PongResponse, PING_TIMEOUT)
        caps = frozenset(c.ID for c in pong.LLBCaps if c.Enabled)
        frontend_caps = frozenset(c.ID for c in pong.FrontendAPICaps if c.Enabled)
        platform = platform or (_platforms(pong) or ("linux/amd64",))[0]
        compiled = plan(caps, platform)
        metadata: dict[str, bytes] = {}
        base_digest = ""
        if image_config is not None:
            base = None
            if compiled.base_image and "resolveimage" in frontend_caps:
                base_digest, base = job.resolve_image_config(compiled.base_image, platform)
            config = image_config(base, platform)
            if config is not None:
                metadata["containerimage.config"] = json.dumps(config, sort_keys=True).encode()
        solved = job.bridge(
            "Solve",
            gateway.GatewaySolveRequest(
                Definition=compiled.definition, allowResultReturn=True,
                allowResultArrayRef="proto.refarray" in frontend_caps,
            ),
            gateway.GatewaySolveResponse,
            BRIDGE_TIMEOUT,
        )
        result = gateway.Result(ref=gateway.Ref(id=solved.result.ref.id or solved.ref), metadata=metadata)
        returned = True
        job.bridge("Return", gateway.ReturnRequest(result=result), gateway.ReturnResponse, BRIDGE_TIMEOUT)
        response = job.wait()
    except KeyboardInterrupt as exc:
        job.abort("cancelled by the user", returned=returned)
        raise BuildCancelled("build cancelled; the builder stopped it") from exc
    except BaseException as exc:
        job.abort(f"client error: {exc}", returned=returned)
        mapped = job.translate(exc, compiled.vertex_spans if compiled else {})
        if mapped is exc:
            raise
        raise mapped from exc
    finally:
        job.finish()
    if job.status_error is not None:  # progress stopped because of a bug: never hidden
        raise job.status_error
    vertices, cached = tracker.counts()
    return SolveOutcome(job.ref, dict(response.ExporterResponse), caps, vertices, cached,
                        waited=job.waited, platform=platform, base_digest=base_digest)


def _platforms(pong: Any) -> tuple[str, ...]:
    """The workers' platforms as ``os/arch[/variant]``, the default one first."""
    return tuple(
        "/".join(x for x in (p.OS, p.Architecture, p.Variant) if x) for w in pong.Workers for p in w.platforms
    )


class _Job:
    """One Control.Solve in flight, its Status reader, and the LLBBridge calls for it."""

    def __init__(self, builder: Builder, tracker: ProgressTracker, renderer: Renderer | None, timeout: float) -> None:
        self.builder = builder
        self.tracker = tracker
        self.renderer = renderer
        self.timeout = timeout
        self.ref = uuid.uuid4().hex
        self.metadata = ((BUILD_ID_HEADER, self.ref),)
        self.future: Any = None
        self.status_call: Any = None
        self.status_thread: threading.Thread | None = None
        self.done = threading.Event()
        self.waited = 0.0  # seconds blocked on the builder's answers
        self.status_error: Exception | None = None  # what broke the Status reader, if not the stream

    def start(self, request: control.ControlSolveRequest) -> None:
        call = self.builder.unary(CONTROL + "Solve", control.ControlSolveResponse)
        self.future = call.future(request, timeout=self.timeout)
        self.future.add_done_callback(lambda _f: self.done.set())
        self.status_call = self.builder.stream(CONTROL + "Status", control.StatusResponse)(
            control.StatusRequest(Ref=self.ref), timeout=self.timeout + 60
        )
        self.status_thread = threading.Thread(target=self._read_status, daemon=True, name="status")
        self.status_thread.start()

    def _read_status(self) -> None:
        import grpc

        try:
            for resp in self.status_call:
                events = self.tracker.update(resp)
                if self.renderer is not None and events:
                    self.renderer.events(events)
        except grpc.RpcError:
            pass  # the stream ends (or is cancelled) with the job; Solve reports build errors
        except Exception as exc:  # noqa: BLE001 - a bug of ours (tracker, renderer): solve() raises it
            self.status_error = exc

    def bridge(self, method: str, request: Any, response_type: Any, timeout: float) -> Any:
        """One LLBBridge call for this build (with the build-id header and a deadline)."""
        import grpc

        began = time.perf_counter()
        try:
            return self.builder.unary(BRIDGE + method, response_type)(
                request, timeout=timeout, metadata=self.metadata
            )
        except grpc.RpcError as exc:
            # "no such job": Control.Solve failed before registering; its error is the real one.
            if self.done.wait(0.5 if "no such job" in rpc_details(exc) else 0) and self.future.exception():
                raise self.future.exception() from exc
            raise
        finally:
            self.waited += time.perf_counter() - began

    def resolve_image_config(self, ref: str, platform: str) -> tuple[str, dict[str, Any] | None]:
        """``(manifest digest or "", config)`` of ``ref`` as the builder resolves it."""
        request = gateway.ResolveImageConfigRequest(
            Ref=ref, Platform=parse_platform(platform), ResolveMode="default",
            LogName=f"[internal] load metadata for {ref}",
        )
        resp = self.bridge("ResolveImageConfig", request, gateway.ResolveImageConfigResponse, RESOLVE_TIMEOUT)
        return resp.Digest, (json.loads(resp.Config) if resp.Config else None)

    def wait(self) -> control.ControlSolveResponse:
        # Short waits keep the main thread responsive to Ctrl-C.
        began = time.perf_counter()
        try:
            while not self.done.wait(0.25):
                pass
            return self.future.result()
        finally:
            self.waited += time.perf_counter() - began

    def abort(self, message: str, *, returned: bool) -> None:
        """Stop the remote build: Return(error) if we had not returned, then cancel Solve."""
        if not returned and self.future is not None and not self.done.is_set():
            try:
                self.builder.unary(BRIDGE + "Return", gateway.ReturnResponse)(
                    gateway.ReturnRequest(error=types.RpcStatus(code=_GRPC_CANCELLED, message=message)),
                    timeout=5, metadata=self.metadata,
                )
            except Exception:  # noqa: BLE001 - best effort; the cancel below still stops it
                pass
        if self.future is not None:
            self.future.cancel()

    def finish(self) -> None:
        """Let the Status stream drain (it ends with the job), then drop it."""
        if self.status_thread is not None:
            self.status_thread.join(STATUS_DRAIN)
        if self.status_call is not None:
            self.status_call.cancel()
        if self.renderer is not None:
            self.renderer.close(self.tracker)

    def translate(self, exc: BaseException, spans: Mapping[str, Any]) -> BaseException:
        """The envdsl error for a failure during the build."""
        import grpc

        if not isinstance(exc, (grpc.RpcError, grpc.FutureCancelledError)):
            return exc
        if self.status_thread is not None:
            self.status_thread.join(STATUS_DRAIN)  # the failed vertex arrives on Status
        failed = self.tracker.failed_vertex()
        if failed is not None and rpc_code_name(exc) not in ("UNAVAILABLE", "DEADLINE_EXCEEDED"):
            return SolveFailed(
                failed.error, step=failed.name, span=spans.get(failed.digest), log_tail=tuple(failed.logs),
                hint=step_failure_hint(failed),
            )
        mapped = map_rpc_error(exc, builder=self.builder.url, remedy=self.builder.address.remedy, what="build")
        if type(mapped) is EngineError:
            return SolveFailed(rpc_details(exc))
        return mapped


def step_failure_hint(failed: VertexState) -> str | None:
    """What to do about a failed step, from what its log showed."""
    if failed.tls_failure:
        return ("a TLS certificate did not verify (a TLS-inspecting proxy?): pass --ca-bundle FILE "
                "with the proxy's root CA, or set it once with DSL_CA_BUNDLE or "
                "`dsl context create NAME --ca-bundle FILE`")
    from dsl.engines.buildkit._lock import hash_mismatch_hint  # a --locked pip step (issue 14)

    mismatch = hash_mismatch_hint(list(failed.logs))
    if mismatch:
        return mismatch
    return "the last log lines of the step are above" if failed.logs else None


@dataclass(frozen=True, slots=True)
class Caps:
    """What a builder can do, as reported by ``LLBBridge.Ping``."""

    llb: frozenset[str]
    frontend: frozenset[str]
    platforms: tuple[str, ...]

    @property
    def parallel(self) -> bool:
        """True when the builder merges and diffs (the parallel graph shape works)."""
        return {"mergeop", "diffop"} <= self.llb


def probe_caps(builder: Builder, *, timeout: float = PING_TIMEOUT) -> Caps:
    """Ask the builder for its caps: an empty gateway build, Ping, then Return(error).

    There is no caps RPC on BuildKit v0.8 outside a build, so this registers a build that
    never solves anything (≈20 ms on dockerd) and cancels it.

    Raises:
        EngineUnavailable / EngineTimeout / EngineError: as mapped from gRPC.
    """
    import grpc

    job = _Job(builder, ProgressTracker(), None, timeout)
    job.start(control.ControlSolveRequest(Ref=job.ref))
    try:
        pong = job.bridge("Ping", gateway.PingRequest(), gateway.PongResponse, timeout)
    except grpc.RpcError as exc:
        raise map_rpc_error(exc, builder=builder.url, remedy=builder.address.remedy, what="ping") from exc
    finally:
        job.abort("capability probe", returned=False)
        job.finish()
    return Caps(
        llb=frozenset(c.ID for c in pong.LLBCaps if c.Enabled),
        frontend=frozenset(c.ID for c in pong.FrontendAPICaps if c.Enabled),
        platforms=_platforms(pong),
    )
