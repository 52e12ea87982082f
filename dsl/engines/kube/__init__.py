"""The Kubernetes runner: ``dsl up --target k8s`` and friends, through the ``kubernetes`` client.

The client (hundreds of ms to import) is loaded only when a runner is made, never by
``dsl compile`` or ``dsl check``; this package's modules import it only inside functions.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BuilderInfo", "Kube", "KubeRunner", "apply_builder", "list_builders", "remove_builder"]
_BUILDERS = ("BuilderInfo", "apply_builder", "list_builders", "remove_builder")  # dsl builder (in-cluster BuildKit)


def __getattr__(name: str) -> Any:
    if name == "KubeRunner":
        from dsl.engines.kube._runner import KubeRunner

        return KubeRunner
    if name == "Kube":
        from dsl.engines.kube._client import Kube

        return Kube
    if name in _BUILDERS:
        from dsl.engines.kube import _builder

        return getattr(_builder, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
