"""Build progress from BuildKit's Status stream: one tracker, three renderers, a log file.

:class:`ProgressTracker` folds ``StatusResponse`` messages into per-vertex state (name,
cached, start/end, error, last log lines). Renderers turn the same updates into text:

* ``plain`` — one line per event, for CI logs (the default when stderr is not a terminal);
* ``json``  — one JSON object per event and line, for tools;
* ``tty``   — a live list with one line per vertex (``rich``, imported only here).

Every build also writes the plain text to a log file; the CLI keeps it when the build fails.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

LOG_TAIL = 12
# What pip/requests, curl, apt (gnutls), git, Go, Node and conda print when a TLS peer's
# certificate does not verify, as behind a TLS-inspecting proxy.
TLS_FAILURE = re.compile(
    r"CERTIFICATE_VERIFY_FAILED|certificate verify failed|SSL certificate problem"
    r"|server certificate verification failed|x509: certificate signed by unknown authority"
    r"|unable to get local issuer certificate|self[- ]signed certificate in certificate chain"
    r"|UNABLE_TO_GET_ISSUER_CERT_LOCALLY|SELF_SIGNED_CERT_IN_CHAIN",
    re.IGNORECASE)


@dataclass
class VertexState:
    """What is known about one vertex of the build graph."""

    digest: str
    number: int
    name: str = ""
    cached: bool = False
    started: float | None = None
    completed: float | None = None
    error: str = ""
    logs: deque[str] = field(default_factory=lambda: deque(maxlen=LOG_TAIL))
    tls_failure: bool = False  # a log line showed a certificate-verification failure
    _partial: str = ""
    _statuses_done: set[str] = field(default_factory=set)

    @property
    def duration(self) -> float | None:
        """Seconds from start to completion, when both are known."""
        if self.started is None or self.completed is None:
            return None
        return max(0.0, self.completed - self.started)


def _seconds(ts: Any) -> float | None:
    """A protobuf Timestamp as float seconds, None when unset."""
    if ts is None or (ts.seconds == 0 and ts.nanos == 0):
        return None
    return ts.seconds + ts.nanos / 1e9


class ProgressTracker:
    """Folds Status updates into vertex state; thread-safe for one writer and many readers."""

    def __init__(self) -> None:
        self.vertices: dict[str, VertexState] = {}
        self.lock = threading.Lock()

    def _vertex(self, digest: str) -> VertexState:
        v = self.vertices.get(digest)
        if v is None:
            v = self.vertices[digest] = VertexState(digest=digest, number=len(self.vertices) + 1)
        return v

    def update(self, resp: Any) -> list[tuple[str, VertexState, Any]]:
        """Apply one ``StatusResponse``; return the events it caused.

        Events are ``(kind, vertex, detail)`` with kind ``start``, ``cached``, ``done``,
        ``error``, ``log`` (detail: the text line) or ``status`` (detail: the VertexStatus).
        """
        events: list[tuple[str, VertexState, Any]] = []
        with self.lock:
            for pv in resp.vertexes:
                v = self._vertex(pv.digest)
                new = not v.name
                v.name = pv.name or v.name
                if new:
                    events.append(("start", v, None))
                if pv.cached and not v.cached:
                    v.cached = True
                    events.append(("cached", v, None))
                v.started = _seconds(pv.started) or v.started
                completed = _seconds(pv.completed)
                if pv.error and not v.error:
                    v.error = pv.error
                    v.completed = completed or v.completed
                    events.append(("error", v, pv.error))
                elif completed and v.completed is None and not v.error:
                    v.completed = completed
                    if not v.cached:
                        events.append(("done", v, None))
            for st in resp.statuses:
                v = self._vertex(st.vertex)
                if _seconds(st.completed) is not None:
                    # BuildKit re-sends a finished status with every later update of its vertex
                    if st.ID in v._statuses_done:
                        continue
                    v._statuses_done.add(st.ID)
                events.append(("status", v, st))
            for log in resp.logs:
                v = self._vertex(log.vertex)
                text = v._partial + log.msg.decode("utf-8", "replace")
                *lines, v._partial = text.split("\n")
                for line in lines:
                    line = line.rstrip("\r")
                    v.logs.append(line)
                    v.tls_failure = v.tls_failure or bool(TLS_FAILURE.search(line))
                    events.append(("log", v, line))
        return events

    def failed_vertex(self) -> VertexState | None:
        """The first vertex that reported an error (the one a user should look at)."""
        with self.lock:
            failed = [v for v in self.vertices.values() if v.error]
        return min(failed, key=lambda v: v.completed or 0.0) if failed else None

    def counts(self) -> tuple[int, int]:
        """``(vertices, cached vertices)`` seen so far."""
        with self.lock:
            return len(self.vertices), sum(1 for v in self.vertices.values() if v.cached)


class Renderer(Protocol):
    """Receives the tracker's events as they happen, and the end of the build."""

    def events(self, events: list[tuple[str, VertexState, Any]]) -> None: ...

    def close(self, tracker: ProgressTracker) -> None: ...


def plain_line(kind: str, v: VertexState, detail: Any) -> str | None:
    """The plain-text line for one event (None for events plain output skips)."""
    tag = f"#{v.number}"
    if kind == "start":
        return f"{tag} {v.name}"
    if kind == "cached":
        return f"{tag} CACHED"
    if kind == "done":
        return f"{tag} DONE {v.duration:.1f}s" if v.duration is not None else f"{tag} DONE"
    if kind == "error":
        return f"{tag} ERROR: {detail}"
    if kind == "log":
        return f"{tag} {detail}"
    if kind == "status" and detail.completed.seconds and detail.name:
        size = f" {detail.current / 1e6:.1f}MB" if detail.current > 1e6 else ""
        return f"{tag} {detail.name}{size} done"
    return None


class PlainRenderer:
    """One line per event (``#N name``, ``#N CACHED``, ``#N DONE 1.2s``, log lines)."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out

    def events(self, events: list[tuple[str, VertexState, Any]]) -> None:
        lines = [line for e in events if (line := plain_line(*e)) is not None]
        if lines:
            self.out.write("\n".join(lines) + "\n")
            self.out.flush()

    def close(self, tracker: ProgressTracker) -> None:
        self.out.flush()


class JsonRenderer:
    """One JSON object per event and line."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out

    def events(self, events: list[tuple[str, VertexState, Any]]) -> None:
        for kind, v, detail in events:
            obj: dict[str, Any] = {"event": kind, "vertex": v.number, "digest": v.digest, "name": v.name}
            if kind == "log":
                obj["line"] = detail
            elif kind == "error":
                obj["error"] = detail
            elif kind == "done" and v.duration is not None:
                obj["seconds"] = round(v.duration, 3)
            elif kind == "status":
                obj.update(id=detail.ID, current=detail.current, total=detail.total,
                           completed=bool(detail.completed.seconds))
            self.out.write(json.dumps(obj, sort_keys=True) + "\n")
        self.out.flush()

    def close(self, tracker: ProgressTracker) -> None:
        self.out.flush()


class TtyRenderer:
    """A live list, one line per vertex: state mark, name, duration; logs of running steps."""

    def __init__(self, out: IO[str], tracker: ProgressTracker) -> None:
        from rich.console import Console
        from rich.live import Live

        self.tracker = tracker
        self.console = Console(file=out, highlight=False)
        self.started = time.monotonic()
        self.live = Live(self._render(), console=self.console, refresh_per_second=8,
                         get_renderable=self._render, transient=False)
        self.live.start()

    def _render(self) -> Any:
        from rich.text import Text

        text = Text()
        elapsed = time.monotonic() - self.started
        with self.tracker.lock:
            vertices = sorted(self.tracker.vertices.values(), key=lambda v: v.number)
            for v in vertices:
                if v.error:
                    mark, style = "✗", "red"
                elif v.cached:
                    mark, style = "=", "dim"
                elif v.completed is not None:
                    mark, style = "✓", "green"
                else:
                    mark, style = "…", "yellow"
                took = "CACHED" if v.cached else (f"{v.duration:.1f}s" if v.duration is not None else "")
                text.append(f"{mark} ", style=style).append(v.name or v.digest[:19])
                text.append(f"  {took}\n", style="dim")
                if (v.error or v.completed is None) and v.logs and not v.cached:
                    for line in list(v.logs)[-(LOG_TAIL if v.error else 3):]:
                        text.append(f"    {line[:200]}\n", style="dim")
        text.append(f"[{elapsed:.1f}s]", style="dim")
        return text

    def events(self, events: list[tuple[str, VertexState, Any]]) -> None:
        pass  # the live view re-reads the tracker on every refresh

    def close(self, tracker: ProgressTracker) -> None:
        self.live.update(self._render(), refresh=True)
        self.live.stop()


class TeeRenderer:
    """Feeds several renderers (the chosen one plus the log file)."""

    def __init__(self, *renderers: Renderer) -> None:
        self.renderers = renderers

    def events(self, events: list[tuple[str, VertexState, Any]]) -> None:
        for r in self.renderers:
            r.events(events)

    def close(self, tracker: ProgressTracker) -> None:
        for r in self.renderers:
            r.close(tracker)


def make_renderer(mode: str, tracker: ProgressTracker, out: IO[str] | None = None) -> Renderer:
    """The renderer for ``--progress MODE`` (``auto`` = ``tty`` on a terminal, else ``plain``).

    ``quiet`` renders nothing.
    """
    out = out or sys.stderr
    if mode == "auto":
        mode = "tty" if out.isatty() else "plain"
    if mode == "tty":
        return TtyRenderer(out, tracker)
    if mode == "json":
        return JsonRenderer(out)
    if mode == "quiet":
        return TeeRenderer()
    return PlainRenderer(out)
