"""Which Debian image the dev runtime bundle is built from: ``$DSL_RUNTIME_BASE``, else the
compiler's pinned default (``compiler.llb._bundle.RUNTIME_BASE``).

A machine that reaches no registry (CI here) builds the bundle from a local
``debian:bookworm``; every command that compiles a dev image reads the same setting, so
``dsl compile`` prints what ``dsl build`` solves.
"""

from __future__ import annotations

import os

from dsl.errors import UsageError

RUNTIME_BASE_ENV = "DSL_RUNTIME_BASE"


def runtime_base() -> str | None:
    """The configured runtime base, or None for the pinned default.

    Raises:
        UsageError: the variable holds no valid image reference.
    """
    value = os.environ.get(RUNTIME_BASE_ENV, "").strip()
    if not value:
        return None
    from dsl import rules

    try:
        rules.parse_image_ref(value)
    except rules.Invalid as exc:
        raise UsageError(f"${RUNTIME_BASE_ENV}: {exc.message}",
                         hint="a Debian image reference, e.g. debian:bookworm (unset it for the pinned one)") from exc
    return value
