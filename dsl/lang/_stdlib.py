"""The stdlib as frozen Starlark modules, built once per process.

Each ``stdlib/*.star`` file is parsed and evaluated with the extended globals it needs
(``struct``, ``call_stack``) and one host callable, ``_prim``; build files themselves only see
plain Starlark plus the names the prelude loads. The primitives find the running evaluation
through a context variable, so the frozen modules are shared by every evaluation.
"""

from __future__ import annotations

import functools

import starlark

# importing the family modules registers their primitives
from dsl.lang import _config, _data, _install, _io, _runtime, _universe  # noqa: F401
from dsl.lang._catalog import stdlib_source
from dsl.lang._registry import dispatch

STDLIB_PREFIX = "@stdlib/"


@functools.cache
def stdlib_globals() -> starlark.Globals:
    """Globals for stdlib files: plain Starlark plus ``struct`` and ``call_stack``."""
    return starlark.Globals.extended_by([starlark.LibraryExtension.StructType, starlark.LibraryExtension.CallStack])


@functools.cache
def user_globals() -> starlark.Globals:
    """Globals for build files: only plain Starlark builtins, as in envd."""
    return starlark.Globals.standard()


@functools.cache
def dialect() -> starlark.Dialect:
    """envd's v1 dialect: no top-level if/for, no while, no f-strings, no type annotations."""
    d = starlark.Dialect.standard()
    d.enable_types = starlark.DialectTypes.DISABLE
    return d


@functools.cache
def stdlib_module(file: str) -> starlark.FrozenModule:
    """The frozen module of ``stdlib/<file>`` (cached for the process)."""
    module = starlark.Module()
    module.add_callable("_prim", dispatch)
    ast = starlark.parse(STDLIB_PREFIX + file, stdlib_source(file), dialect())
    starlark.eval(module, ast, stdlib_globals())
    return module.freeze()
