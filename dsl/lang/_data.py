"""Primitive behind ``data.envd``: a named data set, usable as ``runtime.mount(host_path=...)``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import starlark

from dsl.lang._recorder import Recorder
from dsl.lang._registry import primitive
from dsl.lang._unpack import Call, matching

DataName = matching(r"[A-Za-z0-9][A-Za-z0-9._-]*", "a data set name (letters, digits, '.', '_', '-')")


@dataclass(frozen=True)
class DataSource:
    """The value ``data.envd(name)`` returns; opaque to Starlark."""

    name: str


@primitive("data.envd")
def envd(rec: Recorder, call: Call, name: Any) -> Any:
    name = call.arg("name", name, DataName)
    call.check()
    return starlark.OpaquePythonObject(DataSource(name))
