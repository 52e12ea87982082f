"""The compilers' guards: the language's own rules (``dsl.rules``), re-applied to the IR.

The language checks every value at evaluation; the compilers call the same functions again
because an IR built in Python skips the language. There is no rule here of its own: a guard
only turns ``rules.Invalid`` into a ``CompileError`` at the IR node's build-file span.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

from dsl import rules
from dsl.errors import CompileError
from dsl.ir import Port, Span

T = TypeVar("T")


def guard(rule: Callable[[str], T], value: str, *, what: str, span: Span | None) -> T:
    """``rule(value)``, with a broken rule reported as ``invalid <what>: <why>`` at ``span``.

    Raises:
        CompileError: the value breaks the rule (the rule's hint is the error's hint).
    """
    try:
        return rule(value)
    except rules.Invalid as exc:
        raise CompileError(f"invalid {what}: {exc.message}", span=span, hint=exc.hint) from exc


def quantity(text: str, *, what: str, span: Span | None, example: str = "10Gi") -> str:
    """A positive Kubernetes quantity (``rules.quantity``)."""
    return guard(lambda t: rules.quantity(t, example), text, what=what, span=span)


def absolute_path(path: str, *, what: str, span: Span | None) -> str:
    """A path to mount at (``rules.mount_path``); returns it normalised."""
    return guard(rules.mount_path, path, what=what, span=span)


def exposed_ports(ports: tuple[Port, ...], builtin: Mapping[int, str]) -> None:
    """Every ``runtime.expose`` port passes ``rules.exposed_port`` given the ports before it
    and the environment's own (``builtin``: port → name)."""
    seen: list[int] = []
    for port in ports:
        try:
            rules.exposed_port(port.container_port, port.host_port, earlier=seen, reserved=builtin)
        except rules.Invalid as exc:
            raise CompileError(exc.message, span=port.span, hint=exc.hint) from exc
        seen.append(port.container_port)


def env_name(name: str, *, span: Span | None = None) -> str:
    """An environment variable name (``rules.env_name``)."""
    return guard(rules.env_name, name, what="environment variable name", span=span)


def env_value(value: str, *, span: Span | None = None) -> str:
    """An environment variable value (``rules.env_value``)."""
    return guard(rules.env_value, value, what="environment variable value", span=span)
