"""PEP 508 requirements (``name[extras] specifiers ; marker`` and ``name @ URL``) as pip reads them.

pip parses requirements with ``packaging``; this is that grammar (PEP 508 with PEP 440
version specifiers), written out so that evaluation neither imports ``packaging`` (~20 ms) nor
depends on which version of it is installed. Two deliberate narrowings keep every accepted
requirement safe to hand to a shell as one quoted word and readable in a log: string literals
in markers and URLs use a conservative character set (no quotes, ``$``, backquotes,
backslashes, ``|``, ``&`` or ``;`` inside them). tests/ir/test_rules_pip.py checks that what
this accepts, ``packaging`` accepts too.
"""

from __future__ import annotations

import functools
import re

NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
_WS = r"[ \t]*"
_RELEASE = r"[0-9]+(?:\.[0-9]+)*"
_PRE = r"(?:[-_.]?(?:a|b|c|rc|alpha|beta|pre|preview)[-_.]?[0-9]*)?"
_POST = r"(?:-[0-9]+|[-_.]?(?:post|rev|r)[-_.]?[0-9]*)?"
_DEV = r"(?:[-_.]?dev[-_.]?[0-9]*)?"
_LOCAL = r"(?:\+[a-z0-9]+(?:[-_.][a-z0-9]+)*)?"
_PUBLIC = rf"v?(?:[0-9]+!)?{_RELEASE}{_PRE}{_POST}{_DEV}"
# PEP 440's specifier forms: which operators take which versions.
_SPECIFIER = (
    rf"(?:(?:==|!=){_WS}(?:v?(?:[0-9]+!)?{_RELEASE}\.\*|{_PUBLIC}{_LOCAL})"  # prefix match or exact
    rf"|~={_WS}v?(?:[0-9]+!)?[0-9]+(?:\.[0-9]+)+{_PRE}{_POST}{_DEV}"  # compatible: two release parts
    rf"|(?:<=|>=|<|>){_WS}{_PUBLIC}{_LOCAL}"
    rf"|==={_WS}[A-Za-z0-9._+!*-]+)"  # arbitrary equality
)
_SPECIFIERS = rf"{_SPECIFIER}(?:{_WS},{_WS}{_SPECIFIER})*"
_EXTRAS = rf"\[{_WS}(?:{NAME}(?:{_WS},{_WS}{NAME})*)?{_WS}\]"
URL_CHARS = r"[A-Za-z0-9._~:/?#\[\]@!*+,=%-]+"  # RFC 3986 without quotes, $ & ( ) ; (shell, markers)
URL = rf"[a-z][a-z0-9+.-]*://{URL_CHARS}"


@functools.cache
def _head() -> re.Pattern[str]:
    # compiled on first use: a few ms that only a build file with pip packages pays
    return re.compile(
        rf"{_WS}(?P<name>{NAME}){_WS}(?:{_EXTRAS})?{_WS}"
        rf"(?:(?P<url>@{_WS}{URL})|\({_WS}{_SPECIFIERS}{_WS}\)|{_SPECIFIERS})?{_WS}",
        re.IGNORECASE,
    )


MARKER_VARIABLES = frozenset({
    "python_version", "python_full_version", "os_name", "sys_platform", "platform_release",
    "platform_system", "platform_version", "platform_machine", "platform_python_implementation",
    "implementation_name", "implementation_version", "extra",
})
_TOKEN = r"[ \t]+|'[^']*'|\"[^\"]*\"|===|~=|==|!=|<=|>=|<|>|\(|\)|[A-Za-z_][A-Za-z0-9_.]*|."
_STRING_BODY = r"[A-Za-z0-9 ._*+!~<>=,:/()-]*"
_OPERATORS = frozenset({"===", "~=", "==", "!=", "<=", ">=", "<", ">", "in", "not in"})


def requirement_problem(text: str) -> str | None:
    """Why ``text`` is not a requirement pip reads, or None when it is one.

    Args:
        text: one requirement, e.g. ``pandas[excel]>=2,<3; python_version < "3.13"``.

    Returns:
        None for a valid requirement; otherwise a short reason.
    """
    head, semicolon, marker = text.partition(";")
    match = _head().fullmatch(head)
    if not match:
        return "not a PEP 508 requirement (name[extras] followed by version specifiers, or name @ URL)"
    if semicolon:
        if match["url"] and not head.endswith((" ", "\t")):
            return "a marker after a URL needs a space before ';'"
        return _marker_problem(marker)
    return None


def _marker_problem(text: str) -> str | None:
    tokens: list[str] = []
    for token in re.findall(_TOKEN, text):
        if token.strip(" \t"):
            tokens.append(token)
    if not tokens:
        return "an empty environment marker after ';'"
    for token in tokens:
        if token[0] in "'\"" and (len(token) < 2 or not re.fullmatch(_STRING_BODY, token[1:-1])):
            return f"the marker string {token} holds characters markers never need"
    # join "not" "in" into one operator
    joined: list[str] = []
    for token in tokens:
        if token == "in" and joined and joined[-1] == "not":
            joined[-1] = "not in"
        else:
            joined.append(token)
    parser = _MarkerParser(joined)
    return parser.parse()


class _MarkerParser:
    """Recursive descent over marker tokens: or → and → comparison | ( or )."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.pos = 0

    def parse(self) -> str | None:
        problem = self._or()
        if problem is None and self.pos != len(self.tokens):
            problem = f"unexpected {self.tokens[self.pos]!r} in the environment marker"
        return problem

    def _peek(self) -> str:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else ""

    def _or(self) -> str | None:
        problem = self._and()
        while problem is None and self._peek() == "or":
            self.pos += 1
            problem = self._and()
        return problem

    def _and(self) -> str | None:
        problem = self._expr()
        while problem is None and self._peek() == "and":
            self.pos += 1
            problem = self._expr()
        return problem

    def _expr(self) -> str | None:
        if self._peek() == "(":
            self.pos += 1
            problem = self._or()
            if problem is None and self._peek() != ")":
                problem = "a '(' in the environment marker is not closed"
            self.pos += 1
            return problem
        for expect in ("value", "operator", "value"):
            token = self._peek()
            self.pos += 1
            if expect == "operator" and token not in _OPERATORS:
                return f"expected a comparison operator in the environment marker, got {token or 'its end'!r}"
            if expect == "value" and not (token[:1] in "'\"" and token or token in MARKER_VARIABLES):
                return (f"{token or 'its end'!r} is not a marker variable (python_version, sys_platform, ...) "
                        "or a quoted string")
        return None
