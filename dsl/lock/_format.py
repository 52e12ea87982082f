"""``build.envd.lock``: the file, its parts, reading and writing.

JSON with sorted keys, a 2-space indent and a final newline, so the same pins always give the
same bytes (a GitOps diff of the lock shows only what moved)::

    {
      "downloads": {"<archive URL>": {"builtin": "install.go", "checksum_url": "...", "sha256": "..."}},
      "envdsl": "0.1.0",
      "images": {"<image as written>": {"digest": "sha256:...", "platform": "linux/amd64",
                                         "reference": "<name>@sha256:...", "source": "registry"}},
      "inputs": {"files": {"build.envd": "sha256:..."}, "function": "build", "hash": "sha256:...",
                 "includes": [], "platform": "linux/amd64"},
      "lock_version": 1,
      "python": [{"args": "numpy", "packages": [{"filename": "...", "name": "numpy", "sha256": "...",
                  "url": "...", "version": "2.1.0"}], "step": "install.python_packages numpy"}],
      "source_date_epoch": 1764590000
    }
"""

from __future__ import annotations

import json
import os
from typing import Any

from dsl.errors import BuildFileError, UsageError
from dsl.ir import Span

LOCK_NAME = "build.envd.lock"
LOCK_VERSION = 1
_KEYS = ("downloads", "envdsl", "images", "inputs", "lock_version", "python", "source_date_epoch")


def lock_path(build_file: str) -> str:
    """``build.envd.lock`` beside the build file (whatever the build file is called)."""
    return os.path.join(os.path.dirname(os.path.abspath(build_file)), LOCK_NAME)


def dumps(lock: dict[str, Any]) -> str:
    """The lock's bytes: sorted keys, 2-space indent, one final newline."""
    return json.dumps(lock, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def read_lock(path: str) -> dict[str, Any] | None:
    """The lock at ``path``; None when there is none.

    Raises:
        BuildFileError: the file is not JSON (``build.envd.lock:LINE:COL``) or not a lock.
        UsageError: it cannot be read.
    """
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}", hint="run `dsl lock` to write it again") from exc
    name = os.path.basename(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BuildFileError(f"not valid JSON: {exc.msg}", span=Span(name, exc.lineno, exc.colno),
                             hint="fix the merge conflict or run `dsl lock` to write it again") from exc
    problem = _shape_problem(data)
    if problem:
        raise BuildFileError(f"not a lock file: {problem}", span=Span(name, 1, 1),
                             hint="run `dsl lock` to write it again")
    return data


def _shape_problem(data: Any) -> str:
    if not isinstance(data, dict):
        return "expected a JSON object"
    missing = [k for k in _KEYS if k not in data]
    if missing:
        return "missing " + ", ".join(repr(k) for k in missing)
    if data["lock_version"] != LOCK_VERSION:
        return f"lock_version {data['lock_version']!r} (this envdsl writes {LOCK_VERSION})"
    shapes = {"downloads": dict, "images": dict, "inputs": dict, "python": list, "source_date_epoch": int}
    for key, kind in shapes.items():
        if not isinstance(data[key], kind):
            return f"{key!r} should be a JSON {'object' if kind is dict else kind.__name__}"
    for name, image in data["images"].items():
        if not isinstance(image, dict) or not str(image.get("digest", "")).startswith("sha256:"):
            return f"image {name!r} has no sha256 digest"
    for url, item in data["downloads"].items():
        if not isinstance(item, dict) or not _is_sha256(item.get("sha256")):
            return f"download {url!r} has no sha256"
    for step in data["python"]:
        if not isinstance(step, dict) or not isinstance(step.get("packages"), list):
            return "a python step has no 'packages' list"
        for pkg in step["packages"]:
            if not isinstance(pkg, dict) or not _is_sha256(pkg.get("sha256")) or not pkg.get("name"):
                return f"python package {pkg!r} has no name or sha256"
    return ""


def _is_sha256(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def write_lock(path: str, lock: dict[str, Any]) -> None:
    """Write ``lock`` atomically (a half-written lock would break every locked build).

    Raises:
        UsageError: the directory is not writable.
    """
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(dumps(lock))
        os.replace(tmp, path)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from exc
