"""A block-style YAML writer for the plain data we emit, byte-identical to ``yaml.safe_dump``.

Manifests are small trees of dicts, lists, ints, bools and short ASCII strings. For those,
PyYAML's output is fully determined by a few rules (two-space indent, sequences inside a
mapping not indented, ``{}``/``[]`` for empty collections, a string plain unless it would
read back as another type, then single-quoted). This module applies those rules directly,
which is several times faster than building PyYAML nodes and lets ``dsl compile`` skip
importing PyYAML altogether.

It only claims the strings it can prove simple: anything else (multi-line text, non-ASCII,
double quotes, an indicator first, ``#``, leading or trailing spaces, words YAML 1.1 reads
as booleans or null, numbers with signs, dots or underscores, long keys) makes
``block_yaml`` return None, and the caller emits that document with PyYAML instead. What it
writes is exactly ``yaml.safe_dump`` with the options ``_pyyaml`` documents (it declines
every ``\n``, so of the two differences listed there only one applies: a repeated container
is written in full). Tests compare both writers with ``safe_dump`` (C and pure-Python
emitters) over every example, generated documents and an exhaustive string corpus.
"""

from __future__ import annotations

import re
from typing import Any

# A run of characters none of which is a YAML indicator in the middle of a plain scalar
# (``:`` only when another such character follows, so never ``: `` or a final ``:``);
# words separated by single spaces. The first character decides how YAML 1.1 resolves
# the string, so it is checked separately (``@ ' & ! $ ;`` are indicators or unusual only
# there; the keep-alive shell command is written with them).
_WORD = r"[A-Za-z0-9_./=@+'&!$;-]+(?::[A-Za-z0-9_./=@+'&!$;-]+)*"
_PLAIN = re.compile(rf"{_WORD}(?: {_WORD})*")
# Strings starting with a digit: an unsigned decimal integer reads back as an int (so it
# is quoted); digits then letters (``10Gi``, ``500m``) read back as a string. Every other
# digit-led string (leading zero: octal/hex/binary; dots, colons, dashes, underscores:
# floats, sexagesimals, timestamps) is left to PyYAML.
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_DIGITS_THEN_WORD = re.compile(r"[1-9][0-9]*[A-Za-z][A-Za-z0-9]*")
# Case-insensitively, the words YAML 1.1 may read as a boolean or null (PyYAML accepts
# only three casings of each; deferring every casing to it is simpler and still exact).
_KEYWORDS = frozenset({"y", "n", "yes", "no", "true", "false", "on", "off", "null"})
# PyYAML writes a key longer than 128 characters as a complex ``? key``; long values could
# meet its line-width folding; neither happens in manifests, so both are deferred.
_MAX_KEY = 120
_MAX_VALUE = 4096

_cache: dict[str, str | None] = {}


class _NotSimple(Exception):
    """Raised inside the writer when a value needs PyYAML."""


def scalar(text: str) -> str | None:
    """How PyYAML writes the string ``text`` as a block-context scalar, or None if unsure.

    Args:
        text: the string.

    Returns:
        ``text`` itself (plain), ``'text'`` (it would read back as an int, so quoted), or
        None when the answer needs PyYAML's full analysis.
    """
    if not _PLAIN.fullmatch(text):
        return None
    first = text[0]
    if first.isdigit():
        if _DECIMAL.fullmatch(text):
            return f"'{text}'"
        return text if _DIGITS_THEN_WORD.fullmatch(text) else None
    if first == "_" or first == "/" or first.isalpha():
        return None if text.lower() in _KEYWORDS else text
    if first == "-" and text[1:2].isalpha():  # a command-line option (`-c`): no number or indicator
        return text
    return None  # ".", "+", "=", "@", other "-" first: indicators, signed numbers, .inf/.nan


def _str(text: str, limit: int) -> str:
    if len(text) > limit:
        raise _NotSimple
    try:
        out = _cache[text]
    except KeyError:
        if len(_cache) > 100_000:  # a long-running process emitting unbounded distinct strings
            _cache.clear()
        out = _cache[text] = scalar(text)
    if out is None:
        raise _NotSimple
    return out


def _value(value: Any) -> str:
    kind = type(value)
    if kind is str:
        return _str(value, _MAX_VALUE)
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    raise _NotSimple  # other types: PyYAML's path reports them


def _mapping(pairs: list[tuple[Any, Any]], indent: int, out: list[str], inline: bool) -> None:
    pad = " " * indent
    for key, value in pairs:
        if type(key) is not str:
            raise _NotSimple
        head = ("" if inline else pad) + _str(key, _MAX_KEY) + ":"
        inline = False
        kind = type(value)
        if kind is dict:
            if value:
                out.append(head + "\n")
                _mapping([(k, value[k]) for k in sorted(value)], indent + 2, out, False)
            else:
                out.append(head + " {}\n")
        elif kind is list or kind is tuple:
            if value:
                out.append(head + "\n")
                _sequence(value, indent, out, False)  # PyYAML does not indent these
            else:
                out.append(head + " []\n")
        else:
            out.append(head + " " + _value(value) + "\n")


def _sequence(items: list[Any] | tuple[Any, ...], indent: int, out: list[str], inline: bool) -> None:
    pad = " " * indent
    for item in items:
        dash = ("" if inline else pad) + "- "
        inline = False
        kind = type(item)
        if kind is dict:
            if item:
                out.append(dash)
                _mapping([(k, item[k]) for k in sorted(item)], indent + 2, out, True)
            else:
                out.append(dash + "{}\n")
        elif kind is list or kind is tuple:
            if item:
                out.append(dash)
                _sequence(item, indent + 2, out, True)
            else:
                out.append(dash + "[]\n")
        else:
            out.append(dash + _value(item) + "\n")


def block_yaml(pairs: list[tuple[str, Any]]) -> str | None:
    """One YAML document for a top-level mapping given as ordered pairs (nested keys sorted).

    Args:
        pairs: the top-level keys and values, in output order.

    Returns:
        The document (no ``---``), exactly as PyYAML's block style writes it, or None when
        some value needs PyYAML.
    """
    if not pairs:
        return "{}\n"
    out: list[str] = []
    try:
        _mapping(pairs, 0, out, False)
    except _NotSimple:
        return None
    return "".join(out)
