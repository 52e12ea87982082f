"""``install.vscode_extensions``: extensions from Open VSX, verified, unpacked for VS Code.

Each id must carry its version (``publisher.name-1.2.3``, envd's syntax: the part after the
last ``-`` is the version when it starts with a digit). envd looks up the latest version on the
host at build time; we cannot (compiling is hermetic) and would not (the download could not be
pinned), so an id without a version is a compile error that says how to pin it.

Open VSX publishes ``<publisher>.<name>-<version>.sha256`` (the bare hex digest) beside every
``.vsix``; both are http sources and the step compares them before unpacking. A ``.vsix`` is a
zip whose ``extension/`` directory is what VS Code Server loads from
``~/.vscode-server/extensions/<publisher>.<name>-<version>/`` (envd's layout). The zip is
unpacked with the image's ``unzip``, else ``python3 -m zipfile``, else ``unzip`` is installed
with the image's package manager (apt, apk or dnf) first.
"""

from __future__ import annotations

import re
import shlex

from compiler.llb._context import Context
from compiler.llb._dev import owner
from compiler.llb._layout import DEV_HOME
from compiler.llb._ops import BindMount
from compiler.llb._script import install_packages
from compiler.llb._state import State, http
from compiler.llb._verify import SINGLE, verify_lines
from dsl.errors import CompileError
from dsl.ir import Span, VscodeExtensions

OPEN_VSX_API = "https://open-vsx.org/api"
EXTENSIONS_DIR = f"{DEV_HOME}/.vscode-server/extensions"
_ID = re.compile(r"([A-Za-z0-9][A-Za-z0-9-]*)\.([A-Za-z0-9][A-Za-z0-9._-]*)")
_VERSION = re.compile(r"[0-9][A-Za-z0-9._]*")
_UNZIP = {"apt": ("unzip",), "apk": ("unzip",), "dnf": ("unzip",)}
_WHAT = "install.vscode_extensions"


def parse(ext_id: str, span: Span | None) -> tuple[str, str, str]:
    """``publisher.name-version`` → its three parts.

    Raises:
        CompileError: not an extension id, or one without a version.
    """
    publisher, _, rest = ext_id.partition(".")
    name, dash, version = rest.rpartition("-")  # envd: the last '-' after the publisher
    if not dash or not _VERSION.fullmatch(version):
        name, version = rest, ""
    m = _ID.fullmatch(f"{publisher}.{name}")
    if m is None:
        raise CompileError(f"{_WHAT}: {ext_id!r} is not an extension id", span=span,
                           hint="write 'publisher.name-version', e.g. 'ms-python.python-2024.8.1'")
    if not version:
        raise CompileError(
            f"{_WHAT}: {ext_id!r} has no version, and the latest one cannot be pinned and verified",
            span=span, hint=f"add the version you want: '{ext_id}-<version>' (versions are listed at "
                            f"https://open-vsx.org/extension/{ext_id.replace('.', '/', 1)})")
    return m.group(1), m.group(2), version


def extension_ids(ctx: Context) -> list[tuple[tuple[str, str, str], Span | None]]:
    """Every requested extension once (the first call that names it), in declaration order."""
    seen: dict[str, tuple[tuple[str, str, str], Span | None]] = {}
    for step in ctx.env.build.steps_of(VscodeExtensions):
        for ext_id in step.extensions:
            parts = parse(ext_id, step.span)
            seen.setdefault(_folder(parts), (parts, step.span))
    return list(seen.values())


def _folder(parts: tuple[str, str, str]) -> str:
    publisher, name, version = parts
    return f"{publisher.lower()}.{name.lower()}-{version}"


def install(ctx: Context, state: State) -> State:
    """One step: verify and unpack every extension, then give the tree to the dev user."""
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
    for i, (parts, span) in enumerate(exts):
        publisher, name, version = parts
        stem = f"{publisher}.{name}-{version}"
        url = f"{OPEN_VSX_API}/{publisher}/{name}/{version}/file/{stem}"
        vsix = http(url + ".vsix", filename=f"{stem}.vsix", platform=ctx.platform,
                    name=f"download {stem}.vsix", span=span)
        sums = http(url + ".sha256", filename=f"{stem}.sha256", platform=ctx.platform,
                    name=f"download {stem}.sha256", span=span)
        mounts += [BindMount(f"/run/dsl/vsix/{i}", vsix.output), BindMount(f"/run/dsl/vsix-sha256/{i}", sums.output)]
        lines += verify_lines(archive=f"/run/dsl/vsix/{i}/{stem}.vsix", sums=f"/run/dsl/vsix-sha256/{i}/{stem}.sha256",
                              name=f"{stem}.vsix", sums_url=url + ".sha256", what=_WHAT, shape=SINGLE)
        folder = q(_folder(parts))
        lines += [
            'T=/tmp/dsl-vsix; rm -rf "$T"; mkdir -p "$T"',
            'dsl_unzip "$A" "$T"',
            f'[ -d "$T/extension" ] || {{ echo "dsl: {_WHAT}: $N has no extension/ directory" >&2; exit 1; }}',
            f'rm -rf "$D"/{folder}',
            f'mv "$T/extension" "$D"/{folder}',
            'rm -rf "$T"',
        ]
    if ctx.env.build.base.dev and (o := owner(ctx.env)).uid != 0:
        lines.append(f"chown -R {o.uid}:{o.gid} {DEV_HOME}/.vscode-server")
    names = " ".join(_folder(p) for p, _ in exts)
    return ctx.run(state, lines, name=f"{_WHAT} {names}"[:200], span=exts[0][1], mounts=tuple(mounts))
