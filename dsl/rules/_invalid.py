"""The one exception every value rule raises, and how a rejected value is shown."""

from __future__ import annotations


class Invalid(ValueError):
    """A value breaks a rule: ``message`` says how ("expected X, got Y"), ``hint`` how to fix it.

    Neither layer shows it as is: the language turns it into a ``BuildFileError`` at the
    build-file call (``dsl.lang._unpack.Call``), a compiler into a ``CompileError`` with the
    IR node's span, the CLI into a ``UsageError`` naming the option.
    """

    def __init__(self, message: str, hint: str | None = None, *, reason: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.reason = reason  # the part of ``message`` after the value, when a caller rewords it


def shown(text: str, limit: int = 80) -> str:
    """``repr(text)`` for a message, shortened in the middle when long."""
    if len(text) <= limit:
        return repr(text)
    return repr(text[: limit // 2]) + f" ... ({len(text):,} characters) ... " + repr(text[-limit // 4:])
