"""What a lock is made from, and what it must pin: the inputs hash and the requests.

*Inputs*: the build file and every file it loads, the files its pip steps read from the build
context (requirements, wheels), the ``include()`` URLs, and the options that change what is
resolved (the function and the platform). Their hash is the lock's ``inputs.hash``.

*Requests*: what the build would look up at build time: the base image as written, each pip
step's arguments, each toolchain download. A lock that lacks one cannot build ``--locked``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from compiler.llb import LockRequests
from dsl.ir import Environment, PipRequirements, PipWheel, Span


@dataclass(frozen=True, slots=True)
class Wanted:
    """The lock a build file asks for, before anything is resolved.

    Attributes:
        inputs: the ``inputs`` object (with its ``hash``).
        image: the base image as written (the lock's key) and its span.
        reference: the normalised base reference.
        pip: ``(step name, pip arguments, span)`` per pip step.
        downloads: ``(builtin, archive URL, checksum URL, shape, span)`` per toolchain download.
    """

    inputs: dict[str, Any]
    image: tuple[str, Span | None]
    reference: str
    pip: tuple[tuple[str, str, Span | None], ...]
    downloads: tuple[tuple[str, str, str, str, Span | None], ...]


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return "sha256:" + h.hexdigest()


def inputs_of(*, root: str, files: Iterable[str], context_files: Iterable[str], includes: Iterable[str],
              function: str, platform: str) -> dict[str, Any]:
    """The ``inputs`` object: file hashes (paths relative to ``root``, ``/``-separated), the
    include URLs, the function and platform, and the hash of all of it.

    A file that cannot be read is hashed as ``missing`` (the build would fail on it anyway,
    and the lock is then stale, not a crash).
    """
    hashes: dict[str, str] = {}
    for path in [*files, *context_files]:
        rel = os.path.relpath(os.path.abspath(path), root).replace(os.sep, "/")
        try:
            hashes[rel] = file_sha256(path)
        except OSError:
            hashes[rel] = "missing"
    data: dict[str, Any] = {"files": dict(sorted(hashes.items())), "function": function,
                            "includes": sorted(set(includes)), "platform": platform}
    blob = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    return {**data, "hash": "sha256:" + hashlib.sha256(blob).hexdigest()}


def context_files(env: Environment, context_dir: str) -> list[str]:
    """The build-context files the pip steps read (their content changes what pip resolves)."""
    paths = [s.path for s in env.build.steps_of(PipRequirements)[-1:]]
    paths += [s.path for s in env.build.steps_of(PipWheel)]
    return [os.path.join(context_dir, p) for p in paths]


def wanted(env: Environment, requests: LockRequests, inputs: dict[str, Any]) -> Wanted:
    """The :class:`Wanted` lock of ``env`` (``requests`` from ``compiler.llb.lock_requests``)."""
    base = env.build.base
    written = requests.base if env.build.cuda is not None else base.image  # cuda: the swapped image
    return Wanted(inputs=inputs, image=(written, base.span), reference=requests.base,
                  pip=requests.pip, downloads=requests.downloads)
