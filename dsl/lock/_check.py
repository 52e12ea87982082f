"""Is a lock current for a build file? What differs, and the pins a ``--locked`` build uses.

A lock is *stale* when its inputs hash differs (a loaded file, a requirements file, the
function or the platform changed) or when the build asks for something the lock does not pin
(another base image, another pip step, another download). The report is a unified diff of
the two summaries (what the lock was made for, what the build file asks for now), and the
first difference that a build-file call caused names that call's ``file:line:col``.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from typing import Any

from compiler.llb import Pins
from dsl.ir import Span
from dsl.lock._inputs import Wanted
from dsl.lock._pip import requirements_text


@dataclass(frozen=True, slots=True)
class Staleness:
    """Why a lock does not fit the build file.

    Attributes:
        problems: one line per difference, with the build-file span when a call caused it.
        diff: unified diff, lock → build file.
    """

    problems: tuple[tuple[str, Span | None], ...]
    diff: str

    def __bool__(self) -> bool:
        return bool(self.problems)


def summary_of_lock(lock: dict[str, Any]) -> dict[str, Any]:
    inputs = dict(lock["inputs"])
    return {"inputs": inputs, "images": sorted(lock["images"]),
            "python": [step.get("args", "") for step in lock["python"]],
            "downloads": sorted(lock["downloads"])}


def summary_of_wanted(want: Wanted) -> dict[str, Any]:
    return {"inputs": dict(want.inputs), "images": [want.image[0]],
            "python": [args for _name, args, _span in want.pip],
            "downloads": sorted(url for _what, url, _sums, _shape, _span in want.downloads)}


def staleness(lock: dict[str, Any], want: Wanted, lock_name: str = "build.envd.lock",
              build_name: str = "build.envd") -> Staleness:
    """What differs between ``lock`` and what the build file asks for (empty: current)."""
    problems: list[tuple[str, Span | None]] = []
    image, span = want.image
    if image not in lock["images"]:
        problems.append((f"the base image {image} is not pinned in {lock_name}", span))
    locked_args = [step.get("args", "") for step in lock["python"]]
    for i, (name, args, step_span) in enumerate(want.pip):
        if i >= len(locked_args) or locked_args[i] != args:
            problems.append((f"{name}: {lock_name} has no pins for this pip step", step_span))
    if len(locked_args) > len(want.pip):
        problems.append((f"{lock_name} pins {len(locked_args)} pip steps, the build has {len(want.pip)}", None))
    for what, url, _sums, _shape, dl_span in want.downloads:
        if url not in lock["downloads"]:
            problems.append((f"{what}: {lock_name} has no checksum for {url}", dl_span))
    old, new = lock["inputs"], want.inputs
    if old.get("hash") != new["hash"]:
        changed = sorted(k for k in set(old.get("files", {})) | set(new["files"])
                         if old.get("files", {}).get(k) != new["files"].get(k))
        what = [f"{f} changed" for f in changed]
        what += [f"{k} {old.get(k)!r} → {new[k]!r}" for k in ("function", "platform", "includes")
                 if old.get(k) != new[k]]
        problems.append((f"{lock_name} was made from other inputs ({', '.join(what) or 'hash differs'})", None))
    if not problems:
        return Staleness((), "")
    before = _lines(summary_of_lock(lock))
    after = _lines(summary_of_wanted(want))
    diff = "".join(difflib.unified_diff(before, after, fromfile=lock_name, tofile=build_name))
    # the span that explains it best first: a build-file call beats "inputs changed"
    problems.sort(key=lambda p: p[1] is None)
    return Staleness(tuple(problems), diff)


def _lines(summary: dict[str, Any]) -> list[str]:
    return [line + "\n" for line in json.dumps(summary, indent=2, sort_keys=True, ensure_ascii=False).splitlines()]


def pins_of(lock: dict[str, Any], want: Wanted) -> Pins:
    """The :class:`Pins` of a current lock (check :func:`staleness` first)."""
    image = lock["images"][want.image[0]]
    return Pins(
        images={want.reference: image["reference"]},
        python=tuple(requirements_text(step["packages"]) for step in lock["python"]),
        downloads={url: item["sha256"] for url, item in sorted(lock["downloads"].items())},
        source_date_epoch=int(lock["source_date_epoch"]),
    )
