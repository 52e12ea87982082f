"""The Docker runner: ``dsl up`` and friends on a Docker engine, through the ``docker`` SDK.

The SDK (~100 ms to import) is loaded only when a runner is made, never by ``dsl compile`` or
``dsl check``; this package's own modules import it only inside functions.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DockerRunner"]


def __getattr__(name: str) -> Any:
    if name == "DockerRunner":
        from dsl.engines.docker._runner import DockerRunner

        return DockerRunner
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
