"""BuildKit over gRPC: connections, the gateway-forwarder solve, progress, cache.

This package's names are its public surface; callers (the CLI) never import its private
modules.

Names are resolved lazily (PEP 562): ``from dsl.engines.buildkit import connect`` imports
only the module that defines it, so the up-to-date check of ``dsl build``
(:mod:`dsl.engines.buildkit._uptodate`) can live in this package without paying for the
protobuf messages, and ``grpc`` itself is imported only when a connection is made.
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> (module, attribute in it)
_EXPORTS: dict[str, tuple[str, str]] = {
    **{name: ("_connect", name) for name in ("Builder", "BuilderAddress", "TlsFiles", "connect",
                                             "parse_builder_url", "resolve_builder_url")},
    **{name: ("_progress", name) for name in ("PlainRenderer", "ProgressTracker", "TeeRenderer", "make_renderer")},
    **{name: ("_solve", name) for name in ("Caps", "Exporter", "Plan", "SolveOutcome", "probe_caps", "solve")},
    "BuildRequest": ("_build", "BuildRequest"), "BuildResult": ("_build", "BuildResult"),
    "build": ("_build", "build"),
    "OutputSpec": ("_outputs", "OutputSpec"), "parse_output": ("_outputs", "parse_output"),
    "CacheRecord": ("_cache", "CacheRecord"), "disk_usage": ("_cache", "disk_usage"), "prune": ("_cache", "prune"),
    # the up-to-date check (dsl build's fast path: these modules import nothing heavy)
    "BuildFacts": ("_record", "BuildFacts"), "write_record": ("_record", "write_record"),
    "code_fingerprint": ("_uptodate", "code_fingerprint"), "docker_image_id": ("_uptodate", "docker_image_id"),
    "record_inputs": ("_uptodate", "key_inputs"), "record_key": ("_uptodate", "record_key"),
    "check_up_to_date": ("_uptodate", "check"),
    # dsl push: the last build of a project, pushed under another name
    **{name: ("_push", name) for name in ("LocalImage", "last_build", "local_image", "push_image")},
    "docker_host_from_env": ("_hijack", "docker_host_from_env"),
    "ImageStates": ("_image_sources", "ImageStates"), "image_sources": ("_image_sources", "image_sources"),
    # dsl lock: digests, the resolution tree, the builder's version
    **{name: ("_lock", name) for name in ("LOCAL_IMAGE", "ResolvedImage", "builder_version", "read_reports",
                                          "resolve_image_digest", "version_at_least")},
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    target = _EXPORTS.get(name)
    if target is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attr = target
    value = getattr(importlib.import_module(f"{__name__}.{module}"), attr)
    globals()[name] = value
    return value
