"""Scalar values: checksums, URLs, versions, environment variables, Kubernetes quantities and
names, ports, command text."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping

from dsl.rules._invalid import Invalid, shown

# ---- downloads ---------------------------------------------------------------------------------

_CHECKSUM = r"sha256:[0-9a-f]{64}"


def checksum(text: str) -> str:
    """An ``io.http`` checksum: ``sha256:`` and 64 lower-case hex digits.

    sha256 only: BuildKit's http source computes the sha256 of a download and compares it with
    the checksum, so any other algorithm could never match (image digests follow the same rule).
    """
    if not re.fullmatch(_CHECKSUM, text):
        algorithm = text.partition(":")[0] if ":" in text else ""
        reason = f": {algorithm} is not checked, only sha256" if algorithm and algorithm != "sha256" else ""
        raise Invalid(f"expected a digest 'sha256:<64 hex digits>', got {shown(text)}{reason}",
                      "compute it with: sha256sum FILE")
    return text


URL_MAX = 8192
_URL = (
    r"https?://(?P<authority>[A-Za-z0-9._~!$&'()*+,;=:%@\[\]-]+)"
    r"(?:[/?#][A-Za-z0-9._~:/?#\[\]@!$&'()*+,;=%-]*)?"
)
_HOST_PORT = r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::(?P<port>[0-9]{1,5}))?"


def http_url(text: str) -> str:
    """An ``http(s)://host[:port][/path][?query][#fragment]`` URL in RFC 3986 characters.

    No spaces, quotes, backslashes or non-ASCII characters (percent-encode them): the URL is
    written into pip.conf, an R expression or an LLB source exactly as given.
    """
    match = re.fullmatch(_URL, text) if len(text) <= URL_MAX else None
    host = re.fullmatch(_HOST_PORT, match["authority"].rpartition("@")[2]) if match else None  # after user:pass@
    if not host or (host["port"] is not None and not 0 < int(host["port"]) <= 65535):
        raise Invalid(f"expected an http(s) URL, got {shown(text)}",
                      "e.g. 'https://example.com/file.tgz'; percent-encode spaces, quotes and non-ASCII characters")
    return text


# ---- versions ----------------------------------------------------------------------------------

_VERSION = r"[0-9][0-9A-Za-z.+-]{0,63}"
_RUST = r"(?:stable|beta|nightly)(?:-[0-9]{4}-[0-9]{2}-[0-9]{2})?|[0-9]+\.[0-9]+(?:\.[0-9]+)?"
_PYTHON = r"3\.[0-9]+(?:\.[0-9]+)?"
_TAG_SAFE = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}"


def version(text: str) -> str:
    """A toolchain release (``install.go``, ``install.nodejs``, ``install.codex``): starts with a
    digit, then letters, digits, '.', '+', '-' (it becomes part of a download URL)."""
    if not re.fullmatch(_VERSION, text):
        hint = "write the version without the leading 'v'" if text[:1] in "vV" else "a version such as '1.25.3'"
        raise Invalid(f"expected a version like '1.2.3', got {shown(text)}", hint)
    return text


_CODEX = r"(?P<x>[0-9]+)\.(?P<y>[0-9]+)\.(?P<z>[0-9]+)(?:-(?:alpha|beta)(?:\.[0-9]+)?)?"
# the oldest openai/codex release known to publish codex-package_SHA256SUMS, the checksums the
# image build verifies its download against (older releases publish none for their archives)
CODEX_OLDEST = (0, 141, 0)


def codex_version(text: str) -> str:
    """An ``install.codex`` release: ``X.Y.Z`` or ``X.Y.Z-alpha.N`` / ``-beta.N`` (the tag is
    ``rust-v<version>``), ``0.141.0`` or later; ``""`` means the latest release."""
    if not text:
        return text
    m = re.fullmatch(_CODEX, text)
    if m is None:
        hint = ("write the version without 'rust-v' or 'v'" if text[:1] in "rRvV"
                else "an openai/codex release such as '0.155.1'")
        raise Invalid(f"expected an openai/codex release like '0.155.1', got {shown(text)}", hint)
    if (int(m["x"]), int(m["y"]), int(m["z"])) < CODEX_OLDEST:
        oldest = ".".join(map(str, CODEX_OLDEST))
        raise Invalid(f"openai/codex {text} is older than {oldest}, the oldest release known to publish "
                      "checksums for its archives (codex-package_SHA256SUMS), so its download could not "
                      "be verified", f"use {oldest} or later, or leave the version out for the latest release")
    return text


def rust_toolchain(text: str) -> str:
    """An ``install.rust`` toolchain: ``stable``, ``beta``, ``nightly`` (optionally
    ``-YYYY-MM-DD``) or a release ``1.75`` / ``1.75.0``; ``""`` means stable."""
    if text and not re.fullmatch(_RUST, text):
        raise Invalid(f"expected a Rust toolchain like 'stable' or '1.75.0', got {shown(text)}",
                      "stable, beta, nightly[-YYYY-MM-DD] or a release number")
    return text


def python_version(text: str) -> str:
    """envd's rule: ``""`` and ``"3"`` mean the default; otherwise ``3.X`` or ``3.X.Y``.

    Returns:
        The version, or ``""`` for "the default" (``dsl.ir.DEFAULT_PYTHON``).
    """
    if text in ("", "3"):
        return ""
    if not re.fullmatch(_PYTHON, text):
        raise Invalid(f"envd doesn't support this Python version: {shown(text)}", "use a Python 3 version such as '3.11'")
    return text


def cuda_version(text: str) -> str:
    """A CUDA or cuDNN version: it becomes part of an image tag, so tag characters only."""
    if not re.fullmatch(_TAG_SAFE, text):
        raise Invalid(f"expected a version like '12.1.0', got {shown(text)}",
                      "letters, digits, '.', '_' and '-' (it is part of the nvidia/cuda image tag)")
    return text


# ---- environment -------------------------------------------------------------------------------

_ENV_NAME = r"[A-Za-z_][A-Za-z0-9_]{0,255}"


def env_name(text: str) -> str:
    """An environment variable name: ``[A-Za-z_][A-Za-z0-9_]*`` (POSIX shell names).

    Kubernetes accepts more (``[-._a-zA-Z][-._a-zA-Z0-9]*``, anything printable but '=' with
    its relaxed validation) and Docker anything without '='; but the dev entrypoint and
    ``runtime.init`` run under bash, which can neither set nor read a name with '-' or '.',
    so the shell's rule is the one that works on every target.
    """
    if not re.fullmatch(_ENV_NAME, text):
        raise Invalid(f"expected an environment variable name ([A-Za-z_][A-Za-z0-9_]*), got {shown(text)}",
                      "use letters, digits and '_', not starting with a digit")
    return text


def env_value(text: str) -> str:
    """An environment variable value: any text without NUL (a process environment cannot hold it)."""
    if "\0" in text:
        raise Invalid("expected a value without NUL characters, got one with a NUL")
    return text


def command_text(text: str) -> str:
    """A command, argument or script line: any text without NUL (no argv or script holds one)."""
    if "\0" in text:
        raise Invalid(f"expected a command without NUL characters, got {shown(text)}", "remove the NUL character")
    return text


# ---- Kubernetes --------------------------------------------------------------------------------

QUANTITY_MAX = 64
_QUANTITY = (
    r"(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]{1,2})?"
)


def quantity(text: str, example: str = "10Gi") -> str:
    """A positive Kubernetes quantity (``10Gi``, ``500m``, ``2``, ``1.5``, ``1e3``).

    Kubernetes' grammar (number, then a binary suffix Ki..Ei, a decimal suffix n u m k M G T P
    E, or an exponent), without a sign and with at most a two-digit exponent; zero is refused
    because every quantity we write (CPU, memory, PVC size) must be positive.
    """
    match = re.fullmatch(_QUANTITY, text) if len(text) <= QUANTITY_MAX else None
    if not match or not match["number"].strip("0."):
        raise Invalid(
            f"expected a positive Kubernetes quantity like {example!r}, got {shown(text)}",
            f"a number with an optional unit, e.g. {example!r} (units Ki Mi Gi Ti, k M G, m); see "
            "https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/quantity/",
        )
    return text


_DNS_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DNS_SUBDOMAIN = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*"


def dns_label(text: str) -> str:
    """An RFC 1123 label: lower-case letters, digits and '-', alphanumeric at both ends, <= 63."""
    if not re.fullmatch(_DNS_LABEL, text):
        raise Invalid(f"expected a DNS label (lower-case letters, digits, '-'), got {shown(text)}",
                      "at most 63 characters, starting and ending with a letter or digit")
    return text


def dns_subdomain(text: str) -> str:
    """An RFC 1123 subdomain (a Kubernetes object name): dot-separated labels, <= 253."""
    if len(text) > 253 or not re.fullmatch(_DNS_SUBDOMAIN, text):
        raise Invalid(f"expected a Kubernetes object name, got {shown(text)}",
                      "lower-case letters, digits, '-' and '.', starting and ending alphanumeric")
    return text


_QUALIFIED_NAME = r"[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"


def annotation_key(text: str) -> str:
    """A Kubernetes annotation (or label) key: ``[PREFIX/]NAME``, PREFIX a DNS subdomain of at
    most 253 characters, NAME at most 63 letters, digits, '-', '_' and '.', alphanumeric at
    both ends."""
    prefix, slash, name = text.rpartition("/")
    if not re.fullmatch(_QUALIFIED_NAME, name) or (slash and (len(prefix) > 253 or not re.fullmatch(_DNS_SUBDOMAIN, prefix))):
        raise Invalid(f"expected an annotation key like 'example.com/name', got {shown(text)}",
                      "[PREFIX/]NAME: PREFIX a DNS subdomain, NAME up to 63 letters, digits, '-', '_' or '.'")
    return text


ACCESS_MODES = ("ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod")
SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer")


# ---- users -------------------------------------------------------------------------------------

OWNER_ID_MAX = 65535


def owner_id(number: int) -> int:
    """A uid or gid for the dev user (``config.owner``, ``--owner``): 0..65535, as envd."""
    if not 0 <= number <= OWNER_ID_MAX:
        raise Invalid(f"expected a uid/gid in 0..{OWNER_ID_MAX}, got {number}")
    return number


# ---- ports -------------------------------------------------------------------------------------


def exposed_port(port: int, host_port: int, *, earlier: Collection[int], reserved: Mapping[int, str]) -> int:
    """A ``runtime.expose`` container port: 1..65535, host port 0..65535 (0 = any free one),
    not exposed before and not one the environment already uses.

    Raises:
        Invalid: naming the port and the conflict.
    """
    if not 1 <= port <= 65535:
        raise Invalid(f"container port {port} is out of range", "ports are 1..65535")
    if not 0 <= host_port <= 65535:
        raise Invalid(f"host port {host_port} is out of range", "host ports are 0..65535 (0 = pick a free port)")
    if port in reserved:
        raise Invalid(f"port {port} is already used by {reserved[port]}", "expose a different container port")
    if port in earlier:
        raise Invalid(f"container port {port} is exposed twice", "expose each container port once")
    return port
