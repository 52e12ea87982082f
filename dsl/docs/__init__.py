"""Documentation generated from the stdlib: the Markdown reference and editor stubs.

The stdlib's ``.star`` files are the one source of every builtin's signature and docs; the
language's catalog (``dsl.lang.catalog``) reads them, and ``render_reference`` and
``render_stubs`` turn what it read into text. ``documented()`` is what both render.
"""

from dsl.docs._docstring import ArgDoc, Docstring, docstring_of, parse_docstring
from dsl.docs._reference import render_reference
from dsl.docs._stubs import MARKER, STUB_NAME, render_stubs
from dsl.docs._entries import documented

__all__ = [
    "MARKER", "STUB_NAME", "ArgDoc", "Docstring", "docstring_of", "documented", "parse_docstring",
    "render_reference", "render_stubs",
]
