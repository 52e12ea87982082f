"""The one exception tree of envdsl.

    DslError                      exit 2 unless a subclass says otherwise
    ├── BuildFileError            a mistake in build.envd; carries a Span (file:line:col)
    ├── UsageError                bad command-line input (flag values, paths)
    ├── CompileError              the IR cannot become an artifact (optionally with a Span)
    ├── OutputConflict            refusing to overwrite something the user owns
    ├── InternalError             exit 70: a bug of envdsl (the bug is its __cause__)
    └── EngineError               exit 1: a builder or runner failed
        ├── EngineUnavailable     cannot reach the builder/runner
        ├── EngineTimeout         a call ran past its deadline
        ├── BuildCancelled        exit 130: the user pressed Ctrl-C
        └── SolveFailed           a build step failed (names the step and its source line)

Every error renders as one line, optionally followed by an indented ``hint:`` line. The CLI
prints ``format()`` and exits with ``exit_code``; foreign exceptions are translated at the
boundary with ``raise ... from exc`` so their text never reaches the user unasked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only for annotations: the warm no-op build path must not pay for dsl.ir
    from dsl.ir import Span


class DslError(Exception):
    """Base of every error a user may see."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def headline(self) -> str:
        """The single line that says what went wrong (and where, when known)."""
        return self.message

    def format(self) -> str:
        """The full text shown to the user: the headline, then the hint if there is one."""
        text = self.headline()
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text

    def __str__(self) -> str:
        return self.headline()


class _Located(DslError):
    def __init__(self, message: str, *, span: Span | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.span = span

    def headline(self) -> str:
        return f"{self.span}: {self.message}" if self.span else self.message


class BuildFileError(_Located):
    """A mistake in the build file: syntax, types, unknown names, invalid values."""


class UsageError(DslError):
    """Bad command-line input."""


class CompileError(_Located):
    """The environment cannot be compiled to the requested artifact."""


class OutputConflict(DslError):
    """Writing would overwrite or delete a file that envdsl did not generate."""


class InternalError(_Located):
    """A bug of envdsl met while handling the user's input; exit code 70 (EX_SOFTWARE).

    Not the user's mistake, so not a ``BuildFileError``: a fuzzer or a test can tell the two
    apart. The exception that revealed the bug is ``__cause__`` (shown by ``--debug``).
    """

    exit_code = 70

    @classmethod
    def of(cls, exc: BaseException, *, span: Span | None = None) -> InternalError:
        """The one-line report of ``exc``: ``internal error: <type>: <message> (run again ...)``."""
        text = " ".join(str(exc).split())
        if len(text) > 200:
            text = text[:197] + "..."
        what = f"{type(exc).__qualname__}: {text}" if text else type(exc).__qualname__
        err = cls(f"internal error: {what} (run again with --debug to see where)", span=span)
        err.__cause__ = exc
        return err


class EngineError(DslError):
    """A builder or runner failed; exit code 1."""

    exit_code = 1


class EngineUnavailable(EngineError):
    """The builder or runner cannot be reached."""


class EngineTimeout(EngineError):
    """A call to an engine ran past its deadline."""


class BuildCancelled(EngineError):
    """The user cancelled the build (Ctrl-C)."""

    exit_code = 130


class SolveFailed(EngineError):
    """A build step failed on the builder."""

    def __init__(
        self,
        message: str,
        *,
        step: str | None = None,
        span: Span | None = None,
        log_tail: tuple[str, ...] = (),
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.step = step
        self.span = span
        self.log_tail = log_tail

    def headline(self) -> str:
        where = f"{self.span}: " if self.span else ""
        step = f"step '{self.step}' failed: " if self.step else ""
        return f"{where}{step}{self.message}"
