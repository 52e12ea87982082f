"""The dev runtime bundle: one LLB stage, built once per builder, joined into any base image.

The stage starts from a pinned Debian image (``RUNTIME_BASE``, or the caller's choice), installs
OpenSSH, busybox-static, git, curl and patchelf with apt, and gathers every program the dev
layer needs, with the libraries and the dynamic loader they use, under ``RUNTIME_PREFIX``
(see templates/runtime.sh.j2). Its ops depend on nothing of the user's environment (no build
file PATH, no CA mount, fixed cache ids), so every environment on a builder shares one cached
result, and the digest of its exec op names the bundle's content: ``bundle_digest``, the
``dev.envdsl.runtime.bundle`` label of every dev image.

Joined with a MergeOp on builders that have it (the layer is reused as is), else copied from
the stage with a FileOp (BuildKit v0.8 in dockerd 20.10).
"""

from __future__ import annotations

from functools import cache

from compiler.llb._layout import RUNTIME_PREFIX
from compiler.llb._marshal import marshal
from compiler.llb._ops import CacheMount, CacheSharing, CopyFrom, Platform
from compiler.llb._state import State, image, merge, scratch

#: Debian bookworm by digest: the same bundle on every machine until this pin is moved.
RUNTIME_BASE = ("docker.io/library/debian:bookworm-slim@sha256:"
                "4b50eb66f977b4062683ff434ef18ac191da862dbe966961bc11990cf5791a8d")
RUNTIME_PACKAGES = ("openssh-server", "openssh-client", "openssh-sftp-server", "busybox-static",
                    "git", "curl", "ca-certificates", "procps", "patchelf")
_ENV = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "DEBIAN_FRONTEND=noninteractive", "LANG=C.UTF-8", "LC_ALL=C.UTF-8")
STAGE_NAME = "dev runtime: OpenSSH, busybox, git, curl under " + RUNTIME_PREFIX


def runtime_stage(platform: Platform, base: str | None = None) -> State:
    """The stage whose ``RUNTIME_PREFIX`` holds the bundle (the rest of it is never exported).

    Args:
        platform: the target platform (the bundle holds that architecture's programs).
        base: the Debian image to build it from; None = the pinned ``RUNTIME_BASE``.
    """
    state = image(base or RUNTIME_BASE, platform=platform)
    for item in _ENV:
        key, value = item.split("=", 1)
        state = state.with_env(key, value)
    arch = platform.architecture + (f"-{platform.variant}" if platform.variant else "")
    caches = (CacheMount("/var/cache/apt", f"dsl-runtime-apt-cache-{arch}", CacheSharing.LOCKED),
              CacheMount("/var/lib/apt", f"dsl-runtime-apt-lists-{arch}", CacheSharing.LOCKED))
    return state.run(("/bin/sh", "-c", "set -eu\n" + _script()), mounts=caches, name=STAGE_NAME)


@cache
def _script() -> str:
    from compiler.llb._dev import templates

    return templates().get_template("runtime.sh.j2").render(
        prefix=RUNTIME_PREFIX, packages=" ".join(RUNTIME_PACKAGES))


def bundle_digest(platform: Platform, base: str | None = None) -> str:
    """The digest that names the bundle's content (its stage's exec op): what the image label
    carries and ``dsl up --image`` compares."""
    return marshal(runtime_stage(platform, base)).digests[-1]


def join_runtime(state: State, *, parallel: bool, base: str | None = None) -> State:
    """``state`` with the bundle at ``RUNTIME_PREFIX``: a merge of the bundle's own layer when
    the builder has MergeOp (``parallel``), else a copy out of the stage."""
    stage = runtime_stage(state.platform, base)
    copy = CopyFrom(stage.output, RUNTIME_PREFIX, RUNTIME_PREFIX, dir_copy_contents=True,
                    allow_wildcard=False)
    if not parallel:
        return state.file(copy, name=f"dev: copy the runtime to {RUNTIME_PREFIX}")
    layer = scratch(state.platform).file(copy, name=f"dev: the runtime's layer ({RUNTIME_PREFIX})")
    return merge([state, layer], name="[internal] add the dev runtime")
