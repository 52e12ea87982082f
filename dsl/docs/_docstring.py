"""Google-style docstrings, as the stdlib's ``.star`` files write them.

A docstring is a summary line, optional free text, then sections (``Args:``, ``Returns:``,
``Raises:``, ``Example:``, ...) whose bodies are indented. ``Args:`` entries read
``name (type): text`` or ``name: text`` with continuation lines indented further.
"""

from __future__ import annotations

import functools
import inspect
import re
from dataclasses import dataclass
from typing import Protocol

_SECTION = re.compile(r"^(?P<name>[A-Z][A-Za-z ]*):\s*$")
_ARG = re.compile(r"^(?P<name>\*{0,2}\w+)\s*(?:\((?P<type>[^)]*)\))?\s*:\s*(?P<text>.*)$")
_RETURNS = re.compile(r"^(?P<type>[\w\[\], .|]+):\s+(?P<text>.*)$")


@dataclass(frozen=True, slots=True)
class ArgDoc:
    """One documented argument."""

    name: str
    type: str | None
    text: str


@dataclass(frozen=True, slots=True)
class Docstring:
    """A parsed docstring: summary, free description, ``Args:`` entries and other sections."""

    summary: str = ""
    description: str = ""
    args: tuple[ArgDoc, ...] = ()
    returns_type: str | None = None
    returns: str = ""
    sections: tuple[tuple[str, str], ...] = ()  # other sections, in order: (title, body)

    def arg(self, name: str) -> ArgDoc | None:
        """The entry documenting argument ``name``, if any."""
        return next((a for a in self.args if a.name.lstrip("*") == name), None)


class _Documented(Protocol):
    doc: str


def docstring_of(entry: _Documented) -> Docstring:
    """The parsed docstring of a catalog entry (``dsl.lang.Builtin``)."""
    return parse_docstring(entry.doc)


@functools.lru_cache(maxsize=256)
def parse_docstring(text: str | None) -> Docstring:
    """Parse a Google-style docstring.

    Args:
        text: The raw docstring (indentation is normalised here); ``None`` gives an empty one.

    Returns:
        The parsed docstring; text that is not in a known shape is kept, never dropped.
    """
    if not text:
        return Docstring()
    lines = inspect.cleandoc(text).splitlines()
    summary = lines[0].strip()
    intro: list[str] = []
    sections: list[tuple[str, list[str]]] = []
    for line in lines[1:]:
        head = _SECTION.match(line)
        if head and not line.startswith(" "):
            sections.append((head["name"], []))
        elif sections:
            sections[-1][1].append(line)
        else:
            intro.append(line)
    args: tuple[ArgDoc, ...] = ()
    returns_type, returns = None, ""
    other: list[tuple[str, str]] = []
    for title, body_lines in sections:
        body = _dedent(body_lines)
        if title in ("Args", "Arguments", "Parameters"):
            args = _parse_args(body)
        elif title in ("Returns", "Return"):
            returns_type, returns = _parse_returns(body)
        else:
            other.append((title, body))
    return Docstring(
        summary=summary,
        description="\n".join(intro).strip(),
        args=args,
        returns_type=returns_type,
        returns=returns,
        sections=tuple(other),
    )


def _dedent(lines: list[str]) -> str:
    return inspect.cleandoc("\n".join(lines)) if any(s.strip() for s in lines) else ""


def _parse_args(body: str) -> tuple[ArgDoc, ...]:
    entries: list[list[str]] = []
    for line in body.splitlines():
        if line and not line[0].isspace() and _ARG.match(line):
            entries.append([line])
        elif entries:
            entries[-1].append(line)
    out = []
    for entry in entries:
        match = _ARG.match(entry[0])
        assert match  # entries only start on matching lines
        text = " ".join([match["text"].strip(), *(s.strip() for s in entry[1:])]).strip()
        out.append(ArgDoc(match["name"], (match["type"] or "").strip() or None, text))
    return tuple(out)


def _parse_returns(body: str) -> tuple[str | None, str]:
    flat = " ".join(s.strip() for s in body.splitlines()).strip()
    match = _RETURNS.match(flat)
    if match:
        return match["type"].strip(), match["text"].strip()
    return None, flat
