"""Where in a build file something was declared."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, order=True)
class Span:
    """A position in a build file, shown as ``file:line:col`` (1-based).

    ``file`` is the path as the user named it (relative where possible) so messages and
    outputs do not depend on the machine's directory layout.
    """

    file: str
    line: int
    col: int = 1

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"
