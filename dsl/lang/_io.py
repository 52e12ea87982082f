"""Primitives behind ``io.*``: copies and downloads at build time."""

from __future__ import annotations

from typing import Any

from dsl import rules
from dsl.ir import Copy, HttpDownload
from dsl.lang._recorder import Recorder
from dsl.lang._registry import primitive
from dsl.lang._unpack import Call, Checksum, ContextPath, HttpUrl, ImagePath, Image, PathInImage, Str, optional


@primitive("io.copy")
def copy(rec: Recorder, call: Call, source: Any, target: Any, image: Any, legacy: dict[str, Any]) -> None:
    # envd v0 spelled these host_path/envd_path; accept them with a warning
    if "host_path" in legacy or "envd_path" in legacy:
        rec.warn(call.span, "io.copy(host_path=..., envd_path=...) is v0 syntax; use io.copy(source=..., target=...)")
        source = legacy.pop("host_path", source)
        target = legacy.pop("envd_path", target)
    for name in sorted(legacy):
        call.fail(f"unexpected argument '{name}'", "io.copy takes source, target and image")
    # from another image the source is a path in that image; else one in the build context
    source = call.arg("source", source, ContextPath if image in ("", None) else PathInImage)
    target = call.arg("target", target, ImagePath)
    image = call.arg("image", image, optional(Image))
    call.check()
    rec.add_step(Copy(source=source, target=target, image=image, span=call.span))


@primitive("io.http")
def http(rec: Recorder, call: Call, url: Any, checksum: Any, filename: Any) -> None:
    url = call.arg("url", url, HttpUrl)
    checksum = call.arg("checksum", checksum, optional(Checksum))
    filename = call.arg("filename", filename, optional(Str))
    if url is not None and filename is not None:
        call.arg("filename", filename, lambda name: rules.download_name(url, name))
    call.check()
    rec.add_step(HttpDownload(url=url, checksum=checksum, filename=filename, span=call.span))
