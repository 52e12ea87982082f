"""Typed argument unpackers: each turns one Starlark value into a checked Python value.

An unpacker is a callable ``(value) -> T`` that raises :class:`Invalid` with a message in
the "expected X, got Y" shape. :class:`Call` runs every unpacker of one builtin call,
collects all problems and raises a single ``BuildFileError`` naming the builtin and each
argument, so a user fixes a whole call in one round trip.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any, TypeVar

from dsl.errors import BuildFileError
from dsl.ir import Span

T = TypeVar("T")
Unpacker = Callable[[Any], T]

# Size caps: a value past them is a mistake (or an attack on the build host), and checking
# the length first keeps the regular expressions below from scanning megabytes.
MAX_TEXT = 1 << 20  # commands, scripts, text settings
MAX_PATH = 4096  # container and host paths (PATH_MAX)
MAX_URL = 8192
MAX_NAME = 256  # package names, ids, versions, image references' parts
MAX_REQUIREMENT = 4096  # a pip item may carry flags and an index URL


class Invalid(Exception):
    """A value does not fit its parameter; ``hint`` says how to fix it."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def type_name(value: Any) -> str:
    """The Starlark name of a converted value's type, for "got X" messages."""
    if value is None:
        return "NoneType"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, dict):
        return "dict"
    return type(value).__name__


class Call:
    """One builtin call being validated: collects problems, raises once.

    Args:
        builtin: the public name, e.g. ``install.python_packages``.
        span: where the user called it.
    """

    def __init__(self, builtin: str, span: Span | None) -> None:
        self.builtin = builtin
        self.span = span
        self.problems: list[str] = []
        self.hints: list[str] = []

    def arg(self, name: str, value: Any, unpack: Unpacker[T]) -> T:
        """Unpack argument ``name``; on failure record the problem and return ``None``."""
        try:
            return unpack(value)
        except Invalid as exc:
            self.problems.append(f"argument '{name}': {exc.message}")
            if exc.hint and exc.hint not in self.hints:
                self.hints.append(exc.hint)
            return None  # type: ignore[return-value]

    def fail(self, problem: str, hint: str | None = None) -> None:
        """Record a problem that concerns the call as a whole."""
        self.problems.append(problem)
        if hint and hint not in self.hints:
            self.hints.append(hint)

    def check(self) -> None:
        """Raise one ``BuildFileError`` listing every recorded problem, if any."""
        if self.problems:
            raise self.error("; ".join(self.problems), hint=" ".join(self.hints) or None)

    def error(self, message: str, hint: str | None = None) -> BuildFileError:
        """A ``BuildFileError`` for this call, prefixed with the builtin's name."""
        return BuildFileError(f"{self.builtin}: {message}", span=self.span, hint=hint)


# ---- scalar unpackers ------------------------------------------------------------------------


def shown(text: str, limit: int = 80) -> str:
    """``repr(text)`` for a message, shortened in the middle when long."""
    if len(text) <= limit:
        return repr(text)
    return repr(text[: limit // 2]) + f" ... ({len(text):,} characters) ... " + repr(text[-limit // 4:])


def Str(value: Any, limit: int = MAX_TEXT) -> str:  # noqa: N802 - unpackers read like types
    """A string of at most ``limit`` characters."""
    if not isinstance(value, str):
        raise Invalid(f"expected a string, got {type_name(value)}")
    if len(value) > limit:
        raise Invalid(
            f"a string of {len(value):,} characters is too long (the limit is {limit:,})",
            "pass a shorter value; large content belongs in a file copied into the build",
        )
    return value


def bounded(limit: int) -> Unpacker[str]:
    """A string of at most ``limit`` characters."""
    return lambda value: Str(value, limit)


def OptStr(value: Any) -> str:  # noqa: N802
    """A string, with ``None`` meaning the empty string (envd files pass None for "unset")."""
    return "" if value is None else Str(value)


def NonEmptyStr(value: Any) -> str:  # noqa: N802
    """A non-empty string."""
    text = Str(value)
    if not text.strip():
        raise Invalid("must not be empty")
    return text


def Bool(value: Any) -> bool:  # noqa: N802
    """A bool (``True``/``False``; not 0/1, which usually hides a mistake)."""
    if not isinstance(value, bool):
        raise Invalid(f"expected a bool (True or False), got {type_name(value)}")
    return value


def Int(value: Any) -> int:  # noqa: N802
    """An int (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(f"expected an int, got {type_name(value)}")
    return value


def int_range(low: int, high: int, what: str = "") -> Unpacker[int]:
    """An int in ``low..high`` inclusive."""

    def unpack(value: Any) -> int:
        number = Int(value)
        if not low <= number <= high:
            label = f"a {what} " if what else ""
            raise Invalid(f"expected {label}in {low}..{high}, got {number}")
        return number

    return unpack


PortNumber = int_range(1, 65535, "port number")
HostPort = int_range(0, 65535, "host port (0 = any free port)")
OwnerId = int_range(0, 65535, "uid/gid")
NonNegative = int_range(0, 1 << 31, "")


def choice(*options: str) -> Unpacker[str]:
    """One of a fixed set of strings."""

    def unpack(value: Any) -> str:
        text = Str(value, MAX_NAME)
        if text not in options:
            raise Invalid(f"expected one of {', '.join(options)}, got {shown(text)}")
        return text

    return unpack


def matching(pattern: str, what: str, hint: str | None = None, limit: int = MAX_NAME) -> Unpacker[str]:
    """A string of at most ``limit`` characters that fully matches ``pattern``.

    ``what`` names the expected shape in messages.
    """
    regex = re.compile(pattern)

    def unpack(value: Any) -> str:
        text = Str(value, limit)
        if not regex.fullmatch(text):
            raise Invalid(f"expected {what}, got {shown(text)}", hint)
        return text

    return unpack


def IPAddress(value: Any) -> str:  # noqa: N802
    """An IPv4 or IPv6 address (``runtime.expose(listen_addr=...)``)."""
    text = Str(value, MAX_NAME)
    try:
        ipaddress.ip_address(text)
    except ValueError as exc:
        raise Invalid(f"expected an IP address, got {shown(text)}", "e.g. '127.0.0.1' or '0.0.0.0'") from exc
    return text


def AbsPath(value: Any) -> str:  # noqa: N802
    """An absolute path inside the container; ``~`` and ``~/...`` mean ``/home/envd``."""
    text = Str(value, MAX_PATH)
    if text == "~" or text.startswith("~/"):
        text = "/home/envd" + text[1:]
    if not text.startswith("/"):
        raise Invalid(f"expected an absolute path, got {shown(text)}", "container paths start with '/' (or '~/' for /home/envd)")
    if "\x00" in text or "\n" in text:
        raise Invalid("path contains a NUL or newline character")
    return text


EnvName = matching(r"[A-Za-z_][A-Za-z0-9_]*", "an environment variable name ([A-Za-z_][A-Za-z0-9_]*)")
Checksum = matching(
    r"sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128}",
    "a digest 'sha256:<64 hex digits>'",
    "compute it with: sha256sum FILE",
)
Quantity = matching(
    r"[0-9]+(\.[0-9]+)?([eE][0-9]+|Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?",
    "a Kubernetes quantity like '10Gi', '500Mi' or '2'",
    "see https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/quantity/",
)
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
ImageRef = matching(
    rf"(?:[A-Za-z0-9.-]+(?::[0-9]+)?/)?{_COMPONENT}(?:/{_COMPONENT})*(?::[\w][\w.-]{{0,127}})?(?:@sha256:[0-9a-f]{{64}})?",
    "an image reference like 'ubuntu:22.04' or 'registry:5000/team/img@sha256:...'",
    "repository names are lower-case; a tag follows ':' and a digest follows '@'",
    limit=512,  # registry/name (255) + tag (128) + digest (71)
)
HttpUrl = matching(r"https?://[^\s'\"`$;|&<>\\]+", "an http(s) URL", limit=MAX_URL)


def PythonVersion(value: Any) -> str:  # noqa: N802
    """envd's rule: ``""``/``"3"`` mean the default; otherwise ``3.X`` or ``3.X.Y``."""
    text = "" if value is None else Str(value, MAX_NAME)
    if text in ("", "3"):
        return "3.11"
    if not re.fullmatch(r"3\.[0-9]+(\.[0-9]+)?", text):
        raise Invalid(f"envd doesn't support this Python version: {shown(text)}", "use a Python 3 version such as '3.11'")
    return text


# ---- containers ------------------------------------------------------------------------------


def list_of(item: Unpacker[T], what: str = "strings") -> Unpacker[tuple[T, ...]]:
    """A list whose items all pass ``item``; ``None`` means an empty list."""

    def unpack(value: Any) -> tuple[T, ...]:
        if value is None:
            return ()
        if not isinstance(value, list | tuple):
            raise Invalid(f"expected a list of {what}, got {type_name(value)}")
        out = []
        for index, element in enumerate(value):
            try:
                out.append(item(element))
            except Invalid as exc:
                raise Invalid(f"item {index}: {exc.message}", exc.hint) from exc
        return tuple(out)

    return unpack


StrList = list_of(Str)


def dict_of(key: Unpacker[str], value: Unpacker[str]) -> Unpacker[tuple[tuple[str, str], ...]]:
    """A dict of strings; returns pairs sorted by key. ``None`` means empty."""

    def unpack(raw: Any) -> tuple[tuple[str, str], ...]:
        if raw is None:
            return ()
        if not isinstance(raw, dict):
            raise Invalid(f"expected a dict of strings, got {type_name(raw)}")
        pairs = []
        for k, v in raw.items():
            try:
                pairs.append((key(k), value(v)))
            except Invalid as exc:
                key_text = shown(k) if isinstance(k, str) else repr(k)
                raise Invalid(f"key {key_text}: {exc.message}", exc.hint) from exc
        return tuple(sorted(pairs))

    return unpack


StrDict = dict_of(Str, Str)


# ---- package names ---------------------------------------------------------------------------

_APT = re.compile(r"[a-z0-9][a-z0-9+.-]+(:[a-z0-9-]+)?(=[A-Za-z0-9.+~:-]+)?")


def AptPackage(value: Any) -> str:  # noqa: N802
    """A Debian package name (policy characters), optionally ``:arch`` and ``=version``."""
    text = Str(value, MAX_NAME)
    if not _APT.fullmatch(text):
        raise Invalid(
            f"expected a Debian package name, got {shown(text)}",
            "package names use a-z, 0-9, '+', '-', '.', optionally followed by '=VERSION'",
        )
    return text


_UNSAFE = re.compile(r"[;&|$`'\"\\(){}\n\r\t\x00]")
_REQ = re.compile(
    r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?"  # name
    r"(\[[A-Za-z0-9._-]+(,[A-Za-z0-9._-]+)*\])?"  # extras
    r"((===|==|>=|<=|!=|~=|<|>)[A-Za-z0-9.*+!_-]+(,(===|==|>=|<=|!=|~=|<|>)[A-Za-z0-9.*+!_-]+)*)?"
)
_FLAG = re.compile(r"--?[A-Za-z0-9][A-Za-z0-9-]*(=\S+)?")
_URL = re.compile(r"([a-z]+\+)?(https?|file|ssh|git)://\S+")
_PATH = re.compile(r"\.{0,2}/\S*|[A-Za-z0-9._-]+\.(whl|tar\.gz|zip)")


def Requirement(value: Any) -> str:  # noqa: N802
    """One ``install.python_packages`` item: a requirement, optionally with pip flags.

    envd joins items with spaces into one pip command, so files carry flags in items
    (``"torch --index-url https://..."``). Each whitespace-separated word must be a
    requirement (``name[extra]>=1.0``), a flag, a URL, a path, or ``@`` (``name @ URL``);
    shell metacharacters are rejected so nothing is ever pasted raw into a shell line.
    """
    text = Str(value, MAX_REQUIREMENT)
    words = text.split()
    if not words:
        raise Invalid("expected a package requirement, got an empty string")
    bad = _UNSAFE.search(text)
    if bad:
        raise Invalid(
            f"{shown(text)} contains the shell metacharacter {bad.group()!r}",
            "one requirement per list item, e.g. 'numpy>=1.26'; environment markers are not supported",
        )
    for word in words:
        if not (_REQ.fullmatch(word) or _FLAG.fullmatch(word) or _URL.fullmatch(word) or _PATH.fullmatch(word) or word == "@"):
            raise Invalid(f"expected a pip requirement like 'numpy>=1.26', got {shown(word)} in {shown(text)}")
    return text


def CondaPackage(value: Any) -> str:  # noqa: N802
    """A conda match spec such as ``numpy``, ``numpy=1.26``, ``conda-forge::numpy>=1``."""
    text = Str(value, MAX_NAME)
    if not re.fullmatch(r"([A-Za-z0-9_.-]+::)?[A-Za-z0-9_.-]+([=<>!~]=?[A-Za-z0-9.*+_,|=<>!-]*)?(\[[^\]\s;&|$`]*\])?", text):
        raise Invalid(f"expected a conda package spec like 'numpy=1.26', got {shown(text)}")
    return text


PackageName = matching(r"[A-Za-z0-9][A-Za-z0-9._@/+-]*", "a package name")
VscodeExtension = matching(
    r"[A-Za-z0-9][A-Za-z0-9-]*\.[A-Za-z0-9][A-Za-z0-9._-]*",
    "a VS Code extension id 'publisher.extension[-version]'",
)
