"""Primitives behind ``io.*``: copies and downloads at build time."""

from __future__ import annotations

import posixpath
from typing import Any

from dsl.ir import Copy, HttpDownload
from dsl.lang._recorder import Recorder
from dsl.lang._registry import primitive
from dsl.lang._unpack import MAX_PATH, Call, Checksum, HttpUrl, ImageRef, Invalid, Str, matching, shown

_FileName = matching(r"[A-Za-z0-9._+-][A-Za-z0-9._+@-]*", "a plain file name (no '/')")


def _target(value: Any) -> str:
    text = Str(value, MAX_PATH)
    if not text.strip():
        raise Invalid("must not be empty")
    if "\x00" in text or "\n" in text:
        raise Invalid("path contains a NUL or newline character")
    return text


def _context_path(value: Any) -> str:
    text = _target(value)
    if posixpath.normpath(text.lstrip("/")).split("/")[0] == "..":
        raise Invalid(f"expected a path inside the build context, got {shown(text)}", "io.copy copies from the build context; it cannot reach outside it")
    return text


@primitive("io.copy")
def copy(rec: Recorder, call: Call, source: Any, target: Any, image: Any, legacy: dict[str, Any]) -> None:
    # envd v0 spelled these host_path/envd_path; accept them with a warning
    if "host_path" in legacy or "envd_path" in legacy:
        rec.warn(call.span, "io.copy(host_path=..., envd_path=...) is v0 syntax; use io.copy(source=..., target=...)")
        source = legacy.pop("host_path", source)
        target = legacy.pop("envd_path", target)
    for name in sorted(legacy):
        call.fail(f"unexpected argument '{name}'", "io.copy takes source, target and image")
    source = call.arg("source", source, _context_path)
    target = call.arg("target", target, _target)
    image = call.arg("image", image, lambda v: "" if v in ("", None) else ImageRef(v))
    call.check()
    rec.add_step(Copy(source=source, target=target, image=image, span=call.span))


@primitive("io.http")
def http(rec: Recorder, call: Call, url: Any, checksum: Any, filename: Any) -> None:
    url = call.arg("url", url, HttpUrl)
    checksum = call.arg("checksum", checksum, lambda v: "" if v in ("", None) else Checksum(v))
    filename = call.arg("filename", filename, lambda v: "" if v in ("", None) else _FileName(v))
    call.check()
    rec.add_step(HttpDownload(url=url, checksum=checksum, filename=filename, span=call.span))
