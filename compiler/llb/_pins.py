"""What ``--locked`` changes in the LLB, and what ``dsl lock`` asks the builder to resolve.

A :class:`Pins` (made by ``dsl.lock`` from ``build.envd.lock``) turns a build into a locked one:

* the base image is ``name@sha256:<digest>`` (the tag is not looked up again);
* each pip step installs exactly the locked distributions: ``pip install --require-hashes
  --no-deps -r <file>``, the file mounted from a scratch state (never left in the image);
* each toolchain archive is an http source with BuildKit's ``http.checksum`` set to the locked
  sha256, instead of the publisher's checksum file fetched at build time;
* every step gets ``SOURCE_DATE_EPOCH`` (Python then writes ``.pyc`` files with checked hashes,
  not source mtimes) and ends by removing the files that differ from build to build for no
  reason (apt and dpkg logs, ldconfig's aux cache).

A :class:`Resolution` is the other direction: the same build up to its pip steps, each run with
``--report`` (the last one ``--dry-run``), plus the toolchains' checksum files, all copied into
one scratch tree that ``dsl lock`` exports and reads back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

PIP_LOCK_DIR = "/run/dsl/lock"  # the locked requirements / constraints, mounted read-only
REPORT_DIR = "/.dsl-lock"  # where the resolution's pip reports are written in the build tree
# Files that carry the time of the build, not its content; removed at the end of every locked
# step (pip's cache and apt's lists/archives are cache mounts already, never in a layer).
NOISE = ("/var/log/apt/history.log", "/var/log/apt/term.log", "/var/log/apt/eipp.log.xz",
         "/var/log/dpkg.log", "/var/log/alternatives.log", "/var/cache/ldconfig/aux-cache")


@dataclass(frozen=True, slots=True)
class Pins:
    """What a locked build uses instead of looking things up.

    Attributes:
        images: normalised image reference as written (``docker.io/library/debian:bookworm``)
            → the pinned reference (``docker.io/library/debian@sha256:…``).
        python: per pip step, in build order, the requirements-file text to install
            (``name==1.0 --hash=sha256:…`` lines; "" = nothing left to install).
        downloads: toolchain archive URL → its sha256 (hex).
        source_date_epoch: the lock's fixed timestamp (seconds since 1970).
    """

    images: Mapping[str, str] = field(default_factory=dict)
    python: tuple[str, ...] = ()
    downloads: Mapping[str, str] = field(default_factory=dict)
    source_date_epoch: int = 0


@dataclass(frozen=True, slots=True)
class Resolution:
    """How ``dsl lock`` runs the pip steps: with a report, under the previous lock's pins.

    Attributes:
        images: as ``Pins.images``: the base is resolved first, so the pip steps run on the
            image the lock pins.
        constraints: per pip step, a constraints-file text (``name==1.0`` lines: the pins the
            previous lock keeps); "" = none.
    """

    images: Mapping[str, str] = field(default_factory=dict)
    constraints: tuple[str, ...] = ()


def noise_cleanup() -> str:
    """The last line of every locked step: drop the time-stamped logs (as any user: a step of
    the dev user may not remove root's files, which it did not write either)."""
    return "rm -f " + " ".join(NOISE) + " 2>/dev/null || true"
