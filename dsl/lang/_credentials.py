"""Credentials in URLs (``https://user:password@host``) are refused at evaluation.

What a build file passes to a builtin ends up in bytes envdsl produces: the LLB definition,
files in the image (``/etc/pip.conf``, ``sources.list``, ``.condarc``), labels, manifests and
build logs. A password or token in a URL's userinfo would be stored in all of them, so the
arguments that name a place to fetch from are checked before the builtin's own validation, and
the error shows the URL with its userinfo replaced by ``***``: it never repeats the secret.

An SSH URL may name a user (``ssh://git@host/repo``): that is an account, not a secret.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from dsl.lang._unpack import Call

# The arguments (per builtin) whose strings are URLs or text that holds URLs. include(git=)
# is fetched before evaluation, so the evaluator checks it before fetching (include_error).
URL_ARGUMENTS: dict[str, tuple[str, ...]] = {
    "config.apt_source": ("source",),
    "config.conda_channel": ("channel",),
    "config.cran_mirror": ("url",),
    "config.julia_pkg_server": ("url",),
    "config.pip_index": ("url", "extra_url"),
    "config.repo": ("url",),
    "install.conda_packages": ("channel",),
    "install.pixi": ("pypi_index",),
    "install.python_packages": ("name",),
    "io.http": ("url",),
}

_NO_BUILD_SECRET = ("a build cannot take a credential yet: use a mirror or proxy that needs none, "
                    "or fetch the files before the build into the build context")
_HINTS = {
    "include": "git asks your credential helper for the password: remove it from the URL and set one up "
               "(git config --global credential.helper ...), or use an ssh:// URL and your SSH key",
    "io.http": "download the file before the build into the build context and copy it with io.copy",
    "install.python_packages": _NO_BUILD_SECRET + " (install.python_packages(local_wheels=[...]) installs wheels from it)",
}
# Only where a run of scheme characters starts (the lookbehind), its first letter onwards, taken
# whole (possessive): the same URLs as trying every position, in linear time. Trying every
# position made a long run of letters without "://" quadratic, and the evaluation time limit
# cannot interrupt a regular expression (100,000 letters: hours).
_AUTHORITY = re.compile(r"(?<![A-Za-z0-9+.-])[0-9+.-]*+([A-Za-z][A-Za-z0-9+.-]*+)://([^/?#\s'\"]*+)")
_SSH_SCHEMES = frozenset({"ssh", "git+ssh", "ssh+git", "sftp"})


def redacted_credential(text: str) -> str | None:
    """The first URL in ``text`` that carries credentials, shown without them; None if none.

    >>> redacted_credential("deb https://me:pw@apt.example.com/debian bookworm main")
    'https://***@apt.example.com/...'
    """
    for match in _AUTHORITY.finditer(text):
        scheme, authority = match.group(1), match.group(2)
        userinfo, at, host = authority.rpartition("@")  # a raw '@' in a password: the last one ends it
        if not at:
            continue
        if scheme.lower() in _SSH_SCHEMES and ":" not in userinfo:
            continue  # ssh://git@host: a user name alone
        rest = "/..." if text[match.end():match.end() + 1] in ("/", "?", "#") else ""
        return f"{scheme}://***@{host}{rest}"
    return None


def _strings(value: Any, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _strings(item, f"{where}: item {index}")


def refuse_credentials(call: Call, args: dict[str, Any]) -> None:
    """Raise if an argument of ``call`` that names a URL carries credentials.

    Args:
        call: the builtin call (its name selects the arguments to check).
        args: the arguments as the stdlib passed them.

    Raises:
        BuildFileError: naming the builtin, the argument and the URL without its userinfo.
    """
    for name in URL_ARGUMENTS.get(call.builtin, ()):
        for where, text in _strings(args.get(name), f"argument '{name}'"):
            shown = redacted_credential(text)
            if shown is not None:
                raise call.error(
                    f"{where}: the URL {shown} has credentials in it (user:password@); "
                    "they would be stored in the image and its build definition",
                    hint=_HINTS.get(call.builtin, _NO_BUILD_SECRET),
                )


def include_error(url: str) -> tuple[str, str] | None:
    """For ``include(git=URL)``, which is fetched before evaluation: (message, hint) or None."""
    shown = redacted_credential(url)
    if shown is None:
        return None
    return (f"argument 'git': the URL {shown} has credentials in it (user:password@); they would "
            "be kept in envdsl's cache, the locations of included code and messages", _HINTS["include"])
