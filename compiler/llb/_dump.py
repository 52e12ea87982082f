"""A readable view of a marshalled definition (``dsl compile --target llb --format json``)."""

from __future__ import annotations

import hashlib
from typing import Any

from compiler.llb.protos import ops_pb2 as pb


def describe_definition(definition: bytes) -> list[dict[str, Any]]:
    """Decode ``definition`` into one dict per op, in definition order (terminal op last).

    Each dict has ``digest``, ``kind`` (exec, source, file, merge, diff, or terminal),
    ``name`` (the vertex name), ``inputs`` (``digest``/``index``), ``caps`` and ``op`` (the op's
    fields as protobuf JSON).
    """
    # json_format only here: `dsl build` imports this package but never dumps (~3 ms saved)
    from google.protobuf import json_format

    d = pb.Definition.FromString(definition)
    out = []
    for blob in getattr(d, "def"):
        op = pb.Op.FromString(blob)
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        md = d.metadata[digest] if digest in d.metadata else pb.OpMetadata()
        kind = op.WhichOneof("op") or "terminal"
        body = getattr(op, kind) if kind != "terminal" else None
        out.append({
            "digest": digest,
            "kind": kind,
            "name": md.description.get("llb.customname", ""),
            "inputs": [{"digest": i.digest, "index": i.index} for i in op.inputs],
            "caps": sorted(md.caps),
            "op": json_format.MessageToDict(body, preserving_proto_field_name=True) if body else {},
        })
    return out
