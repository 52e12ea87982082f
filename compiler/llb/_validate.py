"""Guards for every user string that ends up in a build step: the language's rules again.

Each function applies one rule of ``dsl.rules`` (the one ``dsl check`` applies at evaluation)
to an IR value, so a mistake like ``numpy; rm -rf /`` in an IR built in Python is reported at
its node's build-file line instead of failing (or worse, running) in the middle of a build.
Generated shell also quotes every value (``shlex.quote``).
"""

from __future__ import annotations

from compiler._checks import guard
from dsl import rules
from dsl.ir import Span

# install.<tool>(version=...): which rule each toolchain's version follows
_VERSION_RULES = {"python": rules.python_version, "rust": rules.rust_toolchain}


def apt_package(name: str, span: Span | None) -> str:
    """A Debian package name, optionally ``:arch`` and ``=version``."""
    return guard(rules.apt_package, name, what="apt package", span=span)


def pip_item(item: str, span: Span | None) -> tuple[str, ...]:
    """One ``install.python_packages`` item → argv words for pip (``rules.pip_item``)."""
    return guard(rules.pip_item, item, what="python package", span=span)


def conda_package(name: str, span: Span | None) -> str:
    return guard(rules.conda_package, name, what="conda package", span=span)


def conda_channel(name: str, span: Span | None) -> str:
    return guard(rules.conda_channel, name, what="conda channel", span=span)


def r_package(name: str, span: Span | None) -> str:
    return guard(rules.r_package, name, what="R package", span=span)


def julia_package(name: str, span: Span | None) -> str:
    return guard(rules.julia_package, name, what="Julia package", span=span)


def version(text: str, what: str, span: Span | None) -> str:
    """A toolchain version; ``what`` names the toolchain (``python``, ``rust``, ``go``, ...)."""
    rule = _VERSION_RULES.get(what, rules.version)
    return guard(rule, text, what=f"{what} version", span=span) or text


def codex_version(text: str, span: Span | None) -> str:
    """An ``install.codex`` release, ``""`` for the latest (``rules.codex_version``)."""
    return guard(rules.codex_version, text, what="codex version", span=span)


def checksum(text: str, span: Span | None) -> str:
    """An ``io.http`` checksum, ``""`` for none."""
    return guard(rules.checksum, text, what="checksum", span=span) if text else text


def url(text: str, span: Span | None) -> str:
    return guard(rules.http_url, text, what="URL", span=span)


def download_name(url_text: str, filename: str, span: Span | None) -> str:
    """The file name of an ``io.http`` download (``filename``, else from the URL)."""
    return guard(lambda f: rules.download_name(url_text, f), filename, what="file name", span=span)


def filename(text: str, span: Span | None) -> str:
    return guard(rules.file_name, text, what="file name", span=span)


def context_path(path: str, span: Span | None) -> str:
    """A path inside the build context: relative, normalised, not escaping it."""
    return guard(rules.context_path, path, what="build-context path", span=span)


def image_path(path: str, span: Span | None) -> str:
    """An absolute path inside the image (normalised; ``~`` means /home/envd)."""
    return guard(rules.image_path, path, what="image path", span=span)


def path_in_image(path: str, span: Span | None) -> str:
    """A path to copy out of another image (relative = from its root)."""
    return guard(rules.path_in_image, path, what="path in the image", span=span)


def mount_path(path: str, span: Span | None) -> str:
    """A directory a volume is mounted at."""
    return guard(rules.mount_path, path, what="mount path", span=span)


def shell_command(cmd: str, span: Span | None) -> str:
    """A ``run()`` line: any shell text, but no NUL (it could not reach bash intact)."""
    return guard(rules.command_text, cmd, what="command", span=span)
