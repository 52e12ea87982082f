"""BuildKit over gRPC: connections, the gateway-forwarder solve, progress, cache.

``grpc`` itself is imported only when a connection is made, so importing this package is
cheap (protobuf message classes only).
"""

from dsl.engines.buildkit._connect import (
    Builder,
    BuilderAddress,
    TlsFiles,
    connect,
    parse_builder_url,
    resolve_builder_url,
)
from dsl.engines.buildkit._progress import ProgressTracker, make_renderer
from dsl.engines.buildkit._solve import Caps, Exporter, Plan, SolveOutcome, probe_caps, solve

__all__ = [
    "Builder", "BuilderAddress", "Caps", "Exporter", "Plan", "ProgressTracker", "SolveOutcome",
    "TlsFiles", "connect", "make_renderer", "parse_builder_url", "probe_caps",
    "resolve_builder_url", "solve",
]
