"""The whole environment a build file describes, and its content hash."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import field
from typing import Any

from dsl.ir._build import BuildGraph, Step
from dsl.ir._node import Node, node
from dsl.ir._runtime import RuntimeSpec
from dsl.ir._span import Span

_PAIR_FIELDS = frozenset({"environ", "commands"})


@node
class Environment(Node):
    """A named environment: the image (``build``) and how it runs (``runtime``).

    ``name`` follows envd: the build context directory's base name, normalised. ``source``
    and ``function`` say where it came from; like spans they are not part of the hash.
    """

    name: str
    build: BuildGraph = BuildGraph()
    runtime: RuntimeSpec = RuntimeSpec()
    source: str = field(default="", compare=False)
    function: str = field(default="build", compare=False)

    def to_data(self, *, spans: bool = True) -> dict[str, Any]:
        """The environment as JSON-ready data (spans as ``"at": "file:line:col"``)."""
        return to_data(self, spans=spans)

    def content_hash(self) -> str:
        """``sha256:<hex>`` of everything that defines the outputs.

        Independent of dict order, ``PYTHONHASHSEED``, spans, the build file's location and
        the machine: only names and values that change an artifact go in.
        """
        return content_hash(self)


def to_data(node: Any, *, spans: bool = True) -> Any:
    """Convert an IR node to plain JSON data. Step nodes carry their class name as ``kind``."""
    if isinstance(node, Span):
        return str(node)
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        out: dict[str, Any] = {}
        if isinstance(node, Step):  # steps sit side by side in a list: name their kind
            out["kind"] = type(node).__name__
        for f in dataclasses.fields(node):
            if f.name in {"source", "function"} and isinstance(node, Environment) and not spans:
                continue
            value = getattr(node, f.name)
            if f.name == "span":
                if spans and value is not None:
                    out["at"] = str(value)
                continue
            # Only RuntimeSpec's sorted (name, value) pairs; InitScript.commands is a plain list.
            if f.name in _PAIR_FIELDS and isinstance(node, RuntimeSpec):
                out[f.name] = {k: v for k, v in value}
                continue
            out[f.name] = to_data(value, spans=spans)
        return out
    if isinstance(node, tuple | list):
        return [to_data(v, spans=spans) for v in node]
    return node


def canonical_json(data: Any) -> bytes:
    """Canonical JSON bytes: sorted keys, no insignificant whitespace, UTF-8."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def content_hash(node: Any) -> str:
    """``sha256:<hex>`` over the canonical JSON of an IR node without spans."""
    # Imported here: loading OpenSSL's hashlib costs ~4 ms, which every command importing the
    # IR would pay while only those hashing an environment need it.
    import hashlib

    return "sha256:" + hashlib.sha256(canonical_json(to_data(node, spans=False))).hexdigest()
