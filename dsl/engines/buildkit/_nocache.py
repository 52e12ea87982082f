"""``--no-cache``: mark every op of a marshalled definition ``ignore_cache``.

Only ``Definition.metadata`` changes; op bytes, hence digests, stay the same, so the next
cached build still matches. The terminal op's metadata declares the ``meta.ignorecache`` cap.
"""

from __future__ import annotations

import hashlib

from dsl.engines.buildkit.protos import bk_types_pb2 as types


def ignore_cache(definition: bytes) -> bytes:
    """Return ``definition`` with ``ignore_cache`` set on every op's metadata."""
    defn = types.LLBDefinition.FromString(definition)
    digests = ["sha256:" + hashlib.sha256(op).hexdigest() for op in getattr(defn, "def")]
    for digest in digests[:-1]:
        defn.metadata[digest].ignore_cache = True
    if digests:
        defn.metadata[digests[-1]].caps["meta.ignorecache"] = True
    return defn.SerializeToString(deterministic=True)
