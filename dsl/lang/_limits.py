"""Static limits checked before a build file reaches the Starlark parser.

starlark-rust parses and compiles recursively on the native stack: about 2,400 nested list
brackets, 3,300 chained operators or 1,000 nested lambdas overflow an 8 MiB stack and the
process dies with SIGSEGV. No Python code can catch that, so a cheap scan over the tokens
(strings and comments skipped) bounds the nesting first, and bounds the file size so the scan
and the parser stay fast. The same scan refuses the one runaway it can see statically: a
string or list literal repeated by a huge integer literal (``"a" * 2000000000`` allocates
gigabytes inside a single interpreter instruction, where the time limit cannot interrupt it;
a count computed at run time still can, and is then bounded only by the interpreter's own
32-bit size checks).
"""

from __future__ import annotations

import re

from dsl.errors import BuildFileError
from dsl.ir import Span

MAX_FILE_BYTES = 1 << 20
# Each level costs the native parser up to ~8 KiB of stack (nested lambdas, the worst
# case measured): 200 levels stay far below the 8 MiB main-thread stack, and no real build
# file comes close (CPython's own parser stops at 200 nested parentheses).
MAX_NESTING = 200
MAX_LITERAL_REPEAT = 1 << 24

_TOKEN = re.compile(
    r"""
    (?P<nl>\n)
  | (?P<skip>[ \t\f\r]+|\#[^\n]*|\\\r?\n)
  | (?P<str>[rRbB]{0,2}(?:'''(?:[^\\]|\\.)*?(?:'''|\Z)|\"\"\"(?:[^\\]|\\.)*?(?:\"\"\"|\Z)
                        |'(?:[^'\\\n]|\\.)*'?|"(?:[^"\\\n]|\\.)*"?))
  | (?P<num>[0-9][0-9A-Za-z_.]*)
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<open>[(\[{])
  | (?P<close>[)\]}])
  | (?P<comma>,)
  | (?P<op>\*\*|//=?|<<=?|>>=?|[-+*/%&|^~<>=!]=?|\.)
  | (?P<other>.)
    """,
    re.X | re.S,
)
# Words that nest an expression one level deeper, like an operator does.
_OPERATOR_WORDS = frozenset({"and", "or", "not", "if", "else", "lambda", "in", "for", "is"})
_ASSIGN = frozenset({"=", "+=", "-=", "*=", "/=", "//=", "%=", "&=", "|=", "^=", "<<=", ">>="})


def check_size(size: int, display: str) -> None:
    """Refuse a build file of ``size`` bytes when that is more than :data:`MAX_FILE_BYTES`.

    Raises:
        BuildFileError: the file is too large (located at its first line).
    """
    if size > MAX_FILE_BYTES:
        raise BuildFileError(
            f"the file is {size:,} bytes; build files are limited to {MAX_FILE_BYTES:,} bytes (1 MiB)",
            span=Span(display, 1, 1),
            hint="build files describe an environment; keep data in files the build copies or downloads",
        )


def _int_value(text: str) -> int | None:
    try:
        return int(text, 0)
    except ValueError:
        return None


class _Scan:
    """The state of one pass over a file's tokens (see :func:`check_nesting`)."""

    def __init__(self, display: str) -> None:
        self.display = display
        self.line, self.line_start = 1, 0
        self.indents = [0]
        self.frames = [0]  # operators in the current comma-separated item, per bracket level
        self.brackets: list[bool] = []  # per open bracket: is it a list display?
        self.depth = 0  # estimated syntax-tree depth at the current token
        self.at_line_start = True
        self.prev: tuple[str, str, bool] = ("nl", "", False)  # kind, text, closed a list display
        self.star_left: tuple[str, str, bool] | None = None  # the token before a pending '*'
        self.star_pos = 0

    def span(self, pos: int) -> Span:
        return Span(self.display, self.line, pos - self.line_start + 1)

    def fail(self, pos: int, message: str, hint: str) -> BuildFileError:
        return BuildFileError(message, span=self.span(pos), hint=hint)

    def new_logical_line(self, indent: int) -> None:
        while self.indents[-1] > indent:
            self.indents.pop()
        if indent > self.indents[-1]:
            self.indents.append(indent)
        self.frames = [0]
        self.depth = len(self.indents) - 1

    def deeper(self, pos: int, what: str) -> None:
        if self.depth > MAX_NESTING:
            raise self.fail(
                pos,
                f"{what} nest more than {MAX_NESTING} levels deep",
                "split the expression into named parts, or the code into smaller functions",
            )

    def repetition(self, kind: str, text: str, pos: int) -> None:
        """Refuse ``<string or list literal> * <huge int literal>`` (and the mirror image)."""
        left, self.star_left = self.star_left, None
        if left is None:
            return
        left_kind, left_text, left_list = left
        count = None
        if (left_kind == "str" or left_list) and kind == "num":
            count = _int_value(text)
        elif left_kind == "num" and (kind == "str" or (kind == "open" and text == "[")):
            count = _int_value(left_text)
        if count is not None and count > MAX_LITERAL_REPEAT:
            raise self.fail(
                self.star_pos,
                f"repeating a string or list {count:,} times builds a value too large to evaluate "
                f"(the limit is {MAX_LITERAL_REPEAT:,})",
                "build files describe an environment; generate large data in a run() step instead",
            )


def check_nesting(source: str, display: str) -> None:
    """Refuse code nested deeper than :data:`MAX_NESTING` before the parser recurses into it.

    The depth counted is an upper bound of the syntax tree's: block indentation, plus one per
    open bracket, plus the operators (``+``, ``.``, ``not``, ``if``/``else``, ``lambda``, ...)
    of the current comma-separated item at each bracket level.

    Raises:
        BuildFileError: at the first token beyond the limit, or at a huge literal repetition.
    """
    scan = _Scan(display)
    for match in _TOKEN.finditer(source):
        kind, text, pos = match.lastgroup or "other", match.group(), match.start()
        if kind == "nl" or (kind == "skip" and text.startswith("\\")):
            if kind == "nl" and not scan.brackets:
                scan.at_line_start = True
            scan.line += 1
            scan.line_start = match.end()
            continue
        if kind == "skip":
            continue
        if scan.at_line_start:
            scan.at_line_start = False
            scan.new_logical_line(len(source[scan.line_start:pos].expandtabs(8)))
        if scan.star_left is not None:
            scan.repetition(kind, text, pos)
        closed_list = False
        if kind == "open":
            prev_kind = scan.prev[0]
            display_bracket = text == "[" and not (prev_kind in ("num", "str", "close")
                                                   or (prev_kind == "word" and scan.prev[1] not in _OPERATOR_WORDS))
            scan.brackets.append(display_bracket)
            scan.frames.append(0)
            scan.depth += 1
            scan.deeper(pos, "brackets")
        elif kind == "close" and scan.brackets:
            closed_list = scan.brackets.pop()
            scan.depth -= 1 + scan.frames.pop()
        elif kind == "comma":
            scan.depth -= scan.frames[-1]
            scan.frames[-1] = 0
        elif (kind == "op" and text not in _ASSIGN) or (kind == "word" and text in _OPERATOR_WORDS):
            scan.frames[-1] += 1
            scan.depth += 1
            scan.deeper(pos, "blocks, brackets and operators")
            if text == "*":
                scan.star_left, scan.star_pos = scan.prev, pos
        elif kind == "str":
            newlines = text.count("\n")
            if newlines:
                scan.line += newlines
                scan.line_start = pos + text.rfind("\n") + 1
        scan.prev = (kind, text, closed_list)
