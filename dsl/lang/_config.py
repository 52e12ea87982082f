"""Primitives behind ``config.*``: mirrors, services, GPUs, ownership."""

from __future__ import annotations

import re
from typing import Any

from dsl.ir import JUPYTER_TOKEN_ENV, Jupyter, Owner, PipIndex, PipPackages, Repo, TextSetting
from dsl.lang._recorder import Recorder
from dsl.lang._registry import primitive
from dsl.lang._unpack import (
    Bool,
    Call,
    Command,
    HostPort,
    MAX_URL,
    HttpUrl,
    Invalid,
    NonEmptyStr,
    OptStr,
    OwnerId,
    Str,
    int_range,
    list_of,
    optional,
    shown,
)


def _condarc(value: Any) -> str:
    """``config.conda_channel``: the .condarc text, written as given; it must be a YAML
    mapping, or conda and micromamba would fail on it in the middle of a build."""
    text = NonEmptyStr(value)
    import yaml  # only build files with a conda channel pay for it

    try:
        data = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1} of the text)" if mark is not None else ""
        raise Invalid(f"the .condarc text is not valid YAML{where}", _CONDARC_HINT) from exc
    if not isinstance(data, dict):
        raise Invalid(f"expected the text of a .condarc (a YAML mapping), got {shown(text)}", _CONDARC_HINT)
    return text


_CONDARC_HINT = 'e.g. config.conda_channel(channel="channels: [conda-forge]"), or a triple-quoted .condarc'
# https://host/path, ssh://[user@]host/path, git://host/path or git's scp form user@host:path
_REPO_URL = re.compile(r"(?:(?:https?|ssh|git)://[^\s/@]+(?:@[^\s/@]+)?(?:/\S*)?|[\w.-]+@[\w.-]+:\S+)")


def _repo_url(value: Any) -> str:
    """``config.repo(url)``: a git URL (credentials are refused before, by _credentials: the
    URL lands in labels and manifests)."""
    text = Str(value, MAX_URL)
    if not _REPO_URL.fullmatch(text):
        raise Invalid(f"expected a git repository URL (https://host/org/repo, ssh://..., git@host:org/repo), got {shown(text)}")
    return text


def _text_setting(field: str, arg: str, unpack: Any = NonEmptyStr) -> Any:
    def handler(rec: Recorder, call: Call, **args: Any) -> None:
        value = call.arg(arg, args[arg], unpack)
        if field == "conda_channel" and not rec.conda_enabled:
            call.fail("requires install.conda() earlier", "call install.conda() before config.conda_channel()")
        call.check()
        rec.settings[field] = TextSetting(value=value, span=call.span)

    return handler


primitive("config.apt_source")(_text_setting("apt_source", "source"))
primitive("config.conda_channel")(_text_setting("conda_channel", "channel", _condarc))
primitive("config.cran_mirror")(_text_setting("cran_mirror", "url", HttpUrl))
primitive("config.julia_pkg_server")(_text_setting("julia_pkg_server", "url", HttpUrl))


@primitive("config.pip_index")
def pip_index(rec: Recorder, call: Call, url: Any, extra_url: Any, trust: Any) -> None:
    url = call.arg("url", url, HttpUrl)
    extra = call.arg("extra_url", extra_url, optional(HttpUrl))
    trust = call.arg("trust", trust, Bool)
    call.check()
    rec.settings["pip_index"] = PipIndex(url=url, extra_url=extra, trust=trust, span=call.span)


@primitive("config.jupyter")
def jupyter(rec: Recorder, call: Call, token: Any, port: Any, legacy: dict[str, Any]) -> None:
    if "password" in legacy:
        rec.warn(call.span, "config.jupyter(password=...) is deprecated; use token=...")
        password = legacy.pop("password")
        if token is None:
            token = password
    for name in sorted(legacy):
        call.fail(f"unexpected argument '{name}'", "config.jupyter takes token and port")
    token = call.arg("token", token, lambda v: None if v is None else Str(v))
    port = call.arg("port", 0 if port is None else port, HostPort)
    call.check()
    if token:  # a credential: never stored, so never in an image, manifest or log
        rec.warn(call.span, "config.jupyter: the token given here is not stored in the image; "
                            f"give it at run time as {JUPYTER_TOKEN_ENV} (see docs/llb.md)")
    rec.runtime["jupyter"] = Jupyter(auth=token != "", host_port=port, span=call.span)
    # envd adds one extra pip group "jupyter"; keep a single one at the first call's place
    if not any(isinstance(s, PipPackages) and s.packages == ("jupyter",) for s in rec.steps):
        rec.add_step(PipPackages(packages=("jupyter",), span=call.span))


@primitive("config.gpu")
def gpu(rec: Recorder, call: Call, count: Any) -> None:
    count = call.arg("count", count, int_range(0, 1024, "GPU count"))
    call.check()
    rec.runtime["gpu"] = count


@primitive("config.shm_size")
def shm_size(rec: Recorder, call: Call, size: Any) -> None:
    size = call.arg("size", size, int_range(1, 1 << 20, "size in MB"))
    call.check()
    rec.runtime["shm_size_mb"] = size


@primitive("config.rstudio_server")
def rstudio_server(rec: Recorder, call: Call) -> None:
    rec.runtime["rstudio"] = True


@primitive("config.entrypoint")
def entrypoint(rec: Recorder, call: Call, args: Any) -> None:
    args = call.arg("args", args, list_of(Command))
    if args == ():
        call.fail("argument 'args': expected at least one item")
    call.check()
    rec.settings["entrypoint"] = args
    rec.entrypoint_span = call.span


@primitive("config.repo")
def repo(rec: Recorder, call: Call, url: Any, description: Any) -> None:
    url = call.arg("url", url, _repo_url)
    description = call.arg("description", description, OptStr)
    call.check()
    rec.settings["repo"] = Repo(url=url, description=description, span=call.span)


@primitive("config.owner")
def owner(rec: Recorder, call: Call, uid: Any, gid: Any) -> None:
    uid = call.arg("uid", uid, OwnerId)
    gid = call.arg("gid", gid, OwnerId)
    call.check()
    rec.settings["owner"] = Owner(uid=uid, gid=gid, span=call.span)

