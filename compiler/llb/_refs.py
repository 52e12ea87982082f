"""Docker image reference normalisation (``ubuntu:22.04`` → ``docker.io/library/ubuntu:22.04``).

Implements the grammar of the distribution reference format so that the same image always
yields the same source identifier, hence the same digest, as BuildKit's own frontends.
"""

from __future__ import annotations

import re

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_PATH = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_DOMAIN_RE = re.compile(rf"^{_DOMAIN}$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def normalize_image_ref(ref: str) -> str:
    """Return the fully qualified form of an image reference.

    Args:
        ref: e.g. ``ubuntu``, ``ubuntu:22.04``, ``ghcr.io/o/i@sha256:...``, ``localhost:5000/x``.

    Returns:
        ``domain/path[:tag][@digest]``; ``:latest`` is added when neither tag nor digest is
        given; Docker Hub images get ``docker.io`` and ``library/`` as docker does.

    Raises:
        ValueError: the reference is malformed (the message says which part).
    """
    if not ref or ref != ref.strip() or any(c.isspace() for c in ref):
        raise ValueError(f"invalid image reference {ref!r}: empty or contains whitespace")
    name, _, digest = ref.partition("@")
    if digest and not _DIGEST.match(digest):
        raise ValueError(f"invalid image reference {ref!r}: digest must be sha256:<64 hex>")
    tag = ""
    slash, colon = name.rfind("/"), name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1:]
        if not _TAG.match(tag):
            raise ValueError(f"invalid image reference {ref!r}: bad tag {tag!r}")
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        domain, path = first, rest
    else:
        domain, path = "docker.io", name
    if domain == "index.docker.io":
        domain = "docker.io"
    if not _DOMAIN_RE.match(domain):
        raise ValueError(f"invalid image reference {ref!r}: bad registry {domain!r}")
    if domain == "docker.io" and "/" not in path:
        path = f"library/{path}"
    if not _PATH.match(path):
        raise ValueError(
            f"invalid image reference {ref!r}: repository names are lower-case letters, "
            "digits and separators (. _ __ -)")
    if not tag and not digest:
        tag = "latest"
    return f"{domain}/{path}" + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
