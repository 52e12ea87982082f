"""Watches: ``?watch=true`` streams ``{"type": ..., "object": ...}`` lines, chunk by chunk.

Semantics of a real server: without ``resourceVersion`` (or with ``"0"``) the stream starts
with a synthetic ADDED event for every object that matches now, then follows changes; with a
resourceVersion it sends the changes after it (410 Expired if history no longer reaches
back). Selectors filter events; an object that stops matching is not reported (the real
server sends DELETED for it only in its watch cache; neither is needed here). The stream
ends after ``timeoutSeconds`` (default 30 minutes, as the server's max), when the client
goes away, or when the fake stops.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from .resources import ResourceType
from .selectors import field_matcher, label_matcher
from .server import Request, Stream
from .store import Store


def _line(kind: str, obj: dict[str, Any]) -> bytes:
    return json.dumps({"type": kind, "object": obj}).encode() + b"\n"


def stream(store: Store, request: Request, rtype: ResourceType, namespace: str | None) -> Stream:
    labels = label_matcher(request.query.get("labelSelector"))
    fields = field_matcher(request.query.get("fieldSelector"), rtype.kind)
    timeout = float(request.query.get("timeoutSeconds") or 1800)
    since = request.query.get("resourceVersion", "")
    with store.changed:
        if since in ("", "0"):
            initial, cursor = store.list(rtype, namespace)
            initial = [obj for obj in initial if labels(obj) and fields(obj)]
        else:
            initial, cursor = [], int(since)
            store.events_after(cursor)  # 410 now, before the 200 goes out

    def matches(event: Any) -> bool:
        obj = event.object
        return (event.rtype == rtype and (namespace is None or obj["metadata"].get("namespace") == namespace)
                and labels(obj) and fields(obj))

    def chunks() -> Iterator[bytes]:
        nonlocal cursor
        for obj in initial:
            yield _line("ADDED", obj)
        deadline = time.monotonic() + timeout
        while not request.stopping.is_set() and not store.closed and time.monotonic() < deadline:
            with store.changed:
                events = store.events_after(cursor)
                if not events:
                    store.changed.wait(timeout=min(0.5, max(0.0, deadline - time.monotonic())))
                    continue
            cursor = events[-1].revision
            for event in events:
                if matches(event):
                    yield _line(event.type, event.object)

    return Stream(chunks())
