"""BuildKit over gRPC: connections, the gateway-forwarder solve, progress, cache.

Names are resolved lazily (PEP 562): ``from dsl.engines.buildkit import connect`` imports
only the module that defines it, so the up-to-date check of ``dsl build``
(:mod:`dsl.engines.buildkit._uptodate`) can live in this package without paying for the
protobuf messages, and ``grpc`` itself is imported only when a connection is made.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Builder": "_connect", "BuilderAddress": "_connect", "TlsFiles": "_connect", "connect": "_connect",
    "parse_builder_url": "_connect", "resolve_builder_url": "_connect",
    "ProgressTracker": "_progress", "make_renderer": "_progress",
    "Caps": "_solve", "Exporter": "_solve", "Plan": "_solve", "SolveOutcome": "_solve",
    "probe_caps": "_solve", "solve": "_solve",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
