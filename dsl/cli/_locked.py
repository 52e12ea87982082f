"""``--locked`` for ``dsl build``, ``dsl compile`` and ``dsl up``: the lock's pins, or exit 2.

A build file that asks for something the lock lacks, or a lock made from other inputs, stops
the command before anything is built: the problems (the first with its ``file:line:col`` when a
build-file call caused it), a diff of what the lock was made for against what the build file
asks for now, and the ``dsl lock`` command that fixes it.
"""

from __future__ import annotations

import os
import shlex
from typing import TYPE_CHECKING, Any

import click

from dsl.errors import BuildFileError, UsageError

if TYPE_CHECKING:  # `dsl build`'s up-to-date path imports this module: keep it light
    from compiler.llb import Pins
    from dsl.ir import Environment

LOCKED_HELP = ("Use only what build.envd.lock pins (base digest, hashed Python distributions, "
               "checksums); exit 2 if it is missing or stale.")


def lock_command(path: str, from_: str | None, platform: str | None = None, *, check: bool = False) -> str:
    """The ``dsl lock`` command line that (re)writes the lock for these options."""
    words = ["dsl", "lock"]
    if path not in (".", ""):
        words.append(path)
    if from_:
        words += ["-f", from_]
    if platform:
        words += ["--platform", platform]
    if check:
        words.append("--check")
    return " ".join(shlex.quote(w) for w in words)


def current_wanted(env: Environment, evaluation: Any, *, platform: str) -> Any:
    """What ``env`` asks the lock for on ``platform`` (its requests and inputs hash)."""
    from compiler.llb import lock_requests
    from dsl.lock import context_files, inputs_of, wanted

    build_file = os.path.abspath(env.source)
    root = os.path.dirname(build_file)
    files = list(dict.fromkeys([build_file, *evaluation.files]))
    inputs = inputs_of(root=root, files=files, context_files=context_files(env, root),
                       includes=evaluation.includes, function=env.function or "build", platform=platform)
    return wanted(env, lock_requests(env, platform=platform), inputs)


def locked_pins(env: Environment, evaluation: Any, *, path: str, from_: str | None,
                platform: str | None) -> tuple[Pins, dict[str, Any]]:
    """The pins of a current lock, with the lock (its ``inputs.platform`` is the platform).

    Raises:
        UsageError: there is no lock (exit 2).
        BuildFileError: the lock is stale or lacks what a build-file call asks for (exit 2;
            the diff is printed first, on stderr).
    """
    from dsl.lock import lock_path, pins_of, read_lock, staleness

    lp = lock_path(env.source)
    lock = read_lock(lp)
    fix = lock_command(path, from_, platform)
    if lock is None:
        raise UsageError(f"--locked: there is no {os.path.basename(lp)} beside {env.source}",
                         hint=f"write it with `{fix}` and commit it")
    want = current_wanted(env, evaluation, platform=platform or lock["inputs"].get("platform", ""))
    stale = staleness(lock, want, build_name=os.path.basename(env.source))
    if stale:
        click.echo(stale.diff, err=True, nl=False)
        message, span = stale.problems[0]
        more = len(stale.problems) - 1
        raise BuildFileError(f"--locked: {message}" + (f" (and {more} more difference{'s' * (more > 1)})" if more else ""),
                             span=span, hint=f"update the lock with `{fix}`")
    return pins_of(lock, want), lock



def check_local_images(bk: Any, lock: dict[str, Any], *, path: str, from_: str | None) -> None:
    """A ``local image`` pin (an image only in dockerd's store, locked by its image ID) holds
    only while its tag still names that image: checked before the build.

    Raises:
        BuildFileError: the tag now names another image (exit 2, with the fix).
    """
    from dsl.engines.buildkit import LOCAL_IMAGE, docker_image_id

    for written, image in sorted(lock["images"].items()):
        if image.get("source") != LOCAL_IMAGE:
            continue
        now = docker_image_id(bk.docker_host or "", image["reference"])
        if now != image["digest"]:
            raise BuildFileError(
                f"--locked: the local image {written} is now {now or 'gone'}, build.envd.lock pins {image['digest']}",
                hint=f"move the pin with `{lock_command(path, from_)} --update {shlex.quote(written)}`, or tag "
                     "the locked image again")


def reproducible_attrs(bk: Any, epoch: int) -> dict[str, str]:
    """Exporter attributes that make a locked build's image digest reproducible, where the
    builder supports them (BuildKit ≥ 0.13); on older builders a note says why it cannot be.
    """
    from dsl.engines.buildkit import builder_version, version_at_least

    version = builder_version(bk)
    if version_at_least(version, (0, 13)):
        return {"source-date-epoch": str(epoch), "rewrite-timestamp": "true"}
    click.echo(f"note: BuildKit {version or '< 0.11 (dockerd 20.10 has v0.8)'} cannot rewrite layer "
               "timestamps: the layers' file mtimes and the image's history times are this build's, so the "
               "image digest differs from build to build; the files and their contents are the same "
               "(see docs/lock.md)", err=True)
    return {}
