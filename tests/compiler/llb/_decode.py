"""Decode a marshalled definition with the generated classes and check BuildKit's invariants."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from compiler.llb.protos import ops_pb2 as pb


@dataclass
class Decoded:
    """A definition as the solver sees it: ops by digest, in ``def`` order."""

    definition: pb.Definition
    digests: list[str]  # in def order, terminal last
    ops: dict[str, pb.Op]

    def name(self, digest: str) -> str:
        return self.definition.metadata[digest].description.get("llb.customname", "")

    def execs(self) -> list[tuple[str, pb.Op]]:
        return [(d, self.ops[d]) for d in self.digests if self.ops[d].WhichOneof("op") == "exec"]

    def sources(self) -> list[str]:
        return [self.ops[d].source.identifier for d in self.digests
                if self.ops[d].WhichOneof("op") == "source"]

    def kinds(self) -> set[str]:
        return {self.ops[d].WhichOneof("op") for d in self.digests[:-1]}


def decode(blob: bytes) -> Decoded:
    """Decode and assert: digests are the sha256 of the bytes, every input resolves to an
    earlier op, the terminal op (inputs only) is last, every op has platform and constraints,
    metadata exists for every op and declares caps."""
    d = pb.Definition.FromString(blob)
    raw = list(getattr(d, "def"))
    assert raw, "empty definition"
    digests, ops = [], {}
    for b in raw:
        dg = "sha256:" + hashlib.sha256(b).hexdigest()
        op = pb.Op.FromString(b)
        assert op.SerializeToString(deterministic=True) == b, "op bytes are not canonical"
        for inp in op.inputs:
            assert inp.digest in ops, f"input {inp.digest} does not resolve to an earlier op"
        digests.append(dg)
        ops[dg] = op
    assert len(set(digests)) == len(digests), "duplicate op in def"
    term = ops[digests[-1]]
    assert term.WhichOneof("op") is None and len(term.inputs) == 1, "terminal op is not last"
    assert not term.HasField("platform")
    for dg in digests[:-1]:
        op = ops[dg]
        assert op.WhichOneof("op") is not None, "only the last op may be the terminal"
        assert op.HasField("platform") and op.platform.OS and op.platform.Architecture
        assert op.HasField("constraints") and not op.constraints.filter
        assert dg in d.metadata and d.metadata[dg].caps, f"op {dg} declares no caps"
        assert d.metadata[dg].description.get("llb.customname"), f"op {dg} has no name"
    assert set(d.metadata) == set(digests), "metadata for an op that is not in def"
    assert {"constraints", "platform"} <= set(d.metadata[digests[-1]].caps)
    return Decoded(d, digests, ops)
