"""A toolchain archive's sha256 from its publisher's checksum file, as ``compiler.llb._verify``
reads it in the build step (the same two shapes, the same strictness)."""

from __future__ import annotations

import re

from dsl.errors import EngineError

_HEX = re.compile(r"[0-9a-f]{64}")


def sha256_from_sums(text: str, *, name: str, shape: str, url: str) -> str:
    """The hash for ``name`` in a checksum file of ``shape`` (``single`` or ``listing``).

    Raises:
        EngineError: not exactly one matching line, or no sha256 in it.
    """
    found = []
    for line in text.splitlines():
        words = line.strip().split()
        if not words:
            continue
        if shape == "single" or len(words) >= 2 and words[1].lstrip("*") == name:
            found.append(words[0])
    if len(found) != 1:
        raise EngineError(f"{url} lists {name} {len(found)} times (expected once)")
    sha256 = found[0].lower()
    if not _HEX.fullmatch(sha256):
        raise EngineError(f"{url} gives no sha256 for {name}")
    return sha256
