"""Docker image reference normalisation (``ubuntu:22.04`` → ``docker.io/library/ubuntu:22.04``).

The grammar lives once, in ``dsl.rules`` (what ``dsl check`` applies to ``base(image=)``); the
LLB source identifier is its normalised form, so the same image always yields the same
digest, as with BuildKit's own frontends.
"""

from __future__ import annotations

from dsl.rules import parse_image_ref


def normalize_image_ref(ref: str) -> str:
    """Return the fully qualified form of an image reference.

    Args:
        ref: e.g. ``ubuntu``, ``ubuntu:22.04``, ``ghcr.io/o/i@sha256:...``, ``localhost:5000/x``.

    Returns:
        ``domain/path[:tag][@digest]``; ``:latest`` is added when neither tag nor digest is
        given; Docker Hub images get ``docker.io`` and ``library/`` as docker does.

    Raises:
        ValueError: the reference is malformed (``dsl.rules.Invalid``; the message says which
            part and why).
    """
    return parse_image_ref(ref).normalized()
