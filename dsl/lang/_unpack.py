"""Typed argument unpackers: each turns one Starlark value into a checked Python value.

An unpacker is a callable ``(value) -> T`` that raises :class:`Invalid` with a message in
the "expected X, got Y" shape. Unpackers check types and sizes; what a value may be is one
of ``dsl.rules`` (see ``ruled``/``checked``), the functions the compilers call too.
:class:`Call` runs every unpacker of one builtin call, collects all problems and raises a
single ``BuildFileError`` naming the builtin and each argument, so a user fixes a whole call
in one round trip.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any, TypeVar

from dsl import rules
from dsl.errors import BuildFileError
from dsl.ir import DEFAULT_PYTHON, Span
from dsl.rules import Invalid, shown

T = TypeVar("T")
Unpacker = Callable[[Any], T]

# Size caps: a value past them is a mistake (or an attack on the build host), and checking
# the length first keeps the regular expressions below from scanning megabytes.
MAX_TEXT = 1 << 20  # commands, scripts, text settings
MAX_PATH = 4096  # container and host paths (PATH_MAX)
MAX_URL = 8192
MAX_NAME = 256  # package names, ids, versions, image references' parts
MAX_REQUIREMENT = 4096  # a pip item may carry flags and an index URL


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


def nonblank(unpack: Unpacker[str]) -> Unpacker[str]:
    """``unpack``, refusing a blank string (an empty command is always a mistake)."""

    def check(value: Any) -> str:
        text = unpack(value)
        if not text.strip():
            raise Invalid("must not be empty")
        return text

    return check


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


def OwnerId(value: Any) -> int:  # noqa: N802
    """A uid or gid (``rules.owner_id``)."""
    return rules.owner_id(Int(value))


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


def ruled(rule: Callable[[str], T], limit: int = MAX_NAME) -> Unpacker[T]:
    """A string of at most ``limit`` characters that passes ``rule`` (one of ``dsl.rules``:
    the same function the compilers call, so ``dsl check`` and ``dsl compile`` agree)."""
    return lambda value: rule(Str(value, limit))


def checked(rule: Callable[[str], Any], limit: int = MAX_NAME) -> Unpacker[str]:
    """Like :func:`ruled`, but keep the string as written (the compilers normalise it)."""

    def unpack(value: Any) -> str:
        text = Str(value, limit)
        rule(text)
        return text

    return unpack


def optional(unpack: Unpacker[str]) -> Unpacker[str]:
    """``unpack``, with ``None`` and ``""`` meaning "not given" (``""``)."""
    return lambda value: "" if value in (None, "") else unpack(value)


ContainerDir = ruled(rules.container_dir, MAX_PATH)  # ... that can be a PATH entry (no ':')
MountPath = ruled(rules.mount_path, MAX_PATH)
EnvName = ruled(rules.env_name)
EnvValue = ruled(rules.env_value, MAX_TEXT)
Command = ruled(rules.command_text, MAX_TEXT)
Checksum = ruled(rules.checksum)
Quantity = ruled(rules.quantity)
DnsLabel = ruled(rules.dns_label)
DnsSubdomain = ruled(rules.dns_subdomain)
Image = checked(rules.parse_image_ref, 512)  # registry/name (255) + tag (128) + digest (71)
HttpUrl = ruled(rules.http_url, MAX_URL)
Version = ruled(rules.version)
CodexVersion = ruled(rules.codex_version)
CudaVersion = ruled(rules.cuda_version)
RustToolchain = ruled(rules.rust_toolchain)
ImagePath = checked(rules.image_path, MAX_PATH)  # io.copy: kept as written ('~/a')
PathInImage = checked(rules.path_in_image, MAX_PATH)
ContextPath = checked(rules.context_path, MAX_PATH)


def PythonVersion(value: Any) -> str:  # noqa: N802
    """envd's rule: ``None``, ``""`` and ``"3"`` mean the default; otherwise ``3.X`` or ``3.X.Y``."""
    return rules.python_version("" if value is None else Str(value, MAX_NAME)) or DEFAULT_PYTHON


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

Requirement = checked(rules.pip_item, MAX_REQUIREMENT)  # one install.python_packages item
AptPackage = ruled(rules.apt_package)
CondaPackage = ruled(rules.conda_package)
CondaChannel = ruled(rules.conda_channel, MAX_URL)
RPackage = ruled(rules.r_package)
JuliaPackage = ruled(rules.julia_package)
VscodeExtension = ruled(rules.vscode_extension)
