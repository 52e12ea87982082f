"""Names the runtime compilers share: DNS-1123 object names, port names, label values,
image references, and the environment variables the dev entrypoint reads.

Every function is pure and deterministic: a shortened name carries a suffix derived from
SHA-256 of the original (never ``hash()``), so it is the same on every machine and run.
"""

from __future__ import annotations

import hashlib
import re

from dsl import rules
from dsl.errors import CompileError, UsageError
from dsl.ir import Span

# The dev entrypoint (built by compiler/llb) reads the authorized keys from this variable
# and, when set, the SSH host key from the file this one names.
AUTHORIZED_KEYS_ENV = "DSL_AUTHORIZED_KEYS"
HOST_KEY_PATH_ENV = "DSL_HOST_KEY_PATH"
DEV_HOME = rules.DEV_HOME
DEFAULT_UID = 1000
MANAGED_BY = "envdsl"
HASH_ANNOTATION = "envdsl/content-hash"

_LABEL_MAX = 63
_INVALID_DNS = re.compile(r"[^a-z0-9-]+")
_DASHES = re.compile(r"-{2,}")


def short_hash(text: str) -> str:
    """8 hex digits of SHA-256: a stable suffix that keeps shortened names distinct."""
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def dns_label(name: str, *, span: Span | None = None, what: str = "name") -> str:
    """An RFC 1035 label (lowercase alphanumerics and '-', starts with a letter, <= 63 chars).

    RFC 1035 rather than 1123 because Service names require a leading letter, and the Pod,
    PVCs and Service share one base name. Other characters become '-'; a leading digit gets
    an ``e-`` prefix; a name that is too long is cut and given an 8-hex suffix from SHA-256
    of the original, so distinct long names stay distinct.

    Args:
        name: the name to sanitise (an environment name, a mount path, ...).
        span: where the name came from, for the error.
        what: what the name is, for the error message.

    Returns:
        The sanitised label.

    Raises:
        CompileError: the name has no letter or digit to build a label from.
    """
    label = _DASHES.sub("-", _INVALID_DNS.sub("-", name.lower())).strip("-")
    if not label:
        raise CompileError(
            f"cannot make a DNS-1123 name from {what} {name!r}",
            span=span,
            hint="use ASCII letters or digits in the name (e.g. rename the project directory)",
        )
    if not label[0].isalpha():
        label = "e-" + label
    if len(label) > _LABEL_MAX:
        label = label[: _LABEL_MAX - 9].rstrip("-") + "-" + short_hash(name)
    return label


def child_name(base: str, suffix: str) -> str:
    """``<base>-<suffix>`` as a label; shortened with a hash suffix when too long."""
    return dns_label(f"{base}-{suffix}")


def port_name(service: str, port: int, taken: set[str]) -> str:
    """A Kubernetes port name (IANA service name: <= 15 chars, a-z0-9 and '-', one letter).

    Args:
        service: the name the build file gave (may be empty).
        port: the container port, used when ``service`` yields no valid name.
        taken: names already used in this container; the result is added to it.

    Returns:
        A unique, valid port name.
    """
    candidate = _DASHES.sub("-", _INVALID_DNS.sub("-", service.lower())).strip("-")[:15].strip("-")
    if not candidate or not any(c.isalpha() for c in candidate) or candidate in taken:
        candidate = f"port-{port}"
    if candidate in taken:  # two ports with the same number: the caller rejects those
        candidate = f"p{port}-{len(taken)}"[:15]
    taken.add(candidate)
    return candidate


_LABEL_VALUE_INVALID = re.compile(r"[^A-Za-z0-9_.-]+")


def label_value(text: str) -> str:
    """A valid Kubernetes label value (<= 63 chars, alphanumeric at both ends) for ``text``."""
    value = _LABEL_VALUE_INVALID.sub("-", text)[:_LABEL_MAX]
    return value.strip("-_.")


# ---- image references (the grammar is dsl.rules.parse_image_ref) --------------------------


def validate_image_ref(ref: str) -> str:
    """Check the image reference ``dsl compile`` runs (``--image``, or the default tag).

    Args:
        ref: the reference.

    Returns:
        ``ref`` unchanged when valid.

    Raises:
        UsageError: the reference does not parse (the message says which part and why).
    """
    try:
        rules.parse_image_ref(ref)
    except rules.Invalid as exc:
        raise UsageError(f"--image: {exc.message}", hint=exc.hint) from exc
    return ref


def default_image_ref(env_name: str) -> str:
    """The tag ``dsl build`` gives an environment by default: ``<name>:dev`` (as envd does).

    The name is lowercased and stripped to characters a repository path allows.
    """
    repo = re.sub(r"[^a-z0-9._-]+", "-", env_name.lower())
    repo = re.sub(r"[._-]{2,}", "-", repo).strip("._-") or "env"
    return rules.tag_reference(f"{repo}:dev").familiar()


def path_label(path: str, *, span: Span | None = None) -> str:
    """A DNS label for an object named after a container path (``/home/envd/data`` →
    ``home-envd-data``); a path without an ASCII letter or digit gets ``path-<hash>``."""
    if not any(c.isascii() and c.isalnum() for c in path):
        return f"path-{short_hash(path)}"
    return dns_label(path, span=span, what="mount path")
