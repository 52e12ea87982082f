"""The Kubernetes runner: ``dsl up --target k8s`` and friends, through the ``kubernetes`` client.

The client (hundreds of ms to import) is loaded only when a runner is made, never by
``dsl compile`` or ``dsl check``; this package's modules import it only inside functions.
"""

from __future__ import annotations

from typing import Any

__all__ = ["KubeRunner"]


def __getattr__(name: str) -> Any:
    if name == "KubeRunner":
        from dsl.engines.kube._runner import KubeRunner

        return KubeRunner
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
