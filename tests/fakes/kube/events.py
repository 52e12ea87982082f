"""Events the cluster's components write, in the shapes a real cluster stores them (core/v1).

Two writers exist in a real cluster and both show up in ``/api/v1/events``:

- the legacy recorder (kubelet, persistentvolume-controller): ``source.component``,
  ``firstTimestamp``/``lastTimestamp`` and a ``count`` that grows when the same
  (object, reason, message) repeats, as client-go's EventCorrelator aggregates them; the
  name is ``<object>.<hex time>``;
- the events.k8s.io recorder (the scheduler): ``eventTime``, ``action``,
  ``reportingController``/``reportingInstance``, no ``count`` and null first/last timestamps.

``kubectl describe`` and a runner printing a Pod's events read either kind.
"""

from __future__ import annotations

import datetime
import threading
import time
from typing import TYPE_CHECKING, Any

from .resources import by_kind
from .writes import WriteOptions

if TYPE_CHECKING:
    from .writes import Writer

EVENT = by_kind("Event")
NORMAL, WARNING = "Normal", "Warning"


def _stamp() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _micro() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def reference(obj: dict[str, Any], field_path: str = "") -> dict[str, Any]:
    """The ``involvedObject`` of an event about ``obj`` (a container: ``spec.containers{name}``)."""
    meta = obj["metadata"]
    ref = {"kind": obj["kind"], "namespace": meta.get("namespace"), "name": meta["name"], "uid": meta["uid"],
           "apiVersion": obj.get("apiVersion", "v1"), "resourceVersion": meta.get("resourceVersion")}
    if field_path:
        ref["fieldPath"] = field_path
    return {k: v for k, v in ref.items() if v is not None}


class Recorder:
    """Writes Events through the fake's write pipeline (watches and selectors see them)."""

    def __init__(self, writer: Writer, component: str, host: str = "") -> None:
        self.writer, self.component, self.host = writer, component, host
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, ...], str] = {}  # aggregation key → event name

    def event(self, obj: dict[str, Any], type_: str, reason: str, message: str, field_path: str = "") -> None:
        """A legacy (core/v1) event; the same one again bumps ``count`` and ``lastTimestamp``."""
        ref = reference(obj, field_path)
        namespace = ref.get("namespace") or "default"
        key = (ref["uid"], field_path, type_, reason, message, self.component)
        with self._lock:
            name = self._seen.get(key)
            existing = self.writer.store.get(EVENT, namespace, name) if name else None
            if existing is not None:
                existing["count"] = int(existing.get("count") or 1) + 1
                existing["lastTimestamp"] = _stamp()
                self.writer.update(EVENT, namespace, name, existing, self._options())
                return
            name = f"{ref['name']}.{time.time_ns():x}"
            self._seen[key] = name
        source = {"component": self.component, **({"host": self.host} if self.host else {})}
        stamp = _stamp()
        body = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": name, "namespace": namespace},
                "involvedObject": ref, "reason": reason, "message": message, "source": source,
                "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1, "type": type_,
                "eventTime": None, "reportingComponent": self.component, "reportingInstance": self.host}
        self.writer.create(EVENT, namespace, body, self._options())

    def new_event(self, obj: dict[str, Any], type_: str, reason: str, action: str, note: str) -> None:
        """An events.k8s.io event as the scheduler writes it, seen through core/v1."""
        ref = reference(obj)
        namespace = ref.get("namespace") or "default"
        body = {"apiVersion": "v1", "kind": "Event",
                "metadata": {"name": f"{ref['name']}.{time.time_ns():x}", "namespace": namespace},
                "involvedObject": ref, "reason": reason, "message": note, "source": {},
                "firstTimestamp": None, "lastTimestamp": None, "type": type_, "eventTime": _micro(),
                "action": action, "reportingComponent": self.component,
                "reportingInstance": f"{self.component}-{self.host}" if self.host else self.component}
        self.writer.create(EVENT, namespace, body, self._options())

    def _options(self) -> WriteOptions:
        return WriteOptions(False, self.component, "Ignore")
