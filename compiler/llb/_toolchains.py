"""Language toolchains other than Python: downloaded archives unpacked under /opt or /usr/local.

Each is independent of apt (no dpkg database writes), so the parallel shape builds them
side by side with the system packages. R comes from apt and is part of the system stage.

Every archive is checked against its publisher's checksum file before it is unpacked: both are
http sources mounted into the step, and ``_verify`` compares them (see there for the file
shapes). rustup then verifies the toolchain it downloads itself, and uv the Python it installs.
``install.codex`` without a version takes GitHub's ``releases/latest`` of openai/codex: both
files come from the same release, so the check holds (a release published between the two
fetches makes it fail, never pass wrongly).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from compiler.llb import _validate as check
from compiler.llb._context import Context
from compiler.llb._dev import owner
from compiler.llb._layout import DEV_HOME
from compiler.llb._ops import BindMount, Mkdir, Mkfile
from compiler.llb._state import State, http
from compiler.llb._verify import LISTING, SINGLE, Shape, verify_lines
from dsl.errors import CompileError
from dsl.ir import (
    CodexInstall,
    GoInstall,
    JuliaInstall,
    JuliaPackages,
    NodejsInstall,
    PixiInstall,
    RLangInstall,
    RPackages,
    RustInstall,
    UvInstall,
)

_GNU = {"amd64": "x86_64", "arm64": "aarch64"}
_NODE = {"amd64": "x64", "arm64": "arm64"}
CRAN_DEFAULT = "https://cran.rstudio.com"
JULIA_VERSION = "1.10.10"
UV_VERSION = "0.9.22"
PIXI_VERSION = "0.62.2"
PIXI_CONFIG = "/etc/pixi/config.toml"
CODEX_RELEASES = "https://github.com/openai/codex/releases"
CODEX_HOME = "/opt/codex"
DOWNLOAD_DIR = "/run/dsl/download"
CHECKSUM_DIR = "/run/dsl/checksum"
_LABEL = {CodexInstall: "install.codex", GoInstall: "install.go", NodejsInstall: "install.nodejs",
          JuliaInstall: "install.julia", UvInstall: "install.uv", PixiInstall: "install.pixi",
          RustInstall: "install.rust"}


@dataclass(frozen=True, slots=True)
class Archive:
    """One toolchain download: the archive, the publisher's checksum file, the unpack line."""

    url: str
    sums_url: str
    shape: Shape  # of the checksum file (see _verify)
    unpack: str  # shell line; the verified archive is at $A

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    @property
    def sums_filename(self) -> str:
        return self.sums_url.rsplit("/", 1)[-1]


def _github(url: str, unpack: str) -> Archive:
    """A GitHub release asset with its ``<asset>.sha256`` beside it."""
    return Archive(url, url + ".sha256", SINGLE, unpack)


def archive(step: object, arch: str) -> Archive | None:
    """The download of a toolchain step for ``arch``; None for steps that download nothing."""
    gnu = _GNU.get(arch, arch)
    if isinstance(step, GoInstall):
        v = check.version(step.version, "go", step.span)
        url = f"https://go.dev/dl/go{v}.linux-{arch}.tar.gz"
        return Archive(url, url + ".sha256", SINGLE,
                       "rm -rf /usr/local/go && tar -C /usr/local -xzf \"$A\"")
    if isinstance(step, NodejsInstall):
        v = check.version(step.version, "nodejs", step.span)
        n = _NODE.get(arch, arch)
        return Archive(f"https://nodejs.org/dist/v{v}/node-v{v}-linux-{n}.tar.xz",
                       f"https://nodejs.org/dist/v{v}/SHASUMS256.txt", LISTING,
                       "mkdir -p /opt/nodejs && tar -C /opt/nodejs --strip-components=1 -xJf \"$A\"")
    if isinstance(step, JuliaInstall):
        minor = JULIA_VERSION.rsplit(".", 1)[0]
        jarch = {"amd64": "x64", "arm64": "aarch64"}.get(arch, arch)
        return Archive(f"https://julialang-s3.julialang.org/bin/linux/{jarch}/{minor}/"
                       f"julia-{JULIA_VERSION}-linux-{gnu}.tar.gz",
                       f"https://julialang-s3.julialang.org/bin/checksums/julia-{JULIA_VERSION}.sha256",
                       LISTING,
                       "mkdir -p /opt/julia && tar -C /opt/julia --strip-components=1 -xzf \"$A\"")
    if isinstance(step, UvInstall):
        return _github(f"https://github.com/astral-sh/uv/releases/download/{UV_VERSION}/"
                       f"uv-{gnu}-unknown-linux-gnu.tar.gz",
                       "tar -C /usr/local/bin --strip-components=1 -xzf \"$A\"")
    if isinstance(step, PixiInstall):
        return _github(f"https://github.com/prefix-dev/pixi/releases/download/v{PIXI_VERSION}/"
                       f"pixi-{gnu}-unknown-linux-musl.tar.gz",
                       "tar -C /usr/local/bin -xzf \"$A\"")
    if isinstance(step, CodexInstall):
        return _codex(step, arch)
    if isinstance(step, RustInstall):
        version = check.version(step.version, "rust", step.span) if step.version else "stable"
        url = f"https://static.rust-lang.org/rustup/dist/{gnu}-unknown-linux-gnu/rustup-init"
        return Archive(url, url + ".sha256", SINGLE,
                       "cp \"$A\" /tmp/rustup-init && chmod +x /tmp/rustup-init && "
                       "CARGO_HOME=/opt/rust RUSTUP_HOME=/opt/rust /tmp/rustup-init -y --no-modify-path "
                       f"--default-toolchain {shlex.quote(version)} && rm /tmp/rustup-init")
    return None


def _codex(step: CodexInstall, arch: str) -> Archive:
    """openai/codex's package archive (``bin/codex`` and the helpers it runs, e.g. its bundled
    bubblewrap and ripgrep) with the release's ``codex-package_SHA256SUMS`` listing; no version
    means GitHub's latest release. The package stays whole under /opt/codex (codex finds its
    helpers beside its own binary) and /usr/bin/codex, envd's path, links to it."""
    version = check.codex_version(step.version, step.span)
    if arch not in _GNU:
        raise CompileError(f"install.codex: openai/codex publishes Linux builds for amd64 and arm64, "
                           f"not {arch}", span=step.span, hint="build for linux/amd64 or linux/arm64")
    base = (f"{CODEX_RELEASES}/download/rust-v{version}" if version else f"{CODEX_RELEASES}/latest/download")
    return Archive(f"{base}/codex-package-{_GNU[arch]}-unknown-linux-musl.tar.gz",
                   f"{base}/codex-package_SHA256SUMS", LISTING,
                   f"rm -rf {CODEX_HOME} && mkdir -p {CODEX_HOME} && tar -C {CODEX_HOME} -xzf \"$A\" && "
                   f"{{ [ -x {CODEX_HOME}/bin/codex ] || {{ echo \"dsl: install.codex: $N has no bin/codex\" >&2; "
                   f"exit 1; }}; }} && ln -sfn {CODEX_HOME}/bin/codex /usr/bin/codex")


def archives(env_steps: tuple[object, ...], arch: str) -> list[tuple[str, Archive, object]]:
    """``(builtin, archive, step)`` of every toolchain download, in declaration order (what
    the lock records checksums for)."""
    return [(_LABEL[type(s)], a, s) for s in env_steps if (a := archive(s, arch)) is not None]


def toolchains(ctx: Context) -> list[tuple[str, object]]:
    """``(name, step)`` for every downloaded toolchain, in declaration order."""
    arch = ctx.platform.architecture
    return [(type(step).__name__, step) for step in ctx.env.build.steps if archive(step, arch) is not None]


def install(ctx: Context, state: State, step: object) -> State:
    """One toolchain: archive and checksum file are http sources mounted read-only; the step
    verifies the archive, then unpacks it."""
    a = archive(step, ctx.platform.architecture)
    assert a is not None
    span = getattr(step, "span", None)
    what = _LABEL[type(step)]
    if ctx.pins is not None:  # --locked: BuildKit checks the locked sha256 when it downloads
        sha256 = ctx.pins.downloads.get(a.url)
        if sha256 is None:
            raise CompileError(f"{what}: build.envd.lock has no checksum for {a.url}", span=span,
                               hint="run `dsl lock` to update build.envd.lock")
        dl = http(a.url, checksum=f"sha256:{sha256}", filename=a.filename, platform=ctx.platform,
                  name=f"download {a.filename}", span=span)
        state = ctx.run(state, [f"A={shlex.quote(DOWNLOAD_DIR + '/' + a.filename)}; N={shlex.quote(a.filename)}",
                                a.unpack], name=what, span=span, mounts=(BindMount(DOWNLOAD_DIR, dl.output),))
    else:
        dl = http(a.url, filename=a.filename, platform=ctx.platform, name=f"download {a.filename}", span=span)
        sums = http(a.sums_url, filename=a.sums_filename, platform=ctx.platform,
                    name=f"download {a.sums_filename}", span=span)
        lines = verify_lines(archive=f"{DOWNLOAD_DIR}/{a.filename}", sums=f"{CHECKSUM_DIR}/{a.sums_filename}",
                             name=a.filename, sums_url=a.sums_url, what=what, shape=a.shape)
        state = ctx.run(state, [*lines, a.unpack], name=what, span=span,
                        mounts=(BindMount(DOWNLOAD_DIR, dl.output), BindMount(CHECKSUM_DIR, sums.output)))
    if isinstance(step, UvInstall):
        state = _uv_python(ctx, state, step)
    if isinstance(step, PixiInstall):
        state = _pixi_config(state, step)
    return state


def _uv_python(ctx: Context, state: State, step: UvInstall) -> State:
    """``uv python install <v>`` as envd does: as the dev user in dev images (the Python lands
    in their home, where their ``uv`` looks), as root otherwise. uv checks the archive it
    downloads against the checksums built into uv."""
    version = check.version(step.python_version or "3.11", "python", step.span)
    runner = state
    if ctx.env.build.base.dev:
        o = owner(ctx.env)
        runner = state.with_env("HOME", DEV_HOME)
        if o.uid != 0:
            runner = runner.with_user(f"{o.uid}:{o.gid}")
    done = ctx.run(runner, [f"uv python install {shlex.quote(version)}"],
                   name=f"install.uv: python {version}", span=step.span)
    return state.with_output(done.output)


def pixi_config(step: PixiInstall) -> str:
    """``/etc/pixi/config.toml`` for the step's settings ("" when there are none).

    ``use_pixi_mirror``: conda.anaconda.org through prefix.dev, except conda-forge's label
    channels, which prefix.dev does not mirror (pixi takes the longest matching prefix).
    ``pypi_index``: the index pixi resolves PyPI dependencies from.
    """
    parts = []
    if step.use_pixi_mirror:
        parts.append("[mirrors]\n"
                     f"{_toml('https://conda.anaconda.org')} = [{_toml('https://prefix.dev/')}]\n"
                     f"{_toml('https://conda.anaconda.org/conda-forge/label')} = "
                     f"[{_toml('https://conda.anaconda.org/conda-forge/label')}]\n")
    if step.pypi_index:
        index = check.url(step.pypi_index, step.span)
        parts.append(f"[pypi-config]\nindex-url = {_toml(index)}\n")
    return "\n".join(parts)


def _pixi_config(state: State, step: PixiInstall) -> State:
    text = pixi_config(step)
    if not text:
        return state
    return state.file(Mkdir("/etc/pixi", 0o755), Mkfile(PIXI_CONFIG, text.encode(), 0o644),
                      name=f"install.pixi: {PIXI_CONFIG}", span=step.span)


def _toml(text: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def r_apt_packages(ctx: Context) -> tuple[str, ...]:
    """Debian packages ``install.r_lang`` needs (installed in the system stage)."""
    return ("r-base",) if ctx.env.build.steps_of(RLangInstall) else ()


def language_packages(ctx: Context, state: State) -> State:
    """R and Julia packages, one step per call."""
    cran = ctx.env.build.cran_mirror.value if ctx.env.build.cran_mirror else CRAN_DEFAULT
    for step in ctx.env.build.steps_of(RPackages):
        names = [check.r_package(p, step.span) for p in step.packages]
        repo = check.url(cran, step.span)
        expr = f'install.packages(c({", ".join(repr(n) for n in names)}), repos={repo!r})'
        state = ctx.run(state, [f"Rscript -e {shlex.quote(expr)}"],
                        name=f"install.r_packages {' '.join(names)}", span=step.span)
    server = ctx.env.build.julia_pkg_server  # config.julia_pkg_server: Pkg's package server
    pkg_env = f"JULIA_PKG_SERVER={shlex.quote(check.url(server.value, server.span))} " if server else ""
    for step in ctx.env.build.steps_of(JuliaPackages):
        names = [check.julia_package(p, step.span).removesuffix(".jl") for p in step.packages]
        expr = f'using Pkg; Pkg.add([{", ".join(chr(34) + n + chr(34) for n in names)}])'
        state = ctx.run(state, [f"{pkg_env}JULIA_DEPOT_PATH=/opt/julia/user_packages julia -e {shlex.quote(expr)}"],
                        name=f"install.julia_packages {' '.join(names)}", span=step.span)
    return state
