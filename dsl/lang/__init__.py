"""The build.envd language: evaluate a build file (Starlark, envd's v1 dialect) into the IR.

Public API:
    evaluate_file(path, from_)      a build file on disk (the CLI's entry)
    evaluate_source(source, ...)    a build file held in memory (tests, benchmarks)
    resolve_target(path, from_)     envd's ``-f FILE:FUNC`` selection
    env_name(directory)             envd's environment name rule
    builtins(), catalog()           every public builtin with its signature and docstring
    LANGUAGE, module_docs()         Starlark's own load/fail; each family's introduction
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from dsl.errors import UsageError
from dsl.lang._catalog import LANGUAGE, Builtin, Constant, Param, builtins, catalog, module_docs
from dsl.lang._evaluator import DEFAULT_MAX_DEPTH, DEFAULT_TIMEOUT_S, EvalResult, Evaluation

DEFAULT_FILE = "build.envd"
DEFAULT_FUNCTION = "build"

__all__ = [
    "DEFAULT_FILE", "DEFAULT_FUNCTION", "DEFAULT_MAX_DEPTH", "DEFAULT_TIMEOUT_S", "LANGUAGE",
    "Builtin", "Constant", "EvalResult", "Param", "Target", "builtins", "catalog", "env_name",
    "evaluate_file", "evaluate_source", "module_docs", "resolve_target",
]


@dataclass(frozen=True)
class Target:
    """Which file and function to evaluate, and the build context they belong to."""

    file: str  # absolute path of the build file
    function: str
    context_dir: str  # absolute build context directory


def env_name(directory: str) -> str:
    """envd's environment name: the directory's base name as ``[a-zA-Z0-9][a-zA-Z0-9_.-]*``, ≤ 30 chars."""
    base = os.path.basename(os.path.normpath(os.path.abspath(directory)))
    name = re.sub(r"[^a-zA-Z0-9_.-]+", "-", base)
    name = re.sub(r"^[^a-zA-Z0-9]+", "", name)[:30]
    return name or "envd"


def resolve_target(path: str = ".", from_: str | None = None, *, cwd: str | None = None) -> Target:
    """Apply envd's selection rules: ``FILE:FUNC``, ``:FUNC``, ``FILE``; default ``build.envd:build``.

    ``path`` is the build context (a directory) or a build file; a relative ``FILE`` is looked
    up in the context first, then in the working directory (envd's ``FindFileAbsPath``).

    Raises:
        UsageError: malformed ``--from`` or no such build file.
    """
    cwd = os.path.abspath(cwd or os.getcwd())
    given = os.path.join(cwd, path)
    file, function = DEFAULT_FILE, DEFAULT_FUNCTION
    if os.path.isfile(given) or (os.path.lexists(given) and not os.path.isdir(given)):
        # a FIFO, a dangling link, a link loop: a build file the evaluator will say is unreadable
        context, file = os.path.dirname(given), os.path.basename(given)
    else:
        context = given
    if from_:
        if from_.count(":") > 1:
            raise UsageError(f"invalid --from {from_!r}: expected FILE:FUNC, :FUNC or FILE")
        file_part, _, func_part = from_.partition(":")
        file, function = file_part or file, func_part or DEFAULT_FUNCTION
        if not re.fullmatch(r"[A-Za-z_]\w*", function):
            raise UsageError(f"invalid function name {function!r} in --from {from_!r}")
    if not os.path.isdir(context):
        raise UsageError(f"no such directory: {path}", hint="pass a build context directory or a build file")
    candidates = (os.path.join(context, file), os.path.join(cwd, file))
    # a regular file first; then anything there (a directory, a dangling link, a FIFO), which
    # the evaluator reports as an unreadable build file rather than a missing one
    for there in (os.path.isfile, os.path.lexists):
        for candidate in candidates:
            if there(candidate):
                return Target(os.path.normpath(candidate), function, os.path.normpath(context))
    raise UsageError(
        f"no build file {file!r} in {os.path.relpath(context, cwd)}",
        hint="create build.envd there, or choose one with -f FILE:FUNC",
    )


def evaluate_file(path: str = ".", from_: str | None = None, *, cwd: str | None = None,
                  timeout: float = DEFAULT_TIMEOUT_S, max_depth: int = DEFAULT_MAX_DEPTH) -> EvalResult:
    """Evaluate a build file on disk and call its selected function.

    Args:
        path: build context directory or build file (default ``.``).
        from_: ``FILE:FUNC`` selection (default ``build.envd:build``).
        cwd: working directory for relative names (default: the process's).
        timeout: evaluation time limit in seconds.
        max_depth: call-depth limit.

    Returns:
        The environment plus warnings and ``print()`` output.

    Raises:
        UsageError: no such build file / malformed ``from_``.
        BuildFileError: any mistake in the build file.
    """
    cwd = os.path.abspath(cwd or os.getcwd())
    target = resolve_target(path, from_, cwd=cwd)
    evaluation = Evaluation(cwd=cwd, context_dir=target.context_dir, timeout=timeout, max_depth=max_depth)
    return evaluation.run(target.file, target.function, env_name(target.context_dir))


def evaluate_source(source: str | bytes, *, filename: str = DEFAULT_FILE, function: str = DEFAULT_FUNCTION,
                    files: Mapping[str, str | bytes] | None = None, context_dir: str = "/project",
                    timeout: float = DEFAULT_TIMEOUT_S, max_depth: int = DEFAULT_MAX_DEPTH) -> EvalResult:
    """Evaluate a build file held in memory; ``files`` are other in-memory files for load().

    Paths are relative to ``context_dir``, which is also the working directory, so spans read
    ``build.envd:3:5``. Nothing is read from disk (include() still fetches over git).
    """
    def encode(text: str | bytes) -> bytes:
        return text.encode() if isinstance(text, str) else text

    memory = {os.path.normpath(os.path.join(context_dir, k)): encode(v) for k, v in (files or {}).items()}
    main = os.path.normpath(os.path.join(context_dir, filename))
    memory[main] = encode(source)
    evaluation = Evaluation(cwd=context_dir, context_dir=context_dir, reader=memory.get, timeout=timeout, max_depth=max_depth)
    return evaluation.run(main, function, env_name(context_dir))
