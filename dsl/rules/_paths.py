"""Paths: inside the build context, inside the image, and where things are mounted at run time."""

from __future__ import annotations

import posixpath
import re

from dsl.rules._invalid import Invalid, shown

DEV_HOME = "/home/envd"  # what '~' means inside the container (envd's dev user)
PATH_MAX = 4096


def _no_control(text: str) -> None:
    if any(c in text for c in "\0\n\r"):
        raise Invalid(f"expected a path, got {shown(text)}: it contains a NUL or line break")
    if len(text) > PATH_MAX:
        raise Invalid(f"expected a path of at most {PATH_MAX} characters, got {len(text):,}")


def image_path(text: str) -> str:
    """An absolute path inside the image (``io.copy`` target, a path in another image);
    ``~`` and ``~/...`` mean ``/home/envd``.

    Returns:
        The path with ``~`` expanded and ``.``, ``..`` and repeated slashes resolved.
    """
    _no_control(text)
    if text == "~" or text.startswith("~/"):
        text = DEV_HOME + text[1:]
    if not text.startswith("/"):
        raise Invalid(f"expected an absolute path, got {shown(text)}", "container paths start with '/' (or '~/' for /home/envd)")
    return "/" + posixpath.normpath(text).lstrip("/")


def path_in_image(text: str) -> str:
    """A path to copy from another image (``io.copy(image=...)``): as :func:`image_path`, but
    a relative path is relative to that image's root, as LLB resolves it."""
    _no_control(text)
    if not text.strip():
        raise Invalid("expected a path in the image, got an empty string")
    return image_path(text if text.startswith(("/", "~")) else "/" + text)


def container_dir(text: str) -> str:
    """An absolute directory in the running container that is also a ``PATH`` entry
    (``runtime.environ(extra_path=)``): an image path without ':' (the ``PATH`` separator)."""
    path = image_path(text)
    if ":" in path:
        raise Invalid(f"expected a path without ':', got {shown(text)}", "':' separates PATH entries and Docker volume specs")
    return path


def mount_path(text: str) -> str:
    """Where a volume is mounted (``runtime.mount``, ``runtime.docker.mount``,
    ``runtime.kubernetes.mount``): an absolute directory without ':', not ``/`` itself."""
    path = container_dir(text)
    if path == "/":
        raise Invalid("expected a directory to mount a volume at, got '/'", "mount it at a directory such as '~/data'")
    return path


def context_path(text: str) -> str:
    """A path inside the build context (the build file's directory): relative, not leaving it.

    Returns:
        The normalised path (``./a/../b`` → ``b``; the whole context is ``.``).
    """
    _no_control(text)
    if not text:
        raise Invalid("expected a path inside the build context, got an empty string")
    norm = posixpath.normpath(text)
    if text.startswith("/") or norm == ".." or norm.startswith("../"):
        raise Invalid(f"expected a path inside the build context, got {shown(text)}",
                      "use a path relative to the directory of build.envd, without '..' leaving it")
    return norm


_FILE_NAME = r"[A-Za-z0-9._+@%~-]{1,255}"


def file_name(text: str) -> str:
    """A plain file name (``io.http(filename=)``): letters, digits and ``._+@%~-``, no '/'."""
    if not re.fullmatch(_FILE_NAME, text) or text in (".", ".."):
        raise Invalid(f"expected a plain file name (no '/'), got {shown(text)}", "letters, digits and . _ + @ % ~ -")
    return text


def download_name(url: str, filename: str) -> str:
    """The file name an ``io.http`` download gets: ``filename``, else the URL's last segment.

    Raises:
        Invalid: ``filename`` is not a plain file name, or it is empty and the URL's last path
            segment is not one either (then ``filename=`` must be given).
    """
    if filename:
        return file_name(filename)
    last = posixpath.basename(url.split("?", 1)[0].split("#", 1)[0].split("://", 1)[-1].partition("/")[2])
    if not last:
        return "download"
    try:
        return file_name(last)
    except Invalid as exc:
        raise Invalid(f"the URL's last segment {shown(last)} is not a plain file name",
                      "pass filename='NAME' to io.http") from exc
