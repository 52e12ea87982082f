"""PyYAML's emitter for documents ``compiler.k8s._block_yaml`` cannot prove simple.

Imported only when needed: most manifests never reach it, and ``import yaml`` is a large
share of a cold ``dsl compile``. Nodes are built directly (no representer) with a memo for
implicit-tag resolution; libyaml's emitter is used when present.

The bytes are those of ``yaml.safe_dump(data, sort_keys=False, allow_unicode=True,
width=65536, default_flow_style=False)`` (pure or libyaml emitter alike), where ``data`` has
the top-level keys in the given order and every nested mapping's keys sorted, with two
deliberate differences:

* a string value containing ``\n`` is written in literal block style (``|``, ``|-``, ``|+``)
  when YAML allows it, so scripts in manifests stay readable; ``safe_dump`` would quote it
  (``'a\n\n  b'``). Where YAML does not allow a literal block (trailing spaces on a line, a
  tab, a carriage return), it falls back to the quoting ``safe_dump`` uses;
* a dict or list object that occurs twice is written out twice, where ``safe_dump`` would
  write an anchor and an alias (``&id001`` / ``*id001``).

``tests/compiler/k8s/test_yaml_writers.py`` checks this against ``safe_dump`` itself.
"""

from __future__ import annotations

from typing import Any

import yaml

_STR, _INT, _BOOL = "tag:yaml.org,2002:str", "tag:yaml.org,2002:int", "tag:yaml.org,2002:bool"
_MAP, _SEQ = "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"
_RESOLVED: dict[tuple[str, tuple[bool, bool]], str] = {}


def _with_resolver_memo(base: type) -> type:
    """``base`` (a PyYAML safe dumper class) with memoised implicit-tag resolution.

    Deciding whether a string must be quoted (``"yes"``, ``"0777"``, ``"2"``) runs a list of
    regexes per scalar; manifests repeat the same keys and values, so the answer is cached.
    """

    class Dumper(base):  # type: ignore[misc, valid-type]
        def descend_resolver(self, current_node, current_index):  # type: ignore[no-untyped-def]
            pass  # no path-dependent resolvers are registered; skip the per-node bookkeeping

        def ascend_resolver(self):  # type: ignore[no-untyped-def]
            pass

        def resolve(self, kind, value, implicit):  # type: ignore[no-untyped-def]
            if kind is not yaml.ScalarNode:
                return super().resolve(kind, value, implicit)
            key = (value, implicit)
            tag = _RESOLVED.get(key)
            if tag is None:
                if len(_RESOLVED) > 100_000:
                    _RESOLVED.clear()
                tag = _RESOLVED[key] = super().resolve(kind, value, implicit)
            return tag

    return Dumper


C_DUMPER = _with_resolver_memo(yaml.CSafeDumper) if yaml.__with_libyaml__ else None
PURE_DUMPER = _with_resolver_memo(yaml.SafeDumper)


def _node(value: Any) -> yaml.Node:
    """A YAML node for plain data (str, bool, int, dict, list); mapping keys sorted.

    Building nodes directly skips PyYAML's generic representer (type dispatch, alias
    tracking); the module docstring says how the bytes relate to ``yaml.safe_dump``.
    """
    kind = type(value)
    if kind is str:
        return yaml.ScalarNode(_STR, value, style="|" if "\n" in value else None)
    if kind is dict:
        return yaml.MappingNode(_MAP, [(yaml.ScalarNode(_STR, k), _node(value[k])) for k in sorted(value)],
                                flow_style=False)
    if kind is list or kind is tuple:
        return yaml.SequenceNode(_SEQ, [_node(v) for v in value], flow_style=False)
    if kind is bool:
        return yaml.ScalarNode(_BOOL, "true" if value else "false")
    if kind is int:
        return yaml.ScalarNode(_INT, str(value))
    raise TypeError(f"cannot emit {kind.__name__} in a manifest")


def pyyaml_document(pairs: list[tuple[str, Any]], *, pure: bool = False) -> str:
    """One block-style YAML document for a top-level mapping given as ordered pairs.

    Args:
        pairs: the top-level keys and values, in output order (nested keys get sorted).
        pure: use PyYAML's pure-Python emitter even when libyaml is available (tests).

    Returns:
        The document, without ``---``.

    Raises:
        TypeError: a value is not str, bool, int, dict, list or tuple.
    """
    root = yaml.MappingNode(_MAP, [(yaml.ScalarNode(_STR, k), _node(v)) for k, v in pairs], flow_style=False)
    dumper = PURE_DUMPER if pure or C_DUMPER is None else C_DUMPER
    return yaml.serialize(root, Dumper=dumper, allow_unicode=True, width=1 << 16)
