"""``dsl lock``: resolve what a build looks up at build time, and write build.envd.lock.

Without an existing lock everything is resolved. With one, pins whose request did not change
are kept (a base tag is not looked up again, pip keeps the locked versions as constraints)
and ``--update NAME`` moves just NAME; ``--check`` writes nothing and exits 1 when the lock
is stale or a locked tag now points elsewhere (a CI gate). See docs/lock.md.
"""

from __future__ import annotations

import os
import shlex
import sys
import tempfile
import time
from importlib import metadata
from typing import Any

import click

from dsl.cli._builder_options import builder_options, connect_from_options
from dsl.cli._options import from_option, path_argument
from dsl.errors import UsageError


@click.command("lock")
@path_argument
@from_option
@builder_options
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if the lock is stale or a locked tag moved.")
@click.option("--update", "updates", multiple=True, metavar="NAME",
              help="Move this pin only: an image as written, a Python distribution or a download URL "
                   "(repeatable).")
@click.option("--platform", help="Platform to resolve for, os/arch[/variant] (default: the builder's first).")
@click.option("--ca-bundle", type=click.Path(exists=True, dir_okay=False), envvar="DSL_CA_BUNDLE",
              help="Extra CA bundle trusted by the resolving steps (default $DSL_CA_BUNDLE).")
@click.option("--progress", type=click.Choice(("auto", "tty", "plain", "json", "quiet")), default="auto",
              show_default=True, help="Progress output of the resolving build.")
@click.option("--timeout", type=click.FloatRange(min=1), default=1800, show_default=True,
              help="Seconds the resolution may take.")
def lock(path: str, from_: str | None, builder: str | None, tls_ca: str | None, tls_cert: str | None,
         tls_key: str | None, check: bool, updates: tuple[str, ...], platform: str | None,
         ca_bundle: str | None, progress: str, timeout: float) -> None:
    """Pin PATH's base image, Python distributions and downloads in build.envd.lock."""
    from dsl.cli._load import load_evaluation
    from dsl.lock import lock_path, read_lock

    env, evaluation = load_evaluation(path, from_)
    lp = lock_path(env.source)
    old = read_lock(lp)
    if check and updates:
        raise UsageError("--check and --update do not go together", hint="check first, then update")
    if check:  # what the files say is checked before the builder is asked anything
        want = _offline_check(env, evaluation, old, path=path, from_=from_, platform=platform)
        with connect_from_options(builder, tls_ca, tls_cert, tls_key) as bk:
            sys.exit(_drift(bk, want, old, path=path, from_=from_, platform=platform))
    from dsl.cli._locked import current_wanted

    release = _release_names(current_wanted(env, evaluation, platform=platform or "linux/amd64"), old, set(updates))
    with connect_from_options(builder, tls_ca, tls_cert, tls_key) as bk:
        new = _resolve(bk, env, evaluation, old, release=release, platform=platform,
                       ca_bundle=ca_bundle, progress=progress, timeout=timeout)
    _write(lp, old, new)


def _offline_check(env: Any, evaluation: Any, old: dict[str, Any] | None, *, path: str, from_: str | None,
                   platform: str | None) -> Any:
    """Exit 1 when there is no lock or it does not fit the build file; else what it asks for."""
    from dsl.cli._locked import current_wanted, lock_command
    from dsl.lock import staleness

    fix = lock_command(path, from_, platform)
    if old is None:
        click.echo(f"no build.envd.lock beside {env.source}; write it with `{fix}`", err=True)
        sys.exit(1)
    want = current_wanted(env, evaluation, platform=platform or old["inputs"].get("platform", ""))
    stale = staleness(old, want, build_name=os.path.basename(env.source))
    if stale:
        click.echo(stale.diff, nl=False)
        for message, span in stale.problems:
            click.echo(f"{span}: {message}" if span else message, err=True)
        click.echo(f"build.envd.lock is out of date; update it with `{fix}`", err=True)
        sys.exit(1)
    return want


def _drift(bk: Any, want: Any, old: dict[str, Any], *, path: str, from_: str | None, platform: str | None) -> int:
    """1 when the locked base tag now resolves to another digest (the lock is current otherwise)."""
    from dsl.cli._locked import lock_command
    from dsl.engines.buildkit import resolve_image_digest

    fix = lock_command(path, from_, platform)
    image, _span = want.image
    pinned = old["images"][image]
    now = resolve_image_digest(bk, want.reference, platform=pinned.get("platform") or None)
    if now.digest != pinned["digest"]:
        update = f"{fix} --update {shlex.quote(image)}"
        click.echo(f"{image}: locked {pinned['digest']}, the builder now resolves it to {now.digest}")
        click.echo(f"build.envd.lock is out of date: {image} moved; move the pin with `{update}`", err=True)
        return 1
    click.echo("build.envd.lock is up to date", err=True)
    return 0


def _release_names(want: Any, old: dict[str, Any] | None, updates: set[str]) -> tuple[set[str], set[str]]:
    """Which pins may move: (images/downloads keys, Python names). Checks every --update NAME.

    Raises:
        UsageError: an --update NAME the lock and the build file do not know.
    """
    from dsl.lock import canonical_name

    known_images = {want.image[0], *((old or {}).get("images") or {})}
    old_downloads = (old or {}).get("downloads") or {}
    known_downloads = ({url for _w, url, _s, _sh, _sp in want.downloads} | set(old_downloads)
                       | {what for what, _u, _s, _sh, _sp in want.downloads})  # a builtin: all its downloads
    known_python = {p["name"] for step in (old or {}).get("python", []) for p in step.get("packages", [])}
    keys, python = set(), set()
    for name in sorted(updates):
        if name in known_images or name in known_downloads:
            keys.add(name)
        elif canonical_name(name) in known_python:
            python.add(canonical_name(name))
        else:
            raise UsageError(f"--update {name}: not a pin of build.envd.lock",
                             hint="give an image as written in base(), a locked Python distribution, a "
                                  "download URL or its builtin (install.go, ...); see build.envd.lock")
    for _name, args, _span in want.pip:  # a step whose request changed may move what it names
        if old is None or args not in [s.get("args") for s in old.get("python", [])]:
            python |= _requested_names(args)
    return keys, python


def _requested_names(args: str) -> set[str]:
    import re

    from dsl.lock import canonical_name

    names = set()
    for word in shlex.split(args):
        m = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", word)
        if m and not word.startswith("-"):
            names.add(canonical_name(m.group(0)))
    return names


def _resolve(bk: Any, env: Any, evaluation: Any, old: dict[str, Any] | None, *,
             release: tuple[set[str], set[str]], platform: str | None, ca_bundle: str | None, progress: str,
             timeout: float) -> dict[str, Any]:
    from compiler.llb import base_image_ref, lock_requests
    from dsl.cli._locked import current_wanted
    from dsl.engines.buildkit import resolve_image_digest
    from dsl.rules import parse_image_ref

    written = base_image_ref(env) if env.build.cuda is not None else env.build.base.image
    old_image = (old or {}).get("images", {}).get(written)
    keys, python_release = release
    if old_image and written not in keys and (platform is None or old_image.get("platform") == platform):
        image = dict(old_image)
    else:
        from dsl.engines.buildkit import LOCAL_IMAGE

        resolved = resolve_image_digest(bk, base_image_ref(env), platform=platform)
        pinned = f"{parse_image_ref(base_image_ref(env)).name}@{resolved.digest}"
        image = {"digest": resolved.digest, "platform": resolved.platform, "source": resolved.source,
                 # an image ID is no registry digest: the tag stays, and the build checks its ID
                 "reference": base_image_ref(env) if resolved.source == LOCAL_IMAGE else pinned}
    target = image["platform"]
    want = current_wanted(env, evaluation, platform=target)
    requests = lock_requests(env, platform=target)
    downloads, missing = {}, []
    for i, (what, url, sums_url, shape, _span) in enumerate(requests.downloads):
        kept = (old or {}).get("downloads", {}).get(url)
        if kept and url not in keys and what not in keys:
            downloads[url] = kept
        else:
            missing.append((i, what, url, sums_url, shape))
    python = _kept_python(old, want, image, python_release)
    if python is None or missing:
        tree = _solve_resolution(bk, env, old, image, want, python_release, ca_bundle=ca_bundle,
                                 progress=progress, timeout=timeout, platform=target)
        downloads.update(_downloads_from(tree, missing))
        if python is None:
            python = _python_from(tree, want, os.path.dirname(os.path.abspath(env.source)))
    return {"downloads": downloads, "envdsl": _version(), "images": {written: image}, "inputs": want.inputs,
            "lock_version": 1, "python": python, "source_date_epoch": 0}


def _kept_python(old: dict[str, Any] | None, want: Any, image: dict[str, Any],
                 release: set[str]) -> list[dict[str, Any]] | None:
    """The old lock's Python pins when nothing they depend on changed; None = resolve again."""
    if not want.pip:
        return []
    if old is None or release or [s.get("args") for s in old["python"]] != [a for _n, a, _s in want.pip]:
        return None
    if image["digest"] != next(iter(old["images"].values()), {}).get("digest"):
        return None
    if old["inputs"].get("files") != want.inputs["files"]:  # a requirements file or wheel changed
        return None
    return old["python"]


def _solve_resolution(bk: Any, env: Any, old: dict[str, Any] | None, image: dict[str, Any], want: Any,
                      release: set[str], *, ca_bundle: str | None, progress: str, timeout: float,
                      platform: str) -> str:
    """Run the resolution build; the directory it exported (removed at exit)."""
    import atexit
    import shutil

    from compiler.llb import Resolution, compile_resolution
    from dsl.engines.buildkit import (
        BuildRequest,
        OutputSpec,
        Plan,
        ProgressTracker,
        build,
        make_renderer,
    )
    from dsl.cli._runtime_base import runtime_base
    from dsl.lock import constraints_text

    constraints = constraints_text((old or {}).get("python", []), release=release) if old else ""
    resolution = Resolution(images={want.reference: image["reference"]},
                            constraints=tuple(constraints for _ in want.pip))

    def plan(caps: frozenset[str], target: str) -> Plan:
        res = compile_resolution(env, resolution, caps=caps, platform=target, ca_bundle=bool(ca_bundle),
                                 runtime_base=runtime_base())
        assert res is not None  # only called when there is something to resolve
        return Plan(res.definition, None, res.vertex_spans)

    scratch = tempfile.mkdtemp(prefix="dsl-lock-")
    atexit.register(shutil.rmtree, scratch, True)
    dest = os.path.join(scratch, "tree")
    context_dir = os.path.dirname(os.path.abspath(env.source))
    request = BuildRequest(plan=plan, output=OutputSpec(type="local", dest=dest), context_dir=context_dir,
                           secrets={"dsl-ca-bundle": ca_bundle} if ca_bundle else {}, platform=platform,
                           timeout=timeout)
    tracker = ProgressTracker()
    build(bk, request, renderer=make_renderer(progress, tracker), tracker=tracker)
    return dest


def _downloads_from(tree: str, missing: list[tuple[int, str, str, str, str]]) -> dict[str, dict[str, str]]:
    from dsl.lock import sha256_from_sums

    out = {}
    for i, what, url, sums_url, shape in missing:
        with open(os.path.join(tree, "sums", str(i)), encoding="utf-8", errors="replace") as f:
            text = f.read()
        sha = sha256_from_sums(text, name=url.rsplit("/", 1)[-1], shape=shape, url=sums_url)
        out[url] = {"builtin": what, "checksum_url": sums_url, "sha256": sha}
    return out


def _python_from(tree: str, want: Any, context_dir: str) -> list[dict[str, Any]]:
    from dsl.engines.buildkit import read_reports
    from dsl.lock import packages_of_report

    reports = read_reports(tree)
    out = []
    for i, (name, args, _span) in enumerate(want.pip):
        report = reports.get(str(i))
        if report is None:
            raise UsageError(f"{name}: the resolution wrote no pip report",
                             hint="pip 22.2 or newer is needed in the image (pip install --report)")
        out.append({"args": args, "step": name,
                    "packages": packages_of_report(report, step=name, context_dir=context_dir)})
    return out


def _version() -> str:
    try:
        return metadata.version("envdsl")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def _write(path: str, old: dict[str, Any] | None, new: dict[str, Any]) -> None:
    """Write ``new`` unless it pins the same as ``old`` (then the file is left as it is)."""
    from dsl.lock import write_lock

    def same(a: dict[str, Any], b: dict[str, Any]) -> bool:
        drop = ("source_date_epoch", "envdsl")
        return {k: v for k, v in a.items() if k not in drop} == {k: v for k, v in b.items() if k not in drop}

    if old is not None and same(old, new):
        click.echo(f"{os.path.basename(path)} is up to date", err=True)
        return
    # a new fixed time for reproducible layers, whole seconds (what SOURCE_DATE_EPOCH holds)
    new["source_date_epoch"] = int(time.time())
    write_lock(path, new)
    n_py = sum(len(s["packages"]) for s in new["python"])
    click.echo(f"wrote {path}: {len(new['images'])} image, {n_py} Python distributions, "
               f"{len(new['downloads'])} downloads", err=True)
    for key, image in new["images"].items():
        before = ((old or {}).get("images") or {}).get(key, {}).get("digest")
        if before != image["digest"]:
            click.echo(f"{key}: {before + ' → ' if before else ''}{image['digest']} ({image['source']}, "
                       f"{image['platform']})")
