"""The fake's storage: objects by resource, namespace and name, one global resourceVersion,
and the event history watches read from.

Like etcd behind a real server, every write (create, update, delete) takes the next revision
and that revision becomes the object's ``metadata.resourceVersion``; a list carries the
current revision. Events are kept in memory (the last ``_HISTORY`` of them); a watch from a
revision older than that gets 410 Expired, as from a compacted etcd.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
from typing import Any

from .resources import ResourceType
from .status import gone

_HISTORY = 10_000
Key = tuple[str, str, str]  # (qualified resource, namespace or "", name)


@dataclasses.dataclass(frozen=True, slots=True)
class Event:
    revision: int
    type: str  # ADDED, MODIFIED, DELETED
    rtype: ResourceType
    object: dict[str, Any]


class Store:
    def __init__(self) -> None:
        self.changed = threading.Condition(threading.RLock())
        self.revision = 1000
        self._objects: dict[Key, dict[str, Any]] = {}
        self._events: list[Event] = []
        self.closed = False

    @staticmethod
    def key(rtype: ResourceType, namespace: str | None, name: str) -> Key:
        return (rtype.qualified, namespace or "" if rtype.namespaced else "", name)

    def get(self, rtype: ResourceType, namespace: str | None, name: str) -> dict[str, Any] | None:
        with self.changed:
            found = self._objects.get(self.key(rtype, namespace, name))
            return copy.deepcopy(found) if found is not None else None

    def list(self, rtype: ResourceType, namespace: str | None) -> tuple[list[dict[str, Any]], int]:
        """Objects of a type (in one namespace, or all), sorted by namespace and name, and the revision."""
        with self.changed:
            found = [copy.deepcopy(obj) for (resource, ns, _), obj in sorted(self._objects.items())
                     if resource == rtype.qualified and (namespace is None or ns == namespace)]
            return found, self.revision

    def write(self, rtype: ResourceType, obj: dict[str, Any], event: str) -> dict[str, Any]:
        """Store ``obj`` (ADDED or MODIFIED) at the next revision; returns the stored copy."""
        with self.changed:
            self.revision += 1
            obj = copy.deepcopy(obj)
            obj["metadata"]["resourceVersion"] = str(self.revision)
            meta = obj["metadata"]
            self._objects[self.key(rtype, meta.get("namespace"), meta["name"])] = obj
            self._record(Event(self.revision, event, rtype, copy.deepcopy(obj)))
            return copy.deepcopy(obj)

    def remove(self, rtype: ResourceType, namespace: str | None, name: str) -> dict[str, Any]:
        with self.changed:
            obj = self._objects.pop(self.key(rtype, namespace, name))
            self.revision += 1
            obj["metadata"]["resourceVersion"] = str(self.revision)
            self._record(Event(self.revision, "DELETED", rtype, copy.deepcopy(obj)))
            return obj

    def _record(self, event: Event) -> None:
        self._events.append(event)
        del self._events[:-_HISTORY]
        self.changed.notify_all()

    def events_after(self, revision: int) -> list[Event]:
        with self.changed:
            if self._events and revision < self._events[0].revision - 1:
                raise gone(f"too old resource version: {revision} ({self._events[0].revision - 1})")
            return [e for e in self._events if e.revision > revision]

    def close(self) -> None:
        with self.changed:
            self.closed = True
            self.changed.notify_all()
