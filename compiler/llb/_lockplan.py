"""What ``dsl lock`` needs from the LLB compiler: what a build looks up, and the resolution.

:func:`lock_requests` lists what a lock must pin (the base, each pip step, each toolchain
download); :func:`compile_resolution` is the LLB ``dsl lock`` solves to learn the pins: the
build's own stages up to its pip steps (so pip resolves on the same base, system packages,
Python and index), the pip steps with ``--report``, and the publishers' checksum files, all
collected into one small tree for the local exporter. ``compiler.llb._pins`` is the other half:
how a ``--locked`` build uses the pins.
"""

from __future__ import annotations

from dataclasses import dataclass

from compiler.llb import _python, _toolchains
from compiler.llb._compile import (
    PARALLEL_CAPS,
    LLBResult,
    _context_includes,
    _result,
    _until_python,
    base_image_ref,
)
from compiler.llb._context import Context
from compiler.llb._ops import CopyFrom, Platform
from compiler.llb._pins import REPORT_DIR, Resolution
from compiler.llb._state import http, scratch
from dsl.ir import Environment, Span


@dataclass(frozen=True, slots=True)
class LockRequests:
    """What a build looks up at build time, so what a lock must pin.

    Attributes:
        base: the normalised base image reference.
        pip: ``(step name, pip arguments, span)`` per pip step, in build order.
        downloads: ``(builtin, archive URL, checksum file URL, its shape, span)`` per toolchain
            download (the shape as in ``compiler.llb._verify``).
    """

    base: str
    pip: tuple[tuple[str, str, Span | None], ...]
    downloads: tuple[tuple[str, str, str, str, Span | None], ...]


def lock_requests(env: Environment, *, platform: str = "linux/amd64") -> LockRequests:
    """What ``build.envd.lock`` has to pin for ``env`` on ``platform``.

    Raises:
        CompileError: invalid input in the build graph (with its build-file span).
    """
    plat = Platform.parse(platform)
    ctx = Context(env, plat, base_image_ref(env), False)
    downloads = tuple((what, a.url, a.sums_url, a.shape, getattr(step, "span", None))
                      for what, a, step in _toolchains.archives(env.build.steps, plat.architecture))
    return LockRequests(base=ctx.base_ref, pip=tuple(_python.pip_step_args(ctx)), downloads=downloads)


def compile_resolution(
    env: Environment,
    resolution: Resolution,
    *,
    caps: frozenset[str] = frozenset(),
    platform: str = "linux/amd64",
    ca_bundle: bool = False,
    runtime_base: str | None = None,
) -> LLBResult | None:
    """The LLB ``dsl lock`` solves: the build up to its pip steps, each writing pip's report,
    and the toolchains' checksum files, collected in one tree (``pip/<i>.json``,
    ``sums/<i>``) for the local exporter.

    Returns:
        None when there is nothing to resolve in a build (no pip step, no toolchain download).

    Raises:
        CompileError: invalid input in the build graph (with its build-file span).
    """
    parallel = PARALLEL_CAPS <= caps
    plat = Platform.parse(platform)
    ref = base_image_ref(env)
    include = _context_includes(env)
    ctx = Context(env, plat, ref, ca_bundle, context_paths=include or (), resolution=resolution,
                  runtime_base=runtime_base)
    actions = []
    if _python.pip_step_args(ctx):
        state = _python.packages(ctx, _until_python(ctx, parallel), conda=False)
        actions.append(CopyFrom(state.output, REPORT_DIR, "/pip"))
    for i, (_what, a, _step) in enumerate(_toolchains.archives(env.build.steps, plat.architecture)):
        sums = http(a.sums_url, filename=a.sums_filename, platform=plat, name=f"download {a.sums_filename}")
        actions.append(CopyFrom(sums.output, a.sums_filename, f"/sums/{i}"))
    if not actions:
        return None
    tree = scratch(plat).file(*actions, name="[internal] collect what build.envd.lock records")
    return _result(ctx, tree, parallel, include, no_cache=False)
