"""Image references: the one parser of ``[registry[:port]/]path[:tag][@digest]``.

The grammar is the one of the distribution project's reference package (what docker, BuildKit
and every registry client parse), with Docker Hub's normalisation on top:

* the first path component is a registry only when it contains ``.`` or ``:`` or is
  ``localhost`` (``myteam/ws`` is the Docker Hub repository ``docker.io/myteam/ws``;
  ``localhost:5000/a``, ``[::1]:5000/a`` and ``ghcr.io/a`` name registries);
* ``index.docker.io`` is ``docker.io``, and a one-component Docker Hub path gets ``library/``;
* path components are lower-case ``[a-z0-9]`` runs joined by ``.``, ``_``, ``__`` or dashes;
  the whole name (registry and path) is at most 255 characters;
* a tag is ``[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`` (ASCII only);
* a digest is ``sha256:`` and 64 lower-case hex digits. The grammar admits other algorithms,
  but sha256 is the only one every registry and BuildKit v0.8 resolve, and the one ``io.http``
  checksums are computed with: one algorithm everywhere, so nothing the build file accepts is
  refused later;
* a tag and a digest may both be given (``debian:12@sha256:...``): the digest decides.

Everything that names an image (``base(image=)``, ``io.copy(image=)``, ``install.cuda``'s
NVIDIA image, the micromamba helper image, ``dsl build -t``, ``dsl compile --image``, push
targets, the up-to-date check) parses it here.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from dsl.rules._invalid import Invalid, shown

DOCKER_HUB = "docker.io"
NAME_MAX = 255  # registry + "/" + path
REFERENCE_MAX = NAME_MAX + 1 + 128 + 1 + 71  # name, ":" tag, "@" sha256 digest

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DNS_PART = r"(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])"
_REGISTRY = rf"(?P<host>{_DNS_PART}(?:\.{_DNS_PART})*|\[[0-9A-Fa-f:]+\])(?::(?P<port>[0-9]+))?"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST_GRAMMAR = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9A-Fa-f]{32,}"
_SHA256 = r"[0-9a-f]{64}"

_HINT = "e.g. 'ubuntu:22.04', 'myteam/ws:1', 'localhost:5000/team/img:v1' or 'ghcr.io/o/img@sha256:<64 hex>'"


class ImageRef(NamedTuple):
    """A parsed image reference (immutable; a NamedTuple, which is cheaper to import than a
    dataclass on the paths that only check a ``-t`` option).

    Attributes:
        domain: the registry, ``docker.io`` for Docker Hub (``host[:port]``).
        path: the repository path, with ``library/`` for official Docker Hub images.
        tag: the tag as written, ``""`` when none was.
        digest: ``sha256:<hex>``, ``""`` when none was.
    """

    domain: str
    path: str
    tag: str = ""
    digest: str = ""

    @property
    def name(self) -> str:
        """``domain/path``: the repository, fully qualified."""
        return f"{self.domain}/{self.path}"

    def normalized(self) -> str:
        """The fully qualified form docker and BuildKit use: ``:latest`` when neither a tag nor
        a digest was given (``ubuntu`` → ``docker.io/library/ubuntu:latest``)."""
        tag = self.tag or ("" if self.digest else "latest")
        return self.name + (f":{tag}" if tag else "") + (f"@{self.digest}" if self.digest else "")

    def familiar_name(self) -> str:
        """The repository as docker shows it: no ``docker.io/``, no ``library/`` (``ubuntu``)."""
        if self.domain != DOCKER_HUB:
            return self.name
        rest = self.path.removeprefix("library/")
        return rest if "/" not in rest else self.path

    def familiar(self) -> str:
        """The reference as docker shows it (``myteam/ws:1``, ``ubuntu@sha256:...``)."""
        return self.familiar_name() + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    def __str__(self) -> str:
        return self.normalized()


def parse_image_ref(text: str) -> ImageRef:
    """Parse an image reference.

    Args:
        text: e.g. ``ubuntu``, ``myteam/ws:1``, ``localhost:5000/a/b:t``, ``[::1]:5000/x``,
            ``x@sha256:<64 hex>``, ``x:t@sha256:<64 hex>``.

    Returns:
        The parsed, normalised reference (see the module docstring).

    Raises:
        Invalid: the reference is malformed; the message names the part and the reason.
    """

    def bad(reason: str, hint: str = _HINT) -> Invalid:
        return Invalid(f"expected an image reference, got {shown(text)}: {reason}", hint, reason=reason)

    if not text:
        raise bad("it is empty")
    if len(text) > REFERENCE_MAX:
        raise bad(f"it is longer than {REFERENCE_MAX} characters")
    if any(c.isspace() or not c.isprintable() for c in text):
        raise bad("it contains whitespace or control characters")
    name, at, digest = text.partition("@")
    if at:
        _check_digest(digest, bad)
    tag = ""
    slash, colon = name.rfind("/"), name.rfind(":")
    if colon > slash:  # a ':' after the last '/' starts the tag ("localhost:5000/x" has none)
        name, tag = name[:colon], name[colon + 1:]
        if not tag:
            raise bad("the tag after ':' is empty")
        if len(tag) > 128:
            raise bad("the tag is longer than 128 characters")
        if not re.fullmatch(_TAG, tag):
            raise bad(f"bad tag {shown(tag)}", "a tag is up to 128 ASCII letters, digits, '_', '.' and '-', "
                      "and does not start with '.' or '-'")
    if not name:
        raise bad("the repository name is missing")
    domain, path = _split_domain(name, bad)
    if domain == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    for component in path.split("/"):
        _check_component(component, bad)
    if len(domain) + 1 + len(path) > NAME_MAX:
        raise bad(f"the name is longer than {NAME_MAX} characters")
    return ImageRef(domain, path, tag, digest)


def tag_reference(text: str) -> ImageRef:
    """Parse a reference to tag a built image with (``dsl build -t``, push targets).

    Raises:
        Invalid: malformed, or it carries a digest (a digest is what a registry gives back
            for an image, not a name to give one).
    """
    ref = parse_image_ref(text)
    if ref.digest:
        raise Invalid(f"expected an image name to tag, got {shown(text)}: a tag cannot carry a digest",
                      "drop the '@sha256:...' part, e.g. 'myteam/ws:1'")
    return ref


def _split_domain(name: str, bad) -> tuple[str, str]:  # noqa: ANN001 - bad: the reason -> Invalid factory
    first, sep, rest = name.partition("/")
    if not (sep and ("." in first or ":" in first or first == "localhost")):
        return DOCKER_HUB, name
    match = re.fullmatch(_REGISTRY, first)
    if not match:
        raise bad(f"bad registry {shown(first)}", "a registry is a host name or [IPv6 address], "
                  "optionally with :PORT, e.g. 'localhost:5000' or 'ghcr.io'")
    if match["port"] is not None and not 0 < int(match["port"]) <= 65535:
        raise bad(f"registry port {match['port']} is not in 1..65535")
    if not rest:
        raise bad("the repository path after the registry is empty")
    return (DOCKER_HUB if first == "index.docker.io" else first), rest


def _check_component(component: str, bad) -> None:  # noqa: ANN001
    if not component:
        raise bad("a path component is empty ('//', or a '/' at an end)")
    if not re.fullmatch(_COMPONENT, component):
        if re.fullmatch(_COMPONENT, component.lower()):
            raise bad("repository names are lower-case", "write the repository in lower case; only the tag may "
                      "have capitals")
        raise bad(f"bad path component {shown(component)}", "path components are lower-case letters and digits, "
                  "joined by '.', '_', '__' or dashes")


def _check_digest(digest: str, bad) -> None:  # noqa: ANN001
    algorithm, _, hexpart = digest.partition(":")
    if not re.fullmatch(_DIGEST_GRAMMAR, digest):
        raise bad("a digest is 'sha256:' followed by 64 hex digits",
                  "copy the digest from `docker images --digests` or the push output")
    if algorithm != "sha256":
        raise bad(f"digest algorithm {algorithm!r} is not supported", "use the image's sha256 digest")
    if not re.fullmatch(_SHA256, hexpart):
        what = "upper-case hex" if len(hexpart) == 64 else f"{len(hexpart)} hex digits"
        raise bad(f"a sha256 digest has 64 lower-case hex digits, got {what}")


def cuda_image(base_image: str, version: str, cudnn: str, *, dev: bool) -> ImageRef:
    """The NVIDIA image ``install.cuda`` puts in place of the base image (as envd does).

    ``nvidia/cuda:<version>-cudnn<cudnn>-<devel|runtime>-<os>``, where ``<os>`` is the base
    image's last path component and tag without the ``:`` (``ubuntu:22.04`` → ``ubuntu22.04``).

    Raises:
        Invalid: the base image is malformed, or the derived reference is (a version with
            characters a tag cannot hold, or a tag past 128 characters).
    """
    base = parse_image_ref(base_image)
    os_tag = base.path.rsplit("/", 1)[-1] + base.tag
    derived = f"nvidia/cuda:{version}-cudnn{cudnn}-{'devel' if dev else 'runtime'}-{os_tag}"
    try:
        return parse_image_ref(derived)
    except Invalid as exc:
        raise Invalid(f"the CUDA image {shown(derived)} would not be a valid image reference: {exc.reason}",
                      "use a CUDA version and cuDNN major version NVIDIA publishes, e.g. version='12.1.0', "
                      "cudnn='8'") from exc
