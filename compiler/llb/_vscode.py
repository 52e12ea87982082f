"""``install.vscode_extensions``: extensions from Open VSX, verified, unpacked for VS Code.

An id with a version (``publisher.name-1.2.3``, envd's syntax: the part after the last ``-``
is the version when it starts with a digit) is pinned: Open VSX publishes
``<publisher>.<name>-<version>.sha256`` (the bare hex digest) beside every ``.vsix``; both are
http sources and the step compares them before unpacking. An id without one gets Open VSX's
latest version, looked up when the image is built, as envd does (``_vscode_latest``: a look-up
step reads Open VSX's metadata, the install step downloads the ``.vsix`` and the ``.sha256``
it names and compares them the same way).

A ``.vsix`` is a zip whose ``extension/`` directory is what VS Code Server loads from
``~/.vscode-server/extensions/<publisher>.<name>-<version>/`` (envd's layout). The zip is
unpacked with the image's ``unzip``, else ``python3 -m zipfile``, else ``unzip`` is installed
with the image's package manager (apt, apk or dnf) first.
"""

from __future__ import annotations

import shlex

from compiler._checks import guard
from compiler.llb import _vscode_latest as latest_ext
from compiler.llb._context import Context
from compiler.llb._dev import owner
from compiler.llb._layout import DEV_HOME
from compiler.llb._ops import BindMount
from compiler.llb._script import install_packages
from compiler.llb._state import State, http
from compiler.llb._verify import SINGLE, check_lines, verify_lines
from dsl import rules
from dsl.ir import Span, VscodeExtensions

OPEN_VSX_API = "https://open-vsx.org/api"
EXTENSIONS_DIR = f"{DEV_HOME}/.vscode-server/extensions"
_UNZIP = {"apt": ("unzip",), "apk": ("unzip",), "dnf": ("unzip",)}
_WHAT = "install.vscode_extensions"


def parse(ext_id: str, span: Span | None) -> tuple[str, str, str]:
    """``publisher.name[-version]`` → its three parts (version ``""``: the latest).

    Raises:
        CompileError: not an extension id (``rules.vscode_extension``).
    """
    return guard(rules.vscode_extension_parts, ext_id, what="VS Code extension id", span=span)


def extension_ids(ctx: Context) -> list[tuple[tuple[str, str, str], Span | None]]:
    """Every requested extension once (the first call that names it), in declaration order."""
    seen: dict[str, tuple[tuple[str, str, str], Span | None]] = {}
    for step in ctx.env.build.steps_of(VscodeExtensions):
        for ext_id in step.extensions:
            parts = parse(ext_id, step.span)
            seen.setdefault(_folder(parts) if parts[2] else f"{_folder(parts)}@latest", (parts, step.span))
    return list(seen.values())


def _folder(parts: tuple[str, str, str]) -> str:
    publisher, name, version = parts
    stem = f"{publisher.lower()}.{name.lower()}"
    return f"{stem}-{version}" if version else stem


def install(ctx: Context, state: State) -> State:
    """One step: verify and unpack every extension, then give the tree to the dev user.

    Extensions without a version get a resolve step before it (``_vscode_latest``); with
    versions only, the step is what it always was.
    """
    exts = extension_ids(ctx)
    if not exts:
        return state
    q = shlex.quote
    lines = [
        'if command -v unzip >/dev/null 2>&1; then',
        "dsl_unzip() { unzip -q \"$1\" 'extension/*' -d \"$2\"; }",
        'elif command -v python3 >/dev/null 2>&1; then',
        'dsl_unzip() { python3 -m zipfile -e "$1" "$2"; }',
        'else',
        install_packages(_UNZIP, f"{_WHAT} (to unpack .vsix files)", ca_bundle=ctx.ca_bundle),
        "dsl_unzip() { unzip -q \"$1\" 'extension/*' -d \"$2\"; }",
        'fi',
        f"D={EXTENSIONS_DIR}",
        'mkdir -p "$D"',
    ]
    mounts = list(ctx.apt_caches())
    latest = [(i, p, n, span) for i, ((p, n, v), span) in enumerate(exts) if not v]
    if latest:
        resolved = latest_ext.resolve(ctx, state, OPEN_VSX_API, latest)
        mounts.append(BindMount(latest_ext.LATEST_DIR, resolved.output, selector=latest_ext.RESOLVED_DIR))
        lines += latest_ext.fetch_tool_lines(ctx)
    for i, (parts, span) in enumerate(exts):
        publisher, name, version = parts
        if version:
            lines += _pinned(i, parts, span, ctx, mounts)
            folder = q(_folder(parts))
        else:
            lines += latest_ext.download_lines(i, publisher, name)
            lines += check_lines(SINGLE)
            folder = '"$F"'
        lines += [
            'T=/tmp/dsl-vsix; rm -rf "$T"; mkdir -p "$T"',
            'dsl_unzip "$A" "$T"',
            f'[ -d "$T/extension" ] || {{ echo "dsl: {_WHAT}: $N has no extension/ directory" >&2; exit 1; }}',
            f'rm -rf "$D"/{folder}',
            f'mv "$T/extension" "$D"/{folder}',
            'rm -rf "$T"',
        ]
        if not version:
            lines.append('rm -rf "$K"')
    if ctx.env.build.base.dev and (o := owner(ctx.env)).uid != 0:
        lines.append(f"chown -R {o.uid}:{o.gid} {DEV_HOME}/.vscode-server")
    names = " ".join(_folder(p) if p[2] else f"{_folder(p)} (latest)" for p, _ in exts)
    return ctx.run(state, lines, name=f"{_WHAT} {names}"[:200], span=exts[0][1], mounts=tuple(mounts))


def _pinned(i: int, parts: tuple[str, str, str], span: Span | None, ctx: Context,
            mounts: list) -> list[str]:
    """A versioned extension: the .vsix and its .sha256 are http sources (appended to
    ``mounts``); the lines verify one against the other."""
    publisher, name, version = parts
    stem = f"{publisher}.{name}-{version}"
    url = f"{OPEN_VSX_API}/{publisher}/{name}/{version}/file/{stem}"
    vsix = http(url + ".vsix", filename=f"{stem}.vsix", platform=ctx.platform,
                name=f"download {stem}.vsix", span=span)
    sums = http(url + ".sha256", filename=f"{stem}.sha256", platform=ctx.platform,
                name=f"download {stem}.sha256", span=span)
    mounts += [BindMount(f"/run/dsl/vsix/{i}", vsix.output), BindMount(f"/run/dsl/vsix-sha256/{i}", sums.output)]
    return verify_lines(archive=f"/run/dsl/vsix/{i}/{stem}.vsix", sums=f"/run/dsl/vsix-sha256/{i}/{stem}.sha256",
                        name=f"{stem}.vsix", sums_url=url + ".sha256", what=_WHAT, shape=SINGLE)
