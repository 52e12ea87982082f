"""Helpers for evaluator tests: evaluate in memory and catch the one error a file raises."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from dsl.errors import BuildFileError
from dsl.ir import Environment
from dsl.lang import EvalResult, evaluate_source


def _body(calls: str) -> str:
    lines = calls.strip("\n").splitlines() or ["pass"]
    return "def build():\n" + "".join(f"    {line}\n" for line in lines)


@pytest.fixture
def env() -> Callable[..., Environment]:
    """``env("install.python()")`` evaluates the calls inside ``def build()``; returns the IR."""

    def run(calls: str, **kwargs: object) -> Environment:
        return evaluate_source(_body(calls), **kwargs).environment  # type: ignore[arg-type]

    return run


@pytest.fixture
def result() -> Callable[..., EvalResult]:
    """Like ``env`` but returns the whole result (warnings, print output)."""

    def run(calls: str, **kwargs: object) -> EvalResult:
        return evaluate_source(_body(calls), **kwargs)  # type: ignore[arg-type]

    return run


@pytest.fixture
def error() -> Callable[..., BuildFileError]:
    """``error(source)`` evaluates a whole file and returns the BuildFileError it must raise.

    A source without ``def`` is wrapped in ``def build():`` (the call is then on line 2, col 5).
    """

    def run(source: str, **kwargs: object) -> BuildFileError:
        text = source if "def " in source or "load(" in source or source.startswith("#") else _body(source)
        with pytest.raises(BuildFileError) as info:
            evaluate_source(text, **kwargs)  # type: ignore[arg-type]
        return info.value

    return run
