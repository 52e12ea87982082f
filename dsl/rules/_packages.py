"""Package names and specs for each package manager, as that manager reads them."""

from __future__ import annotations

import re

from dsl.rules._invalid import Invalid, shown
from dsl.rules._pep508 import URL_CHARS, requirement_problem
from dsl.rules._values import http_url

# pip options envd files put inside a python_packages item ("torch --index-url URL")
PIP_OPTIONS_WITH_VALUE = frozenset({"--index-url", "-i", "--extra-index-url", "--find-links", "-f",
                                    "--trusted-host", "--no-binary", "--only-binary"})
PIP_OPTIONS = frozenset({"--pre", "--no-deps", "--upgrade", "-U", "--force-reinstall",
                         "--no-build-isolation", "--prefer-binary"})
_OPTION_VALUE = r"[A-Za-z0-9._~:/?#\[\]@!*+,=%-]+"
_BARE_URL = rf"(?:git\+)?https?://{URL_CHARS}"
_PIP_HINT = ("one requirement per item, e.g. 'numpy', 'pandas[excel]>=2,<3', "
             "'x; python_version < \"3.12\"' or 'pkg @ https://...'; pip options allowed after it: "
             + ", ".join(sorted(PIP_OPTIONS_WITH_VALUE | PIP_OPTIONS)))


def pip_item(text: str) -> tuple[str, ...]:
    """One ``install.python_packages`` item → the words pip gets.

    An item is a PEP 508 requirement (extras, version specifiers, environment markers,
    ``name @ URL``), or, as envd allows, whitespace-separated requirements, bare ``https``/
    ``git+https`` URLs and pip options from a fixed list (``torch --index-url URL``). Local
    paths are refused: the build context is not mounted where pip runs
    (``local_wheels=`` and ``requirements=`` are).

    Returns:
        The argv words (a requirement with spaces in it stays one word).

    Raises:
        Invalid: anything else, naming the word that is wrong.
    """
    item = text.strip()
    if not item:
        raise Invalid("expected a package requirement, got an empty string", _PIP_HINT)
    if any(c in text for c in "\n\r\0"):
        raise Invalid(f"expected one requirement on one line, got {shown(text)}", _PIP_HINT)
    whole = requirement_problem(item)
    if whole is None:
        return (item,)
    words = item.split()
    out: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        name, eq, value = word.partition("=")
        if word in PIP_OPTIONS:
            out.append(word)
        elif word in PIP_OPTIONS_WITH_VALUE:
            if i + 1 == len(words) or not re.fullmatch(_OPTION_VALUE, words[i + 1]):
                raise Invalid(f"pip option {word} in {shown(text)} needs a value (a URL or name)", _PIP_HINT)
            out += [word, words[i + 1]]
            i += 1
        elif eq and name in PIP_OPTIONS_WITH_VALUE and re.fullmatch(_OPTION_VALUE, value) and name.startswith("--"):
            out.append(word)
        elif word.startswith("-"):
            raise Invalid(f"pip option {shown(word)} in {shown(text)} is not one envdsl passes on", _PIP_HINT)
        elif re.fullmatch(_BARE_URL, word) or requirement_problem(word) is None:
            out.append(word)
        else:
            reason = whole if len(words) == 1 or ";" in item else f"{shown(word)} is not a requirement"
            if word.startswith((".", "/", "~")) or word.endswith((".whl", ".tar.gz", ".zip")):
                reason = f"{shown(word)} is a local path; the build context is not mounted where pip runs"
            raise Invalid(f"expected a pip requirement, got {shown(text)}: {reason}", _PIP_HINT)
        i += 1
    return tuple(out)


_APT = r"[a-z0-9][a-z0-9+.-]+(?::[a-z0-9-]+)?(?:=(?:[0-9]+:)?[A-Za-z0-9.+~-]+)?"


def apt_package(text: str) -> str:
    """A Debian package (policy: ``[a-z0-9][a-z0-9+.-]+``, two characters or more), optionally
    ``:arch`` and ``=[epoch:]version``."""
    if not re.fullmatch(_APT, text):
        raise Invalid(
            f"expected a Debian package name, got {shown(text)}",
            "package names are two or more of a-z, 0-9, '+', '-', '.', optionally followed by ':ARCH' or '=VERSION'",
        )
    return text


_CONDA_NAME = r"[A-Za-z0-9_][A-Za-z0-9_.-]*"
_CONDA_CHANNEL = rf"{_CONDA_NAME}(?:/{_CONDA_NAME})*"
_CONDA = (
    rf"(?:{_CONDA_NAME}(?:/{_CONDA_NAME})*::)?{_CONDA_NAME}"  # [channel::]name
    r"(?:(?:==|>=|<=|!=|~=|=|<|>)[A-Za-z0-9_.*+,|<>=!-]+)?"  # version spec
    r"(?:\[[A-Za-z0-9_]+=[A-Za-z0-9_.*+,<>=!~:/-]+(?:,[A-Za-z0-9_]+=[A-Za-z0-9_.*+,<>=!~:/-]+)*\])?"  # [key=value]
)


def conda_package(text: str) -> str:
    """A conda match spec in one word: ``numpy``, ``numpy=1.26``, ``conda-forge::numpy>=1``,
    ``pytorch[build=*cuda*]``."""
    if not re.fullmatch(_CONDA, text):
        raise Invalid(f"expected a conda package spec like 'numpy=1.26', got {shown(text)}",
                      "[channel::]name, optionally a version (=, ==, >=, ...) and [key=value]; no spaces")
    return text


def conda_channel(text: str) -> str:
    """A conda channel: a name (``conda-forge``, ``pytorch/label/nightly``) or an http(s) URL."""
    if text.startswith(("http://", "https://")):
        return http_url(text)
    if not re.fullmatch(_CONDA_CHANNEL, text):
        raise Invalid(f"expected a conda channel name or URL, got {shown(text)}",
                      "e.g. 'conda-forge', 'pytorch/label/nightly' or an https:// URL")
    return text


_R = r"[A-Za-z][A-Za-z0-9.]*[A-Za-z0-9]"


def r_package(text: str) -> str:
    """A CRAN package name: ASCII letters, digits and '.', two or more, starting with a letter
    and not ending with '.'."""
    if not re.fullmatch(_R, text):
        raise Invalid(f"expected an R package name, got {shown(text)}",
                      "CRAN names are letters, digits and '.', start with a letter and do not end with '.'")
    return text


_JULIA = r"[A-Za-z_][A-Za-z0-9_]*(?:\.jl)?"


def julia_package(text: str) -> str:
    """A Julia package name: an ASCII identifier, optionally with ``.jl``."""
    if not re.fullmatch(_JULIA, text):
        raise Invalid(f"expected a Julia package name, got {shown(text)}", "Julia package names are identifiers, e.g. 'Flux'")
    return text


_VSCODE = r"[A-Za-z0-9][A-Za-z0-9-]*\.[A-Za-z0-9][A-Za-z0-9._-]*"


_VSCODE_VERSION = r"[0-9][A-Za-z0-9._]*"


def vscode_extension(text: str) -> str:
    """A VS Code extension id ``publisher.extension[-version]``."""
    if not re.fullmatch(_VSCODE, text):
        raise Invalid(f"expected a VS Code extension id 'publisher.extension[-version]', got {shown(text)}")
    return text


def vscode_extension_parts(text: str) -> tuple[str, str, str]:
    """``publisher.name[-version]`` → ``(publisher, name, version)``; version ``""`` when the id
    has none.

    envd's split: the part after the last ``-`` is the version when it starts with a digit
    (``ms-python.python-2024.8.1``); otherwise the whole rest is the name
    (``ms-python.vscode-pylance``, ``a.b-latest``).
    """
    vscode_extension(text)
    publisher, _, rest = text.partition(".")
    name, dash, version = rest.rpartition("-")
    if not dash or not name or not re.fullmatch(_VSCODE_VERSION, version):
        return publisher, rest, ""
    return publisher, name, version
