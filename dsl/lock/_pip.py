"""Python pins: pip's installation report → locked distributions → a requirements file.

pip (≥ 22.2) writes with ``--report FILE`` what it would install: one ``install`` item per
distribution with its ``metadata`` (name, version) and ``download_info`` (URL and, from the
index's ``#sha256=`` link fragment or the file itself, its hash). The lock keeps name, version,
URL, file name and sha256; a ``--locked`` build installs exactly those with
``--require-hashes --no-deps``.
"""

from __future__ import annotations

import hashlib
import os
import re
import urllib.parse
from collections.abc import Iterable
from typing import Any

from dsl.errors import UsageError

CONTEXT_MOUNT = "/run/dsl/context"  # compiler.llb._context.CONTEXT_MOUNT: where the build context is


def canonical_name(name: str) -> str:
    """PEP 503 normalised name (``Foo_Bar`` → ``foo-bar``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def packages_of_report(report: dict[str, Any], *, step: str, context_dir: str) -> list[dict[str, str]]:
    """The locked distributions of one pip report, sorted by name.

    A file from the build context without a hash in the report is hashed here, from the same
    file the build mounted.

    Raises:
        UsageError: an item has no sha256 and is not a context file (an index without
            hashes), or is a local directory (nothing to hash).
    """
    out = []
    for item in report.get("install") or []:
        meta = item.get("metadata") or {}
        info = item.get("download_info") or {}
        name, version, url = meta.get("name", ""), meta.get("version", ""), info.get("url", "")
        if "dir_info" in info:
            raise UsageError(f"{step}: {name} is a local directory; it cannot be locked by hash",
                             hint="build a wheel of it and install the wheel")
        archive = info.get("archive_info") or {}
        sha256 = (archive.get("hashes") or {}).get("sha256") or ""
        if not sha256 and str(archive.get("hash", "")).startswith("sha256="):
            sha256 = archive["hash"].split("=", 1)[1]
        if not sha256 and url.startswith(f"file://{CONTEXT_MOUNT}/"):
            rel = urllib.parse.unquote(url[len(f"file://{CONTEXT_MOUNT}/"):])
            with open(os.path.join(context_dir, rel), "rb") as f:
                sha256 = hashlib.sha256(f.read()).hexdigest()
        if not sha256:
            raise UsageError(f"{step}: the package index gave no sha256 for {name} {version} ({url})",
                             hint="use an index that publishes hashes (PyPI does), or pin the file by URL")
        entry = {"name": canonical_name(name), "version": version, "url": url,
                 "filename": urllib.parse.unquote(url.rsplit("/", 1)[-1].split("#", 1)[0]),
                 "sha256": sha256.lower()}
        if item.get("is_direct"):
            entry["direct"] = "true"
        out.append(entry)
    return sorted(out, key=lambda p: (p["name"], p["version"]))


def requirements_text(packages: Iterable[dict[str, str]]) -> str:
    """The requirements file a locked pip step installs (``--require-hashes --no-deps``)."""
    lines = []
    for p in packages:
        spec = f"{p['name']} @ {p['url']}" if p.get("direct") else f"{p['name']}=={p['version']}"
        lines.append(f"{spec} --hash=sha256:{p['sha256']}")
    return "".join(line + "\n" for line in lines)


def constraints_text(steps: Iterable[dict[str, Any]], *, release: set[str]) -> str:
    """``name==version`` lines for every locked index package not in ``release`` (names the
    lock may move): what ``dsl lock`` keeps when it resolves again."""
    pins = {}
    for step in steps:
        for p in step.get("packages") or []:
            if p["name"] not in release and not p.get("direct"):
                pins[p["name"]] = p["version"]
    return "".join(f"{n}=={v}\n" for n, v in sorted(pins.items()))
