"""VS Code extensions without a version: Open VSX's latest one, looked up when the image is built.

The lookup cannot happen at compile time (compiling is hermetic), so it is split in two steps:

1. **resolve**: Open VSX's metadata of the extension (``GET /api/<publisher>/<name>``, the latest
   version) is an LLB http source; a step reads from it the version, the ``.vsix`` URL for the
   image's platform and the URL of the ``.sha256`` Open VSX publishes beside it, and writes
   those three lines to a small file. The JSON is read with the image's ``python3``, else
   ``jq``, else ``jq`` installed with apt, apk or dnf in this step only (its filesystem is
   thrown away: the install step mounts nothing of it but the small file).
2. **install** (the extensions step of ``_vscode``): mounts that file read-only, downloads the
   ``.vsix`` and the ``.sha256`` (``curl``, else ``python3``, else ``curl`` installed),
   checks one against the other (``_verify.check_lines``) and unpacks.

Why two steps: the metadata changes with every download of the extension (its
``downloadCount``), so a step that mounts it reruns on almost every build. BuildKit keys a
read-only mount by its content, so the install step, and everything after it, reruns only
when the three lines change, i.e. when a new version is published.

Which file: Open VSX's JSON names the latest version of any platform. For a universal
extension (``targetPlatform`` ``universal``, or our platform) its ``files.download`` and
``files.sha256`` are used; a platform-specific one has a ``downloads`` entry per platform of
that version, and ``linux-x64`` / ``linux-arm64`` / ``linux-armhf`` is taken with the ``.sha256``
beside it (Open VSX names them ``<publisher>.<name>-<version>@<platform>.vsix`` / ``.sha256``).
Anything missing or malformed fails the step with a message naming the extension and the URL.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from compiler.llb._context import Context
from compiler.llb._ops import BindMount
from compiler.llb._script import install_packages
from compiler.llb._state import State, http
from dsl.ir import Span

WHAT = "install.vscode_extensions"
META_DIR = "/run/dsl/vsix-meta"  # in the resolve step: one metadata.json per extension
RESOLVED_DIR = "/tmp/dsl-vscode-latest"  # written by the resolve step: one file per extension
LATEST_DIR = "/run/dsl/vsix-latest"  # RESOLVED_DIR as the install step sees it
_PLATFORMS = {"amd64": "linux-x64", "arm64": "linux-arm64", "arm": "linux-armhf"}
_JQ = {"apt": ("jq",), "apk": ("jq",), "dnf": ("jq",)}
_CURL = {"apt": ("curl",), "apk": ("curl",), "dnf": ("curl",)}

# Both readers print the same five lines (version, targetPlatform, files.download,
# files.sha256, downloads[<platform>]); a value that is not a string of printable ASCII without
# spaces is printed empty, so the shell never sees a newline or a quote from the server.
_PY_FIELDS = """\
import json, re, sys
try:
    with open(sys.argv[1], encoding="utf-8") as f:
        d = json.load(f)
except (OSError, ValueError) as e:
    sys.exit(f"not JSON: {e}")
if not isinstance(d, dict):
    sys.exit("not a JSON object")
o = lambda v: v if isinstance(v, dict) else {}
s = lambda v: v if isinstance(v, str) and re.fullmatch(r"[!-~]+", v) else ""
files = o(d.get("files"))
print(s(d.get("version")), s(d.get("targetPlatform")), s(files.get("download")),
      s(files.get("sha256")), s(o(d.get("downloads")).get(sys.argv[2])), sep="\\n")
"""
_JQ_FIELDS = """\
def s: if type == "string" and test("^[!-~]+$") then . else "" end;
def o: if type == "object" then . else {} end;
if type != "object" then error("not a JSON object") else
  (.version | s), (.targetPlatform | s), (.files | o | .download | s), (.files | o | .sha256 | s),
  (.downloads | o | .[$p] | s)
end
"""
_PY_FETCH = """\
import shutil, sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=600) as r, open(sys.argv[2], "wb") as f:
        shutil.copyfileobj(r, f)
except Exception as e:
    sys.exit(f"{sys.argv[1]}: {e}")
"""


def platform_name(ctx: Context) -> str:
    """Open VSX's name of the image's platform (``linux-x64``, ``linux-arm64``, ...)."""
    arch = ctx.platform.architecture
    return _PLATFORMS.get(arch, f"linux-{arch}")


def metadata_url(api: str, publisher: str, name: str) -> str:
    """Open VSX's metadata of the latest version of an extension."""
    return f"{api}/{publisher}/{name}"


def resolve(ctx: Context, state: State, api: str,
            extensions: Sequence[tuple[int, str, str, Span | None]]) -> State:
    """The resolve step for ``(index, publisher, name, span)`` of every unversioned extension;
    its filesystem holds ``RESOLVED_DIR/<index>`` (version, .vsix URL, .sha256 URL)."""
    q = shlex.quote
    lines = [
        f"W={WHAT}; P={q(platform_name(ctx))}",
        "dsl_bad() { echo \"dsl: $W: $X: Open VSX's metadata ($MU) $1\" >&2; exit 1; }",
        'if command -v python3 >/dev/null 2>&1; then',
        f'dsl_fields() {{ python3 -c {q(_PY_FIELDS)} "$1" "$2"; }}',
        'else',
        'if ! command -v jq >/dev/null 2>&1; then',
        install_packages(_JQ, f"{WHAT} (to read Open VSX's metadata)", ca_bundle=ctx.ca_bundle),
        'fi',
        f'dsl_fields() {{ jq -r --arg p "$2" {q(_JQ_FIELDS)} "$1"; }}',
        'fi',
        f'rm -rf {RESOLVED_DIR}; mkdir -p {RESOLVED_DIR}',
    ]
    mounts = list(ctx.apt_caches())
    for index, publisher, name, span in extensions:
        url = metadata_url(api, publisher, name)
        meta = http(url, filename="metadata.json", platform=ctx.platform,
                    name=f"download Open VSX metadata of {publisher}.{name}", span=span)
        mounts.append(BindMount(f"{META_DIR}/{index}", meta.output))
        lines += _select_lines(index, f"{publisher}.{name}", url)
    names = " ".join(f"{p}.{n}" for _, p, n, _ in extensions)
    return ctx.run(state, lines, name=f"{WHAT}: look up the latest {names}"[:200],
                   span=extensions[0][3], mounts=tuple(mounts))


def _select_lines(index: int, ext_id: str, url: str) -> list[str]:
    """Read one extension's metadata; write version, .vsix URL and .sha256 URL."""
    q = shlex.quote
    fields = f"{RESOLVED_DIR}/{index}.fields"
    return [
        f"X={q(ext_id)}; MU={q(url)}",
        (f'dsl_fields {META_DIR}/{index}/metadata.json "$P" > {fields} || '
         'dsl_bad "is not the JSON object Open VSX answers for an extension"'),
        f'{{ read -r v; read -r tp; read -r dl; read -r sha; read -r pdl; }} < {fields}',
        f'rm -f {fields}',
        '[ -n "$v" ] || dsl_bad "names no version"',
        '[[ $v =~ ^[0-9][A-Za-z0-9.+-]*$ ]] || dsl_bad "names an unusable version \'${v:0:80}\'"',
        'if [ -z "$tp" ] || [ "$tp" = universal ] || [ "$tp" = "$P" ]; then vsix=$dl; sums=$sha',
        'elif [ -n "$pdl" ]; then vsix=$pdl; sums=${pdl%.vsix}.sha256',
        'else dsl_bad "has no universal or $P build of version $v"; fi',
        '[[ $vsix =~ ^https?://[^[:space:]]+\\.vsix$ ]] || dsl_bad "gives no .vsix URL for version $v"',
        '[[ $sums =~ ^https?://[^[:space:]]+\\.sha256$ ]] || dsl_bad "gives no .sha256 URL for version $v"',
        f"printf '%s\\n' \"$v\" \"$vsix\" \"$sums\" > {RESOLVED_DIR}/{index}",
    ]


def fetch_tool_lines(ctx: Context) -> list[str]:
    """Define ``dsl_fetch URL FILE`` in the install step: curl, else python3, else curl
    installed with the image's package manager."""
    curl = 'dsl_fetch() { curl -fsSL --retry 3 -o "$2" "$1"; }'
    return [
        'if command -v curl >/dev/null 2>&1; then',
        curl,
        'elif command -v python3 >/dev/null 2>&1; then',
        f'dsl_fetch() {{ python3 -c {shlex.quote(_PY_FETCH)} "$1" "$2"; }}',
        'else',
        install_packages(_CURL, f"{WHAT} (to download the latest extensions)", ca_bundle=ctx.ca_bundle),
        curl,
        'fi',
    ]


def download_lines(index: int, publisher: str, name: str) -> list[str]:
    """In the install step: download what the resolve step named and set the variables of
    ``_verify.check_lines`` (``A S N U W``) and ``F``, the extension's folder."""
    q = shlex.quote
    stem = f"{publisher}.{name}"
    fail = 'echo "dsl: $W: cannot download $1" >&2; exit 1'
    return [
        f'W={WHAT}; {{ read -r V; read -r VU; read -r SU; }} < {LATEST_DIR}/{index}',
        f'F={q(stem.lower())}-"$V"',
        'K=/tmp/dsl-vsix-download; rm -rf "$K"; mkdir -p "$K"',
        f'dsl_get() {{ dsl_fetch "$1" "$2" || {{ {fail}; }}; }}',
        'dsl_get "$VU" "$K/extension.vsix"; dsl_get "$SU" "$K/extension.sha256"',
        f'A="$K/extension.vsix"; S="$K/extension.sha256"; N={q(stem)}-"$V".vsix; U=$SU',
    ]
