"""Primitives behind ``base``, ``shell``, ``run``, ``git_config``, ``include`` and ``print``."""

from __future__ import annotations

import re
from typing import Any

from dsl.ir import BaseImage, GitConfig, Run
from dsl.lang._recorder import Recorder
from dsl.lang._registry import primitive
from dsl.lang._unpack import Bool, Call, Command, Image, Invalid, OptStr, Str, list_of, nonblank, optional, shown

_V0_LANGUAGE = re.compile(r"(python|r|julia)(\d+(\.\d+)*)?", re.I)


def v0_base_hint(legacy: dict[str, Any]) -> str:
    """The v1 equivalent of a v0 ``base(os=..., language=...)`` call (envd's upgrade guide)."""
    language = str(legacy.get("language") or "python")
    m = _V0_LANGUAGE.fullmatch(language)
    lang, version = (m.group(1).lower(), m.group(2)) if m else ("python", None)
    if lang == "r":
        return "write: base(dev=True) + install.r_lang()"
    if lang == "julia":
        return "write: base(dev=True) + install.julia()"
    python = f'install.python(version="{version}")' if version and version != "3" else "install.python()"
    return f"write: base(dev=True) + install.conda() + {python}"


@primitive("base")
def base(rec: Recorder, call: Call, image: Any, dev: Any, legacy: dict[str, Any]) -> None:
    if {"os", "language"} & set(legacy):
        raise call.error(
            "v0 syntax: base(os=..., language=...) was removed in envd v1",
            hint=v0_base_hint(legacy),
        )
    for name in sorted(legacy):
        call.fail(f"unexpected argument '{name}'", "base takes image and dev")
    image = call.arg("image", image, optional(Image))
    dev = call.arg("dev", dev, Bool)
    call.check()
    rec.base = BaseImage(image=image or rec.base.image, dev=dev, span=call.span)


SHELLS = ("bash", "zsh", "fish")


def _shell_name(value: Any) -> str:
    name = (OptStr(value) or "bash").lower()  # envd lower-cases the name
    if name not in SHELLS:
        raise Invalid(
            f"shell {shown(name)} is not supported; use \"bash\", \"zsh\" or \"fish\"",
            "another shell can be installed with install.apt_packages and started from bash",
        )
    return name


@primitive("shell")
def shell(rec: Recorder, call: Call, name: Any) -> None:
    name = call.arg("name", name, _shell_name)
    call.check()
    rec.shell = name
    rec.shell_span = call.span


@primitive("run")
def run(rec: Recorder, call: Call, commands: Any, mount_host: Any) -> None:
    commands = call.arg("commands", commands, list_of(nonblank(Command)))
    mount_host = call.arg("mount_host", mount_host, Bool)
    call.check()
    if commands:
        rec.add_step(Run(commands=commands, mount_host=mount_host, span=call.span))


@primitive("git_config")
def git_config(rec: Recorder, call: Call, name: Any, email: Any, editor: Any) -> None:
    values = {k: call.arg(k, v, OptStr) for k, v in (("name", name), ("email", email), ("editor", editor))}
    call.check()
    rec.settings["git_config"] = GitConfig(**values, span=call.span)


@primitive("include")
def include(rec: Recorder, call: Call, git: Any) -> None:
    url = call.arg("git", git, Str)
    call.check()
    failure = rec.include_errors.get(url)
    if failure:
        raise call.error(failure[0], hint=failure[1])
    raise call.error(
        "the repository URL must be a string literal, e.g. include(\"https://github.com/tensorchord/envdlib\")",
        hint="the repository is fetched before evaluation, so its URL cannot be computed",
    )


@primitive("print")
def print_(rec: Recorder, call: Call, text: Any) -> None:
    rec.messages.append(f"{call.span}: {text}" if call.span else str(text))

