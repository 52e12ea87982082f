"""Documentation generated from the stdlib: the Markdown reference and editor stubs.

The stdlib's ``.star`` files are the one source of every builtin's signature and docs;
``read_stdlib`` reads them, ``render_reference`` and ``render_stubs`` turn them into text.
"""

from dsl.docs._docstring import ArgDoc, Docstring, parse_docstring
from dsl.docs._reference import render_reference
from dsl.docs._star import FAMILIES, BuiltinDoc, Param, read_family_docs, read_stdlib, stdlib_dir
from dsl.docs._stubs import MARKER, STUB_NAME, render_stubs

__all__ = [
    "FAMILIES", "MARKER", "STUB_NAME", "ArgDoc", "BuiltinDoc", "Docstring", "Param",
    "parse_docstring", "read_family_docs", "read_stdlib", "render_reference", "render_stubs", "stdlib_dir",
]
