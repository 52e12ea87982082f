"""Validators for every user string that ends up in a build step.

Generated shell also quotes every value (``shlex.quote``); validation comes first so a
mistake like ``numpy; rm -rf /`` is reported at its build-file line instead of failing (or
worse, running) in the middle of a build.
"""

from __future__ import annotations

import posixpath
import re
import shlex

from compiler._names import DEV_HOME
from dsl.errors import CompileError
from dsl.ir import Span

_APT = re.compile(r"^[a-z0-9][a-z0-9+.-]*(?::[a-z0-9-]+)?(?:=[A-Za-z0-9.+:~_-]+)?$")
_PEP508_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
_VERSION = r"[A-Za-z0-9_.*+!-]+"
_SPEC = rf"(?:===|==|!=|<=|>=|~=|<|>)\s*{_VERSION}"
_MARKER_TOKEN = r"(?:[A-Za-z_.]+|'[A-Za-z0-9_.* -]*'|\"[A-Za-z0-9_.* -]*\"|===|==|!=|<=|>=|~=|<|>|\(|\)|\s+)"
_PIP = re.compile(
    rf"^{_PEP508_NAME}(?:\[\s*{_PEP508_NAME}(?:\s*,\s*{_PEP508_NAME})*\s*\])?"
    rf"\s*(?:\(?\s*{_SPEC}(?:\s*,\s*{_SPEC})*\s*\)?)?"
    rf"(?:\s*;\s*{_MARKER_TOKEN}+)?$"
)
_PIP_URL_REQ = re.compile(rf"^{_PEP508_NAME}\s*@\s*(https?|git\+https)://[A-Za-z0-9._~:/?#@!$&*+,=%-]+$")
# pip options envd users put inside a python_packages item ("torch --index-url URL")
_PIP_FLAGS_WITH_VALUE = frozenset({"--index-url", "-i", "--extra-index-url", "--find-links", "-f",
                                   "--trusted-host", "--no-binary", "--only-binary"})
_PIP_FLAGS = frozenset({"--pre", "--no-deps", "--upgrade", "-U", "--force-reinstall",
                        "--no-build-isolation", "--prefer-binary"})
_PIP_FLAG_VALUE = re.compile(r"^[A-Za-z0-9._~:/?#@!$&*+,=%-]+$")
_CONDA = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(?:::[A-Za-z0-9_][A-Za-z0-9_.-]*)?"
                    r"(?:(?:==|>=|<=|!=|=|<|>|~=)[A-Za-z0-9_.*+,|<>=!-]*)?$")
_CHANNEL = re.compile(r"^(?:[A-Za-z0-9_][A-Za-z0-9_.-]*|https?://[A-Za-z0-9._~:/%-]+)$")
_R_PKG = re.compile(r"^[A-Za-z][A-Za-z0-9.]*$")
_JULIA_PKG = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.jl)?$")
_VERSION_TEXT = re.compile(r"^[0-9][0-9A-Za-z.+-]*$")
_CHECKSUM = re.compile(r"^sha256:[0-9a-f]{64}$")
_URL = re.compile(r"^https?://[A-Za-z0-9._~:/?#\[\]@!$&'()*+,;=%-]+$")
_FILENAME = re.compile(r"^[A-Za-z0-9._+-]+$")


def _fail(what: str, value: str, span: Span | None, hint: str) -> CompileError:
    return CompileError(f"invalid {what} {value!r}", span=span, hint=hint)


def apt_package(name: str, span: Span | None) -> str:
    """A Debian package name, optionally ``:arch`` and ``=version``."""
    if not _APT.match(name):
        raise _fail("apt package", name, span, "Debian package names are lower-case letters, "
                    "digits and + . - (optionally name=version)")
    return name


def pip_item(item: str, span: Span | None) -> tuple[str, ...]:
    """One ``install.python_packages`` item → argv words for pip.

    An item is a PEP 508 requirement (``numpy``, ``pandas[excel]>=2,<3``, ``x; python_version<"3.12"``,
    ``pkg @ https://...``) or, as envd allows, a requirement followed by pip options
    (``torch --index-url https://download.pytorch.org/whl/cpu``).
    """
    hint = ("write a requirement such as 'numpy', 'pandas>=2,<3' or 'pkg[extra]==1.0'; "
            "pip options allowed after it: " + ", ".join(sorted(_PIP_FLAGS_WITH_VALUE | _PIP_FLAGS)))
    text = item.strip()
    if any(c in item for c in "\n\r\0") or not text:
        raise _fail("python package", item, span, hint)
    if _PIP.match(text) or _PIP_URL_REQ.match(text):
        return (text,)
    if any(c in text for c in "\\'\""):  # shell quoting would silently change the words
        raise _fail("python package", item, span, hint)
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise _fail("python package", item, span, hint) from exc
    if not words or not (_PIP.match(words[0]) or words[0].startswith("-")):
        raise _fail("python package", item, span, hint)
    out: list[str] = []
    i = 0
    while i < len(words):
        w = words[i]
        if w in _PIP_FLAGS:
            out.append(w)
        elif w in _PIP_FLAGS_WITH_VALUE and i + 1 < len(words) and _PIP_FLAG_VALUE.match(words[i + 1]):
            out += [w, words[i + 1]]
            i += 1
        elif "=" in w and w.split("=", 1)[0] in _PIP_FLAGS_WITH_VALUE and _PIP_FLAG_VALUE.match(w.split("=", 1)[1]):
            out.append(w)
        elif _PIP.match(w) and not w.startswith("-"):
            out.append(w)
        else:
            raise _fail("python package", item, span, hint)
        i += 1
    return tuple(out)


def conda_package(name: str, span: Span | None) -> str:
    if not _CONDA.match(name):
        raise _fail("conda package", name, span, "write a conda match spec such as 'numpy' or 'numpy=1.26'")
    return name


def conda_channel(name: str, span: Span | None) -> str:
    if not _CHANNEL.match(name):
        raise _fail("conda channel", name, span, "a channel name such as 'conda-forge' or an https URL")
    return name


def r_package(name: str, span: Span | None) -> str:
    if not _R_PKG.match(name):
        raise _fail("R package", name, span, "R package names are letters, digits and '.'")
    return name


def julia_package(name: str, span: Span | None) -> str:
    if not _JULIA_PKG.match(name):
        raise _fail("Julia package", name, span, "Julia package names are identifiers, e.g. 'Flux'")
    return name


def version(text: str, what: str, span: Span | None) -> str:
    if not _VERSION_TEXT.match(text):
        raise _fail(f"{what} version", text, span, "a version such as '3.11' or '1.25.3'")
    return text


def checksum(text: str, span: Span | None) -> str:
    if text and not _CHECKSUM.match(text):
        raise _fail("checksum", text, span, "write sha256: followed by 64 lower-case hex digits")
    return text


def url(text: str, span: Span | None) -> str:
    if not _URL.match(text):
        raise _fail("URL", text, span, "an http(s) URL without spaces or quotes")
    return text


def filename(text: str, span: Span | None) -> str:
    if not _FILENAME.match(text):
        raise _fail("file name", text, span, "letters, digits and . _ + - only, no '/'")
    return text


def context_path(path: str, span: Span | None) -> str:
    """A path inside the build context: relative, normalised, not escaping it."""
    norm = posixpath.normpath(path) if path else ""
    if (not path or path.startswith("/") or norm == ".." or norm.startswith("../")
            or any(c in path for c in "\0\n\r")):
        raise _fail("build-context path", path, span,
                    "use a path relative to the directory of build.envd, without '..'")
    return norm


def image_path(path: str, span: Span | None) -> str:
    """An absolute path inside the image (normalised; ``~`` means /home/envd)."""
    if path == "~" or path.startswith("~/"):
        path = DEV_HOME + path[1:]
    if not path.startswith("/") or any(c in path for c in "\0\n\r"):
        raise _fail("image path", path, span, "write an absolute path such as /opt/data (or ~/data)")
    return posixpath.normpath(path)


def shell_command(cmd: str, span: Span | None) -> str:
    """A ``run()`` line: any shell text, but no NUL (it could not reach bash intact)."""
    if "\0" in cmd:
        raise _fail("command", cmd, span, "remove the NUL character")
    return cmd
