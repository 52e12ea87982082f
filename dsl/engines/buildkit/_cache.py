"""The builder's cache: ``DiskUsage`` and ``Prune`` on ``moby.buildkit.v1.Control``."""

from __future__ import annotations

from dataclasses import dataclass

from dsl.engines.buildkit._connect import Builder
from dsl.engines.buildkit._errors import engine_call
from dsl.engines.buildkit._solve import CONTROL
from dsl.engines.buildkit.protos import bk_control_pb2 as control

_DU_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class CacheRecord:
    """One cache record as the builder reports it."""

    id: str
    size: int
    in_use: bool
    shared: bool
    mutable: bool
    type: str
    description: str
    last_used: float | None
    usage_count: int


def _record(r: control.UsageRecord) -> CacheRecord:
    last = r.LastUsedAt.seconds + r.LastUsedAt.nanos / 1e9 if r.HasField("LastUsedAt") else None
    return CacheRecord(r.ID, r.Size, r.InUse, r.Shared, r.Mutable, r.RecordType, r.Description, last, r.UsageCount)


def disk_usage(builder: Builder, *, timeout: float = _DU_TIMEOUT) -> list[CacheRecord]:
    """Every cache record, largest first.

    Raises:
        EngineUnavailable / EngineTimeout / EngineError: as mapped from gRPC.
    """
    with engine_call(builder=builder.url, remedy=builder.address.remedy, what="disk usage"):
        resp = builder.unary(CONTROL + "DiskUsage", control.DiskUsageResponse)(
            control.DiskUsageRequest(), timeout=timeout
        )
    return sorted((_record(r) for r in resp.record), key=lambda r: (-r.size, r.id))


def prune(
    builder: Builder,
    *,
    all_records: bool = False,
    keep_duration: float = 0.0,
    keep_bytes: int = 0,
    timeout: float = 600.0,
) -> list[CacheRecord]:
    """Remove cache records; return what was removed.

    Args:
        builder: the builder.
        all_records: also remove records that are shared with images (BuildKit's ``--all``).
        keep_duration: keep records used within this many seconds.
        keep_bytes: keep this much storage.
        timeout: deadline in seconds.

    Raises:
        EngineUnavailable / EngineTimeout / EngineError: as mapped from gRPC.
    """
    request = control.PruneRequest(all=all_records, keepDuration=int(keep_duration * 1e9), keepBytes=keep_bytes)
    with engine_call(builder=builder.url, remedy=builder.address.remedy, what="prune"):
        stream = builder.stream(CONTROL + "Prune", control.UsageRecord)(request, timeout=timeout)
        return [_record(r) for r in stream]
