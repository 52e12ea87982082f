"""Source locations: the user's call site from a Starlark call stack, and error translation.

starlark-pyo3 gives locations only as text: ``call_stack()`` lists one ``* FILE:LINE, in
FUNC`` frame per call and a ``StarlarkError`` ends with `` --> FILE:LINE:COL``. Files whose
name starts with ``@`` are ours (the stdlib and the prelude); a location inside them is mapped
back to the innermost user frame, so every message points at the user's build file.
"""

from __future__ import annotations

import re

from dsl.errors import BuildFileError
from dsl.ir import Span

_FRAME = re.compile(r"^  \* (?P<file>.+?):(?P<line>\d+), in (?P<func>.+)$", re.M)
_ARROW = re.compile(r"^ *--> (?P<file>.+?):(?P<line>\d+):(?P<col>\d+)", re.M)
_ERROR = re.compile(r"^error: (?P<msg>.*?)(?=\n *--> |\n\s*\Z|\Z)", re.M | re.S)
INTERNAL_PREFIX = "@"


def is_internal(file: str) -> bool:
    """True for our own Starlark files (stdlib, prelude, include aggregators)."""
    return file.startswith(INTERNAL_PREFIX)


def _frames(text: str) -> list[tuple[str, int, str]]:
    return [(m["file"], int(m["line"]), m["func"]) for m in _FRAME.finditer(text)]


def column_of(lines: list[str] | None, line: int, callee: str) -> int:
    """1-based column of ``callee``'s call on ``line`` (the first non-blank if not found)."""
    if not lines or not 1 <= line <= len(lines):
        return 1
    text = lines[line - 1]
    short = callee.rsplit(".", 1)[-1]
    for needle in (callee + "(", callee, "." + short + "(", short + "("):
        index = text.find(needle)
        if index < 0:
            continue
        if needle.startswith("."):  # an alias: back up over the receiver's name
            while index > 0 and (text[index - 1].isalnum() or text[index - 1] in "_."):
                index -= 1
        return index + 1
    return len(text) - len(text.lstrip()) + 1


def call_site(stack: str, callee: str, sources: dict[str, list[str]]) -> Span | None:
    """The innermost user frame of ``stack`` as a span pointing at ``callee``'s call."""
    for file, line, _func in reversed(_frames(stack)):
        if not is_internal(file):
            return Span(file, line, column_of(sources.get(file), line, callee))
    return None


def _internal_callee(text: str, public_names: dict[tuple[str, str], str]) -> str:
    """The public builtin name of the innermost stdlib frame (for the column search)."""
    for file, _line, func in reversed(_frames(text)):
        if is_internal(file):
            name = public_names.get((file, func))
            if name:
                return name
    return ""


# Words of the language itself: naming them echoes nothing of the file.
_KEYWORDS = frozenset(
    "and as assert async await break class continue def del elif else except finally for from global if "
    "import in is lambda load nonlocal not or pass raise return try while with yield".split()
)
_QUOTED = re.compile(r"""'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"|`[^`\n]*`""")


def redact_parse_error(message: str) -> str:
    """A parse error without the source text it quotes: only the location may point at it.

    The parser quotes the offending token (``unexpected identifier 'hunter2' here``, ``invalid
    input `$```); a file that is not Starlark at all (a key, a ``.env``) would have a piece of
    it printed. Keywords and the grammar's list of expected tokens are kept: they are the
    language's words, not the file's.
    """
    if not message.startswith("Parse error:"):
        return message
    head, sep, expected = message.partition(", expected one of ")

    def keep_keyword(m: re.Match[str]) -> str:
        return m.group() if m.group()[1:-1] in _KEYWORDS else ""

    head = re.sub(r" {2,}", " ", _QUOTED.sub(keep_keyword, head)).strip()
    return head + sep + expected


def _clean(message: str, public_names: dict[tuple[str, str], str]) -> str:
    message = message.strip()
    message = re.sub(r"^(ValueError|TypeError|PrimitiveFailed|StarlarkError): ", "", message)
    # "for call to `@stdlib/install.star.cuda`" -> "for call to `install.cuda`"
    def public(m: re.Match[str]) -> str:
        file, _, func = m.group(1).rpartition(".")
        name = public_names.get((file, func))
        if name:
            return f"`{name}`"
        return f"`{func}`" if file else m.group(0)

    message = re.sub(r"`?(@[^`\s]+\.star\.[A-Za-z_]\w*)`?", public, message)
    message = re.sub(r"`([^`@\s]+\.(?:envd|star)\.([A-Za-z_]\w*))`", r"`\2`", message)
    return message


_HINTS = (
    ("cannot use reserved keyword `while`", "envd's dialect has no 'while'; use 'for x in range(n)' inside a function, or recursion"),
    ("Variable `set` not found", "envd's dialect has no set(); use a dict's keys or a list"),
    ("outside `def`", "top-level 'if'/'for' are not allowed in envd's dialect; put the logic inside a function"),
    ("f-strings", "use '%s' % value or str.format() instead of f-strings"),
    ("Starlark call stack overflow", "a function calls itself without end; check the recursion's base case"),
    ("Evaluation cancelled", "evaluation ran past its time limit; look for a runaway loop or comprehension"),
    ("not found", "envd's builtins are base, shell, run, git_config, include, install.*, config.*, io.*, runtime.*, data.*"),
    ("has no builtin", "see `dsl reference` for every builtin"),
    ("Missing parameter", "see `dsl reference` for each builtin's parameters"),
    ("extra named parameter", "see `dsl reference` for each builtin's parameters"),
    ("extra positional", "see `dsl reference` for each builtin's parameters"),
    ("repeated named argument", "pass each argument once"),
    ("Parse error", "check brackets, quotes and indentation around this position"),
)


def hint_for(message: str) -> str | None:
    """A one-line remedy for well-known Starlark error messages."""
    for needle, hint in _HINTS:
        if needle in message:
            return hint
    return None


def translate(text: str, sources: dict[str, list[str]], public_names: dict[tuple[str, str], str], fallback: Span | None) -> BuildFileError:
    """Turn a ``StarlarkError``'s text into one ``BuildFileError`` at the user's location.

    Args:
        text: the error text (traceback, ``error:`` line, `` --> `` location).
        sources: display name -> source lines of the user files evaluated so far.
        public_names: ``(stdlib file, function)`` -> public builtin name.
        fallback: the span to use when the text has no user location at all.
    """
    found = _ERROR.search(text)
    message = _clean(found["msg"] if found else text.strip().splitlines()[-1] if text.strip() else "evaluation failed", public_names)
    message = redact_parse_error(message)
    span = None
    arrows = list(_ARROW.finditer(text))
    if arrows and not is_internal(arrows[-1]["file"]):
        last = arrows[-1]
        span = Span(last["file"], int(last["line"]), int(last["col"]))
        lines = sources.get(span.file)
        if "unexpected end of file" in message and lines:  # starlark reports 1:1; point at the end
            span = Span(span.file, len(lines), len(lines[-1]) + 1)
    else:
        span = call_site(text, _internal_callee(text, public_names), sources) or fallback
    message = _explain(message, span, sources, _internal_callee(text, public_names))
    message = _suggest_builtin(message, public_names)
    return BuildFileError(message, span=span, hint=hint_for(message))


def _suggest_builtin(message: str, public_names: dict[tuple[str, str], str]) -> str:
    """``Variable `instal` not found`` -> ``..., did you mean `install`?``.

    A build file predeclares only the builtins it names (see the evaluator's prelude), so the
    interpreter cannot suggest the others; suggest among all of them here.
    """
    m = re.fullmatch(r"Variable `(\w+)` not found(?:, did you mean `(\w+)`\?)?", message)
    if not m:
        return message
    import difflib  # only on this error path

    # the interpreter's own suggestion (a local or a Starlark builtin) competes with ours
    names = {name.split(".")[0] for name in public_names.values()} | ({m.group(2)} if m.group(2) else set())
    close = difflib.get_close_matches(m.group(1), sorted(names), n=1)
    return f"Variable `{m.group(1)}` not found, did you mean `{close[0]}`?" if close else message


def _explain(message: str, span: Span | None, sources: dict[str, list[str]], callee: str) -> str:
    """Reword interpreter messages that name implementation details (struct, serde)."""
    m = re.match(r"Object of type `struct` has no attribute `(\w+)`(.*)", message)
    if m and span:
        lines = sources.get(span.file) or []
        line = lines[span.line - 1] if 0 < span.line <= len(lines) else ""
        receiver = re.match(r"[\w.]+", line[span.col - 1:])
        owner = receiver.group(0).rsplit("." + m.group(1), 1)[0] if receiver else "module"
        return f"{owner} has no builtin '{m.group(1)}'{m.group(2).replace('`', chr(39))}"
    if message == "repeated named argument" and span:
        return _repeated_argument(span, sources.get(span.file) or [])
    m = re.search(r"serde::serialize` not supported on type `(\w+)`", message)
    if m:
        prefix = f"{callee}: " if callee else ""
        return f"{prefix}an argument is a {m.group(1)}; builtins take strings, numbers, bools, lists and dicts"
    return message


_CALL_PREFIX = re.compile(
    r"""(?P<str>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')|\#[^\n]*"""
    r"|(?P<callee>[A-Za-z_][\w.]*)\s*\(|(?P<open>[(\[{])|(?P<close>[)\]}])"
)


def _repeated_argument(span: Span, lines: list[str]) -> str:
    """``f(a=1, a=2)``: name the function being called and the repeated argument."""
    if not 0 < span.line <= len(lines):
        return "repeated named argument"
    argument = re.match(r"\w*", lines[span.line - 1][span.col - 1:])
    prefix = "\n".join([*lines[: span.line - 1], lines[span.line - 1][: span.col - 1]])
    stack: list[str] = []
    for m in _CALL_PREFIX.finditer(prefix):
        if m["callee"] is not None:
            stack.append(m["callee"])
        elif m["open"] is not None:
            stack.append("")
        elif m["close"] is not None and stack:
            stack.pop()
    callee = stack[-1] if stack else ""  # the innermost open bracket is the call's
    name = f" '{argument.group()}'" if argument and argument.group() else ""
    return f"{callee + ': ' if callee else ''}repeated named argument{name}"
