"""Shell scripts for build steps: one ``bash -c`` per step, every value ``shlex.quote``-d.

Base images differ in their package manager; ``install_packages`` emits a script that picks
apt-get, apk or dnf at build time and fails with a clear message when there is none.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping

from compiler.llb._layout import CA_BUNDLE_PATH

STRICT = "set -euo pipefail"


def bash(*lines: str, shell: str = "bash") -> tuple[str, ...]:
    """argv running ``lines`` as one strict script (``set -euo pipefail``)."""
    return (shell, "-c", "\n".join((STRICT, *lines)))


def quote_all(words: Iterable[str]) -> str:
    """Words joined with spaces, each shell-quoted."""
    return " ".join(shlex.quote(w) for w in words)


def apt_install(packages: Iterable[str], *, ca_bundle: bool) -> str:
    """apt-get update + install keeping downloaded archives (they live in the cache mount)."""
    return "\n".join((
        # docker's official Debian/Ubuntu images delete archives after install; we keep them
        # because /var/cache/apt is a build cache shared by every build of this distro.
        "rm -f /etc/apt/apt.conf.d/docker-clean",
        "echo 'Binary::apt::APT::Keep-Downloaded-Packages \"true\";' > /etc/apt/apt.conf.d/keep-cache",
        # no translated package descriptions: nobody reads them in a build (~0.5 s less)
        f"apt-get update -o Acquire::Languages=none{_apt_ca(ca_bundle)}",
        apt_get_install(packages, ca_bundle=ca_bundle),
    ))


def apt_get_install(packages: Iterable[str], *, ca_bundle: bool) -> str:
    """The ``apt-get install`` line (after ``apt-get update``).

    dpkg's fsync per unpacked file buys nothing in a build step (a step that dies is thrown
    away whole), so it is skipped for the build only: the image's dpkg configuration is not
    changed.
    """
    return (f"apt-get install -y --no-install-recommends -o Dpkg::Options::=--force-unsafe-io"
            f"{_apt_ca(ca_bundle)} {quote_all(packages)}")


def _apt_ca(ca_bundle: bool) -> str:
    return f" -o Acquire::https::CAInfo={CA_BUNDLE_PATH}" if ca_bundle else ""


def install_packages(per_manager: Mapping[str, tuple[str, ...]], purpose: str, *,
                     ca_bundle: bool) -> str:
    """A script installing packages with whichever package manager the image has.

    Args:
        per_manager: package names for ``apt``, ``apk`` and ``dnf``.
        purpose: what needs them, for the error when no manager is found.
        ca_bundle: pass the build-time CA bundle to apt.
    """
    branches = []
    if "apt" in per_manager:
        branches.append(("command -v apt-get >/dev/null 2>&1",
                         apt_install(per_manager["apt"], ca_bundle=ca_bundle)))
    if "apk" in per_manager:
        branches.append(("command -v apk >/dev/null 2>&1",
                         f"apk add --no-cache {quote_all(per_manager['apk'])}"))
    if "dnf" in per_manager:
        branches.append(("command -v dnf >/dev/null 2>&1",
                         f"dnf install -y {quote_all(per_manager['dnf'])}"))
    managers = ", ".join({"apt": "apt-get", "apk": "apk", "dnf": "dnf"}[m] for m in per_manager)
    message = shlex.quote(f"dsl: {purpose} needs a package manager ({managers}) in the base image; "
                          "none was found")
    out = []
    for i, (cond, body) in enumerate(branches):
        out.append(f"{'if' if i == 0 else 'elif'} {cond}; then")
        out.append(body)
    out += ["else", f"  echo {message} >&2", "  exit 1", "fi"]
    return "\n".join(out)
