"""Checks of runtime values that both runtime compilers need, with the build-file span.

The language validates most values at evaluation; these re-check what a compiler relies on
(an IR built in Python skips the language).
"""

from __future__ import annotations

import posixpath
import re

from compiler._names import DEV_HOME
from dsl.errors import CompileError
from dsl.ir import Port, Span

_QUANTITY = re.compile(
    r"^(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$"
)
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


def quantity(text: str, *, what: str, span: Span | None, example: str = "10Gi") -> str:
    """Check a positive Kubernetes quantity (``"10Gi"``, ``"500m"``, ``"2"``, ``"1e3"``).

    Args:
        text: the quantity as written in the build file.
        what: what it measures, for the error ("PVC size", "CPU").
        span: where it was written.
        example: a valid value to show in the hint.

    Returns:
        The quantity without surrounding whitespace.

    Raises:
        CompileError: not a quantity, or not positive.
    """
    match = _QUANTITY.match(text.strip()) if isinstance(text, str) else None
    if not match or not match["number"].strip("0."):
        raise CompileError(
            f"{what} {text!r} is not a positive Kubernetes quantity",
            span=span,
            hint=f"write a number with an optional unit, e.g. {example!r} (units Ki Mi Gi Ti, k M G, m)",
        )
    return match[0]


def absolute_path(path: str, *, what: str, span: Span | None) -> str:
    """Check that a container path is absolute and normalised; returns it unchanged.

    Raises:
        CompileError: relative, or containing ``..``/``.`` segments or ``//``.
    """
    if not path.startswith("/") or posixpath.normpath(path) != path.rstrip("/") or ":" in path:
        raise CompileError(
            f"{what} {path!r} is not an absolute, normalised container path",
            span=span,
            hint=f"write the full path inside the container, e.g. '{DEV_HOME}/data'",
        )
    return path


def port_numbers(ports: tuple[Port, ...]) -> None:
    """Check every ``runtime.expose`` port range and that no container port repeats.

    Raises:
        CompileError: a port outside 1..65535 (host port 0..65535), or a duplicate.
    """
    seen: set[int] = set()
    for port in ports:
        if not 1 <= port.container_port <= 65535:
            raise CompileError(
                f"container port {port.container_port} is out of range",
                span=port.span, hint="ports are 1..65535",
            )
        if not 0 <= port.host_port <= 65535:
            raise CompileError(
                f"host port {port.host_port} is out of range",
                span=port.span, hint="host ports are 0..65535 (0 = pick a free port)",
            )
        if port.container_port in seen:
            raise CompileError(
                f"container port {port.container_port} is exposed twice",
                span=port.span, hint="expose each container port once",
            )
        seen.add(port.container_port)


def reserved_port(port: Port, reserved: dict[int, str]) -> None:
    """Reject a ``runtime.expose`` of a port the environment already uses (SSH, Jupyter, ...).

    Raises:
        CompileError: the port is in ``reserved`` (port -> what uses it).
    """
    if port.container_port in reserved:
        raise CompileError(
            f"port {port.container_port} is already used by {reserved[port.container_port]}",
            span=port.span, hint="expose a different container port",
        )


def env_name(name: str, *, span: Span | None = None) -> str:
    """Check an environment variable name is one Kubernetes and Docker accept.

    Raises:
        CompileError: empty, containing '=' or other characters outside ``[-._a-zA-Z0-9]``.
    """
    if not _ENV_NAME.match(name):
        raise CompileError(
            f"environment variable name {name!r} is not valid",
            span=span, hint="use letters, digits, '_', '-' and '.', not starting with a digit",
        )
    return name
