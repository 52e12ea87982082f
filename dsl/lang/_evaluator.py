"""Evaluate a build file: modules, the prelude, load(), include(), limits, the entry function.

One :class:`Evaluation` per build file run. It owns the :class:`Recorder`, caches loaded
modules by absolute path, detects load cycles and turns every ``StarlarkError`` (and the
rare interpreter panic) into one ``BuildFileError`` pointing at the user's file.
"""

from __future__ import annotations

import functools
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import starlark

from dsl.errors import BuildFileError, InternalError
from dsl.ir import Environment, Span
from dsl.lang._catalog import prelude_names, public_names
from dsl.lang._credentials import include_error
from dsl.lang._dialect import check_header, check_reassignment, include_urls
from dsl.lang._files import LoadPaths, Unreadable, is_within, read_file
from dsl.lang._limits import check_nesting, check_size
from dsl.lang._native_stderr import native_stderr_filtered
from dsl.lang._recorder import Recorder, bind, unbind
from dsl.lang._registry import PrimitiveFailed
from dsl.lang._spans import translate
from dsl.lang._stdlib import STDLIB_PREFIX, dialect, stdlib_globals, stdlib_module, user_globals

DEFAULT_TIMEOUT_S = 10.0
DEFAULT_MAX_DEPTH = 400
# absolute path -> contents, or None when missing; may raise Unreadable (see _files.read_file)
Reader = Callable[[str], bytes | None]
_INCLUDE_PREFIX = "@include/"
_INCLUDED_FILE = "@included:"


@dataclass(frozen=True)
class EvalResult:
    """What one evaluation produced: the environment plus diagnostics for stderr."""

    environment: Environment
    warnings: tuple[str, ...] = ()
    messages: tuple[str, ...] = ()  # print() output
    files: tuple[str, ...] = ()  # absolute paths of the local files read (build file, load()s)
    includes: tuple[str, ...] = ()  # include() URLs fetched


_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")


def used_builtins(source: str) -> frozenset[str]:
    """The predeclared names ``source`` mentions; only their stdlib files need loading.

    Starlark has no way to reach a global other than by writing its name, so a name absent
    from the text cannot be used (a mention in a string or comment merely loads it anyway).
    """
    names = {n for names in prelude_names().values() for n in names}
    return frozenset(names.intersection(_IDENTIFIER.findall(source)))


@functools.lru_cache(maxsize=64)
def _prelude(urls: tuple[str, ...], included: tuple[bool, ...], used: frozenset[str]) -> starlark.AstModule:
    """The hidden first chunk of every user module: loads the builtins it uses (and include targets)."""
    lines = []
    for file, names in prelude_names().items():
        wanted = [n for n in names if n in used and not (urls and n == "include")]
        symbols = [f'"{n}"' for n in wanted]
        if urls and file == "universe.star":
            symbols.append('_std_include = "include"')
        if symbols:
            lines.append(f'load("{STDLIB_PREFIX}{file}", {", ".join(symbols)})')
    if urls:
        for index, ok in enumerate(included):
            if ok:
                lines.append(f'load("{_INCLUDE_PREFIX}{urls[index]}", _include_{index} = "lib")')
        lines.append('def include(git = ""):')
        for index, ok in enumerate(included):
            if ok:
                lines.append(f'    if git == "{urls[index]}":\n        return _include_{index}')
        lines.append("    return _std_include(git = git)")
    return starlark.parse("@prelude", "\n".join(lines) + "\n", dialect())


def defined_functions(lines: list[str]) -> list[str]:
    """Names of the top-level functions of a file (for "no function X" messages)."""
    return [m.group(1) for line in lines if (m := re.match(r"def\s+([A-Za-z_]\w*)\s*\(", line))]


def decode(raw: bytes, display: str) -> str:
    """UTF-8 text of a build file, or a ``BuildFileError`` at the first invalid byte.

    A leading byte-order mark (Windows editors write one) is dropped: the parser would stop
    at it with an "invalid input" that shows nothing.
    """
    try:
        return raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        col = len(before) - (before.rfind(b"\n") + 1) + 1
        raise BuildFileError(
            f"the file is not valid UTF-8 (byte 0x{raw[exc.start]:02x})",
            span=Span(display, line, col),
            hint="save the build file as UTF-8",
        ) from exc


class _Deadline:
    """The time limit as the interpreter polls it (``check_cancelled``).

    Not a bound method of :class:`Evaluation`: Python's cycle collector cannot see inside the
    interpreter's ``EvalOptions``, so a reference from there back to the evaluation made an
    uncollectable cycle, and every evaluation (sources, recorder, modules: ~40 KB) stayed
    alive for the life of the process (found by the fuzzer's workers growing to gigabytes).
    """

    __slots__ = ("at",)

    def __init__(self, at: float) -> None:
        self.at = at

    def __call__(self) -> bool:
        return time.monotonic() > self.at


class Evaluation:
    """One run of a build file and everything it loads.

    Args:
        cwd: directory that display names are relative to (and load()'s fallback).
        context_dir: the build context (``_build_context_dir``).
        reader: how files are read (the file system, or an in-memory dict in tests).
        timeout: evaluation time limit in seconds.
        max_depth: Starlark call-depth limit.
    """

    def __init__(self, *, cwd: str, context_dir: str, reader: Reader = read_file,
                 timeout: float = DEFAULT_TIMEOUT_S, max_depth: int = DEFAULT_MAX_DEPTH) -> None:
        self.cwd = cwd
        self.context_dir = context_dir
        self.reader = reader
        self.timeout = timeout
        self.rec = Recorder()
        self.frozen: dict[str, starlark.FrozenModule] = {}
        self.loading: list[str] = []
        self.include_roots: dict[str, Path] = {}  # include() URL -> its clone on disk
        self.tree: LoadPaths  # where load() may look: set by run() from the build file's directory
        self.deadline = _Deadline(time.monotonic() + timeout)
        self.options = starlark.EvalOptions(check_cancelled=self.deadline, max_callstack_size=max_depth)

    def display(self, path: str) -> str:
        """A path as shown in messages: relative to the working directory when under it."""
        rel = os.path.relpath(path, self.cwd)
        return path if rel.startswith("..") else rel

    # ---- running -----------------------------------------------------------------------

    def run(self, path: str, function: str, name: str) -> EvalResult:
        """Evaluate ``path`` (absolute), call ``function()`` and freeze the result.

        Raises:
            BuildFileError: any mistake in the build file or what it loads.
        """
        token = bind(self.rec)
        display = self.display(path)
        self.tree = self._main_tree(path)
        try:
            with native_stderr_filtered():
                module = self._guard(lambda: self._module(path), Span(display, 1, 1))
                self._guard(lambda: self._call(module, function, display), self._def_span(display, function))
            env = self.rec.finish(name=name, source=display, function=function)
        finally:
            unbind(token)
        clones = tuple(str(root) + os.sep for root in self.include_roots.values())
        files = tuple(p for p in self.frozen if not p.startswith(_INCLUDE_PREFIX) and not p.startswith(clones))
        return EvalResult(env, tuple(self.rec.warnings), tuple(self.rec.messages), files, tuple(self.include_roots))

    def _guard(self, body: Callable[[], object], fallback: Span) -> object:
        try:
            return body()
        except starlark.StarlarkError as exc:
            err = self._translate(str(exc), fallback)
            raise err from (err.__cause__ or exc)  # a parked error's own cause (a bug) comes first
        except BaseException as exc:  # a Rust panic surfaces as pyo3's PanicException
            if type(exc).__name__ != "PanicException":
                raise
            raise BuildFileError(
                f"evaluation aborted by the interpreter: {exc}",
                span=fallback,
                hint="a value grew too large (e.g. a huge list or string repetition)",
            ) from exc

    def _translate(self, text: str, fallback: Span) -> BuildFileError | InternalError:
        err, self.rec.pending = self.rec.pending, None
        located = translate(text, self.rec.sources, public_names(), fallback)
        if err is None:
            return located
        if err.span is None:
            err.span = located.span
        return err

    def _call(self, module: starlark.FrozenModule, function: str, display: str) -> None:
        try:
            module.call_with(self.options, function)
        except starlark.StarlarkError as exc:
            text = str(exc)
            if "Module has no symbol" in text:
                defs = ", ".join(defined_functions(self.rec.sources[display])) or "none"
                raise BuildFileError(
                    f"{display} has no function '{function}' (functions defined: {defs})",
                    span=Span(display, 1, 1),
                    hint=f"define 'def {function}():' or pick another with -f {display}:NAME",
                ) from exc
            if "Operation `call()` not supported" in text and "* " not in text:
                raise BuildFileError(f"'{function}' is not a function", span=self._def_span(display, function),
                                     hint=f"-f {display}:NAME must name a function defined with def") from exc
            if "for call to" in text and "* " not in text:
                raise BuildFileError(f"{function}() must take no arguments: {translate(text, {}, {}, None).message}",
                                     span=self._def_span(display, function)) from exc
            raise

    def _def_span(self, display: str, function: str) -> Span:
        for number, line in enumerate(self.rec.sources.get(display, ()), 1):
            if re.match(rf"def\s+{re.escape(function)}\s*\(", line):
                return Span(display, number, 1)
        return Span(display, 1, 1)

    # ---- modules -----------------------------------------------------------------------

    def _module(self, path: str, display: str | None = None, reader: Reader | None = None) -> starlark.FrozenModule:
        if path in self.frozen:
            return self.frozen[path]
        display = display or self.display(path)
        if path in self.loading:
            cycle = " -> ".join(self.display(p) for p in self.loading[self.loading.index(path):] + [path])
            raise BuildFileError(f"load cycle: {cycle}", hint="move the shared definitions into a file that both load")
        source = decode(self._read(path, display, reader or self.reader), display)
        self.rec.sources[display] = source.splitlines()
        check_header(source, display)
        check_nesting(source, display)
        self.loading.append(path)
        try:
            frozen = self._evaluate(source, display, path)
        finally:
            self.loading.pop()
        self.frozen[path] = frozen
        return frozen

    def _read(self, path: str, display: str, reader: Reader) -> bytes:
        """The bytes of a file to evaluate; a loaded file's failure is located at its load()."""
        where = None if self.loading else Span(display, 1, 1)
        try:
            raw = reader(path)
        except Unreadable as exc:
            if exc.size is not None:
                check_size(exc.size, display)
            raise BuildFileError(f"cannot read {display}: {exc.reason}", span=where, hint=exc.hint) from exc
        if raw is None:
            raise BuildFileError(f"cannot read {display}: no such file", span=where)
        check_size(len(raw), display)
        return raw

    def _evaluate(self, source: str, display: str, path: str) -> starlark.FrozenModule:
        # the trailing "pass" keeps a final expression (e.g. a lambda) from being returned;
        # when the file does not parse, report the error of the file as written
        try:
            ast = starlark.parse(display, source + "\npass\n", dialect())
        except starlark.StarlarkError:
            ast = starlark.parse(display, source, dialect())
        check_reassignment(ast)
        urls = include_urls(source)
        included = tuple(self._fetch_include(url) for url in urls)
        module = starlark.Module()
        module["_build_context_dir"] = self.context_dir
        loader = starlark.FileLoader(lambda module_id: self._parked(lambda: self._load(module_id, path), Span(display, 1, 1)))
        starlark.eval(module, _prelude(urls, included, used_builtins(source)), user_globals(), loader)
        starlark.eval_with(self.options, module, ast, user_globals(), loader)
        return module.freeze()

    def _parked(self, body: Callable[[], starlark.FrozenModule], fallback: Span) -> starlark.FrozenModule:
        """Run a ``FileLoader`` callback; its errors are parked on the recorder (see dispatch)."""
        try:
            return body()
        except BuildFileError as err:
            self.rec.pending = self.rec.pending or err
        except starlark.StarlarkError as exc:  # a nested module failed: keep its own location
            self.rec.pending = self._translate(str(exc), fallback)
        except Exception as exc:  # a bug of ours: not the user's mistake (exit 70), at the load line
            self.rec.pending = InternalError.of(exc)
        raise PrimitiveFailed(self.rec.pending.message)

    def _load(self, module_id: str, importer: str) -> starlark.FrozenModule:
        """``load(module_id)`` in ``importer`` (or in the prelude evaluated with it)."""
        if module_id.startswith(STDLIB_PREFIX):
            return stdlib_module(module_id[len(STDLIB_PREFIX):])
        if module_id.startswith(_INCLUDE_PREFIX) and module_id[len(_INCLUDE_PREFIX):] in self.include_roots:
            return self._include_module(module_id[len(_INCLUDE_PREFIX):])
        if module_id.startswith("git@"):
            raise BuildFileError(f"load({module_id!r}): remote modules are loaded with include(git=URL)",
                                 hint='write lib = include("https://...") and call lib.NAME()')
        url = next((u for u, root in self.include_roots.items() if is_within(importer, str(root))), None)
        if url is None:
            return self._module(self.tree.resolve(module_id, importer))
        # a file of an included repository loads within that repository, always from disk
        root = self.include_roots[url]
        path = self._include_tree(url).resolve(module_id, importer)
        return self._module(path, f"{_INCLUDE_PREFIX}{url}/{Path(path).relative_to(root).as_posix()}", read_file)

    def _include_tree(self, url: str) -> LoadPaths:
        return LoadPaths(str(self.include_roots[url]), f"the repository {url}", os.path.lexists, on_disk=True)

    def _main_tree(self, build_file: str) -> LoadPaths:
        """Where the build file's load()s may look: its directory tree (and the working
        directory, as envd does, when that lies inside the tree)."""
        root = os.path.dirname(build_file)
        shown = self.display(root)
        name = "the build file's directory" + ("" if shown == "." else f" ({shown})")
        on_disk = self.reader is read_file
        exists = os.path.lexists if on_disk else (lambda p: self.reader(p) is not None)
        return LoadPaths(root, name, exists, on_disk=on_disk, cwd=self.cwd)

    # ---- include() -----------------------------------------------------------------------

    def _fetch_include(self, url: str) -> bool:
        """Fetch ``url`` before evaluation; a failure is reported when include() is called."""
        if url in self.rec.include_errors:
            return False
        refused = include_error(url)  # never hand credentials to git, its cache or a message
        if refused is not None:
            self.rec.include_errors[url] = refused
            return False
        from dsl.lang import _include  # git, subprocess: only for files that include()

        started = time.monotonic()
        try:
            root, warning = _include.fetch(url)
        except _include.IncludeFailed as exc:
            self.rec.include_errors[url] = (f"cannot fetch {url}: {exc.message}", exc.hint)
            return False
        finally:
            self.deadline.at += time.monotonic() - started  # network time is not evaluation time
        if warning:
            self.rec.warn(None, warning)
        self.include_roots[url] = root
        return True

    def _included(self, module_id: str) -> starlark.FrozenModule:
        """A load() of the include aggregator: ``@included:URL|REL``, one file of the clone."""
        url, _, rel = module_id.removeprefix(_INCLUDED_FILE).partition("|")
        # named "@include/URL/REL" so spans map to the user's call; included files always come
        # from the clone on disk, even for in-memory evaluations
        return self._module(str(self.include_roots[url] / rel), f"{_INCLUDE_PREFIX}{url}/{rel}", read_file)

    def _include_module(self, url: str) -> starlark.FrozenModule:
        key = _INCLUDE_PREFIX + url
        if key in self.frozen:
            return self.frozen[key]
        from dsl.lang import _include

        root = self.include_roots[url]
        owners: dict[str, str] = {}
        lines = []
        tree = self._include_tree(url)
        for file in _include.envd_files(root):
            rel = file.relative_to(root).as_posix()
            path = tree.resolve(rel, str(root / "x"))  # a link out of the clone is refused here too
            names = _include.top_level_names(decode(self._read(path, f"{_INCLUDE_PREFIX}{url}/{rel}", read_file), rel))
            for name in names:
                if name in owners:
                    raise BuildFileError(f"include({url!r}): found duplicated object name '{name}' in {owners[name]} and {rel}")
                owners[name] = rel
            if names:
                lines.append(f'load("{_INCLUDED_FILE}{url}|{rel}", ' + ", ".join(f'"{n}"' for n in names) + ")")
        fields = ", ".join(f"{n} = {n}" for n in owners)
        lines.append(f"lib = struct({fields})")
        module = starlark.Module()
        ast = starlark.parse(key, "\n".join(lines) + "\n", dialect())
        starlark.eval(module, ast, stdlib_globals(), starlark.FileLoader(lambda m: self._parked(lambda: self._included(m), Span(key, 1, 1))))
        self.frozen[key] = module.freeze()
        return self.frozen[key]
