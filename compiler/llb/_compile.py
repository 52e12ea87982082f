"""IR → LLB: envd's stage order, in a parallel or a sequential graph shape.

Order (facts: envd-language.md §b.2): base → apt sources → dev preparation (the runtime
bundle of _bundle.py, the user) →
system packages (and python3 for the venv) ∥ language toolchains → pip index → Python (the
first pip step creates the venv), conda, R, Julia packages → VS Code extensions → downloads
(io.http) → io.copy → dev finish (ownership, sshd config, entrypoint) → run() steps →
runtime.mount directories.

*Parallel* (builder has ``mergeop`` and ``diffop``): the system packages and every toolchain are
built from the same parent and joined with ``merge([parent, diff(parent, x), ...])``; downloads
are copied into scratch and merged. *Sequential* (BuildKit v0.8 in dockerd 20.10): the same
steps one after another. Both give the same files: the branches never write the same paths
(apt owns the dpkg database, toolchains live under /opt and /usr/local).
"""

from __future__ import annotations

from dataclasses import dataclass

from compiler.llb import _dev, _python, _toolchains, _vscode
from compiler.llb import _validate as check
from compiler.llb._context import Context
from compiler.llb._layout import CA_SECRET_ID, CONTEXT_NAME, DEV_HOME, DEV_USER, VENV, python_kind, workdir
from compiler.llb._marshal import marshal
from compiler.llb._ops import BindMount, CopyFrom, Mkdir, Mkfile, Platform
from compiler.llb._pins import Pins
from compiler.llb._refs import normalize_image_ref
from compiler.llb._script import apt_install
from compiler.llb._state import State, diff, http, image, merge, scratch
from dsl.errors import CompileError
from dsl.ir import (
    AptPackages,
    CondaPackages,
    Copy,
    Environment,
    HttpDownload,
    PipRequirements,
    PipWheel,
    Run,
    Span,
)
from dsl.rules import cuda_image

PARALLEL_CAPS = frozenset({"mergeop", "diffop"})


@dataclass(frozen=True, slots=True)
class LocalSource:
    """A directory the build session must serve: ``local://<name>`` with include patterns
    (empty = the whole directory)."""

    name: str
    include: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LLBResult:
    """The compiled build.

    Attributes:
        definition: marshalled ``pb.Definition`` (what ``buildctl build`` reads on stdin).
        base_image: normalised reference of the base image (for ResolveImageConfig).
        local_sources: directories the session must serve.
        secrets: secret ids the session must serve (the CA bundle's id when used).
        vertex_spans: op digest → build-file span, to point a failed step at its line.
        caps_used: every LLB capability the definition needs.
        shape: ``"parallel"`` or ``"sequential"``.
        names: op digest → vertex name.
        digests: op digests in definition order (terminal op excluded).
    """

    definition: bytes
    base_image: str
    local_sources: tuple[LocalSource, ...]
    secrets: tuple[str, ...]
    vertex_spans: dict[str, Span]
    caps_used: frozenset[str]
    shape: str
    names: dict[str, str]
    digests: tuple[str, ...]


def base_image_ref(env: Environment) -> str:
    """The normalised base image, with ``install.cuda``'s NVIDIA image swap applied.

    Raises:
        CompileError: the reference is malformed.
    """
    base, cuda = env.build.base, env.build.cuda
    try:
        if cuda is not None:
            return cuda_image(base.image, cuda.version, cuda.cudnn, dev=base.dev).normalized()
        return normalize_image_ref(base.image)
    except ValueError as exc:
        raise CompileError(str(exc), span=cuda.span if cuda is not None else base.span,
                           hint="e.g. base(image='debian:bookworm')") from exc


def compile_environment(
    env: Environment,
    *,
    caps: frozenset[str] = frozenset(),
    platform: str = "linux/amd64",
    ca_bundle: bool = False,
    sequential: bool | None = None,
    base_path: str | None = None,
    no_cache: bool = False,
    runtime_base: str | None = None,
    pins: Pins | None = None,
) -> LLBResult:
    """Compile an environment's build graph to a BuildKit LLB definition.

    Args:
        env: the environment (IR).
        caps: LLB capabilities of the builder (from its Ping); ``mergeop`` + ``diffop`` allow
            the parallel shape.
        platform: target platform ``os/arch[/variant]``.
        ca_bundle: mount the build-time CA bundle (secret ``dsl-ca-bundle``) into every step.
        sequential: force the sequential (True) or parallel (False) shape; None = from caps.
        base_path: the base image's PATH (from its config) to put after ours in every step;
            None = the default PATH (the image config merges the base PATH either way).
        no_cache: mark every op ``ignore_cache`` (every step runs again; digests unchanged).
        runtime_base: the Debian image the dev runtime bundle is built from (a local
            ``debian:bookworm`` where no registry is reachable); None = the pinned default.
        pins: ``--locked``: the base by digest, pip from the locked hashes, locked checksums
            (``compiler.llb._pins``); None = resolve everything at build time.

    Returns:
        The ``LLBResult``.

    Raises:
        CompileError: invalid input in the build graph (with its build-file span).
    """
    parallel = PARALLEL_CAPS <= caps if sequential is None else not sequential
    plat = Platform.parse(platform)
    if not plat.os:
        raise CompileError(f"invalid platform {platform!r}", hint="e.g. linux/amd64 or linux/arm64")
    ref = base_image_ref(env)
    include = _context_includes(env)
    ctx = Context(env, plat, ref, ca_bundle, context_paths=include or (), base_path=base_path,
                  runtime_base=runtime_base, pins=pins)
    state = _build(ctx, parallel)
    return _result(ctx, state, parallel, include, no_cache=no_cache)


def _result(ctx: Context, state: State, parallel: bool, include: tuple[str, ...] | None, *,
            no_cache: bool) -> LLBResult:
    m = marshal(state, no_cache=no_cache)
    uses_context = any(n == "load build context" for n in m.names.values())
    return LLBResult(
        definition=m.definition, base_image=ctx.base_source(),
        local_sources=(LocalSource(CONTEXT_NAME, include or ()),) if uses_context else (),
        secrets=(CA_SECRET_ID,) if ctx.ca_bundle else (), vertex_spans=m.spans, caps_used=m.caps,
        shape="parallel" if parallel else "sequential", names=m.names, digests=m.digests,
    )


def _context_includes(env: Environment) -> tuple[str, ...] | None:
    """Paths of the build context the build reads (None = the whole directory)."""
    paths: list[str] = []
    b = env.build
    if any(r.mount_host for r in b.steps_of(Run)):
        return None
    paths += [check.context_path(s.path, s.span) for s in b.steps_of(PipRequirements)[-1:]]
    paths += [check.context_path(s.path, s.span) for s in b.steps_of(PipWheel)]
    paths += [check.context_path(s.env_file, s.span) for s in b.steps_of(CondaPackages) if s.env_file]
    paths += [check.context_path(s.source, s.span) for s in b.steps_of(Copy) if not s.image]
    if "." in paths:
        return None
    return tuple(sorted(set(paths)))


def _build(ctx: Context, parallel: bool) -> State:
    env = ctx.env
    b = env.build
    state = _until_python(ctx, parallel)
    state = _python.packages(ctx, state, then=_dev.give_to_user(env, VENV))
    state = _toolchains.language_packages(ctx, state)
    state = _vscode.install(ctx, state)
    state = _downloads(ctx, state, parallel)
    state = _copies(ctx, state)
    if b.base.dev:
        state = _dev.finish(ctx, state)
    state = _runs(ctx, state)
    return _mount_dirs(ctx, state)


def _until_python(ctx: Context, parallel: bool) -> State:
    """The stages before the Python packages (what the lock's pip resolution runs on)."""
    b = ctx.env.build
    state = ctx.start(image(ctx.base_source(), platform=ctx.platform, span=b.base.span))
    if b.apt_source is not None:
        state = state.file(Mkfile("/etc/apt/sources.list", b.apt_source.value.encode()),
                           name="config.apt_source", span=b.apt_source.span)
    if b.base.dev:
        state = _dev.prepare(ctx, state, parallel=parallel)
    state = _system_and_languages(ctx, state, parallel)
    if b.pip_index is not None:
        state = state.file(Mkfile("/etc/pip.conf", _pip_conf(b.pip_index).encode()),
                           name="config.pip_index", span=b.pip_index.span)
    return state


def _system_and_languages(ctx: Context, parent: State, parallel: bool) -> State:
    """The apt stage and the toolchains: side by side (parallel) or one after another.

    The venv's python3 and pip (installed only if the image lacks them) are system packages:
    the apt step installs them, else a step of their own in its place (the dev layer never runs
    the image's package manager for itself).
    """
    apt = [check.apt_package(p, s.span) for s in ctx.env.build.steps_of(AptPackages) for p in s.packages]
    apt += list(_toolchains.r_apt_packages(ctx))
    python = python_kind(ctx.env) == "venv"
    branches: list = []
    if apt:
        span = ctx.env.build.steps_of(AptPackages)[0].span if ctx.env.build.steps_of(AptPackages) else None
        pkgs = tuple(dict.fromkeys(apt))
        branches.append(lambda st: ctx.run(
            st, ["command -v apt-get >/dev/null 2>&1 || { echo 'dsl: install.apt_packages needs "
                 "an apt-based base image (apt-get not found)' >&2; exit 1; }",
                 apt_install(pkgs, ca_bundle=ctx.ca_bundle),
                 *(_python.python_lines(ctx, apt_only=True) if python else ())],
            name=f"install.apt_packages {' '.join(pkgs)}"[:200], span=span, mounts=ctx.apt_caches()))
    elif python:
        branches.append(lambda st: _python.ensure_python(ctx, st))
    branches.append(lambda st: _python.toolchain(ctx, st))
    for _, step in _toolchains.toolchains(ctx):
        branches.append(lambda st, step=step: _toolchains.install(ctx, st, step))
    if not parallel:
        for branch in branches:
            parent = branch(parent)
        return parent
    built = [st for st in (branch(parent) for branch in branches) if st.output is not parent.output]
    if len(built) <= 1:
        return built[0] if built else parent
    layers = [diff(parent, st, name="[internal] changes of one stage") for st in built]
    return merge([parent, *layers], name="[internal] system packages and language toolchains")


def _pip_conf(idx) -> str:
    url = check.url(idx.url, idx.span)
    lines = ["[global]", f"index-url = {url}"]
    hosts = [url]
    if idx.extra_url:
        lines.append(f"extra-index-url = {check.url(idx.extra_url, idx.span)}")
        hosts.append(idx.extra_url)
    if idx.trust:
        names = [h.split("://", 1)[1].split("/", 1)[0].split("@")[-1].split(":")[0] for h in hosts]
        lines.append("trusted-host = " + " ".join(dict.fromkeys(names)))
    return "\n".join(lines) + "\n"


def _owner(ctx: Context):
    return _dev.owner(ctx.env) if ctx.env.build.base.dev else None


def _downloads(ctx: Context, state: State, parallel: bool) -> State:
    steps = ctx.env.build.steps_of(HttpDownload)
    if not steps:
        return state
    copies = []
    for s in steps:
        url = check.url(s.url, s.span)
        name = check.download_name(url, s.filename, s.span)
        src = http(url, checksum=check.checksum(s.checksum, s.span), filename=name,
                   platform=ctx.platform, span=s.span, name=f"io.http {url}")
        copies.append(CopyFrom(src.output, name, f"{DEV_HOME}/extra_source/{name}", owner=_owner(ctx)))
    if not parallel:
        return state.file(*copies, name="io.http: copy downloads", span=steps[0].span)
    files = scratch(ctx.platform).file(*copies, name="io.http: downloads", span=steps[0].span)
    return merge([state, files], name="[internal] add downloads")


def _copies(ctx: Context, state: State) -> State:
    for c in ctx.env.build.steps_of(Copy):
        target = check.image_path(c.target, c.span)
        if c.image:
            try:
                src_ref = normalize_image_ref(c.image)
            except ValueError as exc:
                raise CompileError(str(exc), span=c.span) from exc
            src, path = image(src_ref, platform=ctx.platform, span=c.span), check.path_in_image(c.source, c.span)
        else:
            src, path = ctx.context(), check.context_path(c.source, c.span)
        state = state.file(CopyFrom(src.output, path, target, owner=_owner(ctx)),
                           name=f"io.copy {c.source} {c.target}" + (f" from {c.image}" if c.image else ""),
                           span=c.span)
    return state


def _runs(ctx: Context, state: State) -> State:
    runs = ctx.env.build.steps_of(Run)
    if not runs:
        return state
    wd = workdir(ctx.env)
    if not ctx.env.build.base.dev:
        state = state.file(Mkdir(wd), name=f"mkdir {wd}", span=runs[0].span)
    else:
        o = _dev.owner(ctx.env)
        if o.uid != 0:
            state = state.with_user(f"{o.uid}:{o.gid}").with_env("USER", DEV_USER)
        state = state.with_env("HOME", DEV_HOME)
    state = state.with_cwd(wd)
    for r in runs:
        lines = [check.shell_command(c, r.span) for c in r.commands]
        if not lines:
            continue
        mounts = (BindMount(wd, ctx.context().output),) if r.mount_host else ()
        state = ctx.run(state, lines, name=("run " + "; ".join(r.commands))[:200], span=r.span,
                        mounts=mounts)
    return state


def _mount_dirs(ctx: Context, state: State) -> State:
    # A named volume takes the owner of the image's directory at its mount point when first
    # used (a missing one is root's), so runtime.docker.mount volumes get the directory too.
    mounts = [*ctx.env.runtime.mounts, *(d for d in ctx.env.runtime.docker.mounts if not d.source)]
    if not mounts:
        return state
    dirs = [Mkdir(check.mount_path(m.target, m.span), owner=_owner(ctx)) for m in mounts]
    return state.file(*dirs, name="runtime.mount directories", span=mounts[0].span)
