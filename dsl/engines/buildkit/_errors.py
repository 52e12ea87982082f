"""One place that turns gRPC failures from a builder into envdsl's engine errors.

``UNAVAILABLE`` → :class:`EngineUnavailable` (with how to start the builder),
``DEADLINE_EXCEEDED`` → :class:`EngineTimeout`, ``CANCELLED`` → :class:`BuildCancelled`,
anything else → :class:`EngineError` with the daemon's message. The raw ``grpc.RpcError`` is
kept on ``__cause__``. A failed build step becomes :class:`SolveFailed` in ``_solve``, which
knows the vertex and its build-file line.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from dsl.errors import BuildCancelled, EngineError, EngineTimeout, EngineUnavailable


def rpc_code_name(exc: BaseException) -> str:
    """The gRPC status code name of ``exc`` (``"UNKNOWN"`` when it carries none)."""
    code = getattr(exc, "code", None)
    try:
        return code().name if callable(code) else "UNKNOWN"
    except Exception:  # noqa: BLE001 - a future that failed without a status
        return "UNKNOWN"


def rpc_details(exc: BaseException) -> str:
    """The server's message of a gRPC error, without grpcio's decoration."""
    details = getattr(exc, "details", None)
    text = details() if callable(details) else None
    return (text or str(exc)).strip()


def map_rpc_error(exc: BaseException, *, builder: str, remedy: str, what: str) -> EngineError:
    """Translate one gRPC error into the envdsl error a user should see.

    Args:
        exc: the ``grpc.RpcError`` (or ``grpc.FutureCancelledError``).
        builder: the builder's address as the user knows it (``docker://…``).
        remedy: how to start or reach that builder.
        what: the operation, e.g. ``"solve"`` or ``"prune"``.

    Returns:
        The mapped error; the caller raises it ``from exc``.
    """
    code = rpc_code_name(exc)
    details = rpc_details(exc)
    if code == "UNAVAILABLE":
        return EngineUnavailable(f"cannot reach the builder at {builder}: {details}", hint=remedy)
    if code == "DEADLINE_EXCEEDED":
        return EngineTimeout(
            f"{what} on {builder} ran past its deadline",
            hint="raise --timeout, or check that the builder is not overloaded",
        )
    if code == "CANCELLED" or type(exc).__name__ == "FutureCancelledError":
        return BuildCancelled(f"{what} cancelled")
    if code == "UNIMPLEMENTED":
        return EngineError(
            f"the builder at {builder} does not support {what}: {details}",
            hint="upgrade the builder, or choose another with --builder",
        )
    return EngineError(f"{what} failed on {builder}: {details}")


@contextlib.contextmanager
def engine_call(*, builder: str, remedy: str, what: str) -> Iterator[None]:
    """Run a block of gRPC calls, re-raising their errors as envdsl engine errors."""
    import grpc

    try:
        yield
    except (grpc.RpcError, grpc.FutureCancelledError) as exc:
        raise map_rpc_error(exc, builder=builder, remedy=remedy, what=what) from exc

