"""What every stage of one compilation shares: the environment, platform, options, caches.

``Stage`` helpers add the CA-bundle secret mount to every exec step and name vertices, so the
stage modules only say what to run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from compiler.llb._layout import CA_BUNDLE_PATH, CA_SECRET_ID, CONTEXT_NAME, build_env
from compiler.llb._ops import BindMount, CacheMount, CacheSharing, MountSpec, Platform, SecretMount
from compiler.llb._pins import Pins, Resolution, noise_cleanup
from compiler.llb._script import bash
from compiler.llb._state import State, local
from dsl.errors import CompileError
from dsl.ir import Environment, Span
from dsl.rules import parse_image_ref

_CA_ENV = ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "CONDA_SSL_VERIFY")
CONTEXT_MOUNT = "/run/dsl/context"


BUILD_PIP_CACHE = "/root/.cache/pip"  # pip's default cache for the build steps' root user


@dataclass
class Context:
    """Per-compilation settings and the build-context source (made once, shared by steps)."""

    env: Environment
    platform: Platform
    base_ref: str
    ca_bundle: bool
    context_paths: tuple[str, ...] = ()  # include patterns of local://context; () = whole dir
    base_path: str | None = None  # the base image's PATH, when its config is known
    runtime_base: str | None = None  # the dev runtime bundle's Debian image; None = the pinned one
    pins: Pins | None = None  # --locked: what the lock fixes (compiler.llb._pins)
    resolution: Resolution | None = None  # dsl lock: pip steps report what they install
    _local: State | None = field(default=None, repr=False)

    @property
    def arch(self) -> str:
        return self.platform.architecture + (f"-{self.platform.variant}" if self.platform.variant else "")

    def cache_key(self) -> str:
        """``<distro>-<arch>``: caches are shared by every project on the same base distro."""
        ref = parse_image_ref(self.base_ref)
        tag = ref.tag or ("" if ref.digest else "latest")
        name = ref.path.rsplit("/", 1)[-1] + (f"-{tag}" if tag else "")
        return re.sub(r"[^a-z0-9._-]+", "-", name.lower()) + f"-{self.arch}"

    def base_source(self) -> str:
        """The reference the base image is read from: the lock's digest when there is one.

        Raises:
            CompileError: ``--locked`` and the lock does not pin this image.
        """
        images = self.pins.images if self.pins is not None else (
            self.resolution.images if self.resolution is not None else {})
        pinned = images.get(self.base_ref)
        if pinned is None and self.pins is not None:
            raise CompileError(f"build.envd.lock does not pin the base image {self.base_ref}",
                               span=self.env.build.base.span, hint="run `dsl lock` to update build.envd.lock")
        return pinned or self.base_ref

    def apt_caches(self) -> tuple[MountSpec, ...]:
        key = self.cache_key()
        return (CacheMount("/var/cache/apt", f"dsl-apt-cache-{key}", CacheSharing.LOCKED),
                CacheMount("/var/lib/apt", f"dsl-apt-lists-{key}", CacheSharing.LOCKED))

    def pip_cache(self) -> MountSpec:
        # pip's cache directory inside the build container (pip steps run as root there), not a
        # path of the machine running dsl
        return CacheMount(BUILD_PIP_CACHE, f"dsl-pip-cache-{self.arch}", CacheSharing.SHARED)

    def conda_cache(self, prefix: str) -> MountSpec:
        return CacheMount(f"{prefix}/pkgs", f"dsl-conda-pkgs-{self.arch}", CacheSharing.LOCKED)

    def context(self) -> State:
        """``local://context``: the build directory, served by the client session."""
        if self._local is None:
            self._local = local(CONTEXT_NAME, include=self.context_paths,
                                shared_key_hint=CONTEXT_NAME, platform=self.platform,
                                vertex_name="load build context")
        return self._local

    def context_mount(self) -> MountSpec:
        return BindMount(CONTEXT_MOUNT, self.context().output)

    def start(self, state: State) -> State:
        """Give a fresh state the build environment (and CA variables when a bundle is used)."""
        for k, v in build_env(self.env, self.base_path):
            state = state.with_env(k, v)
        if self.ca_bundle:
            for k in _CA_ENV:
                state = state.with_env(k, CA_BUNDLE_PATH)
        if self.pins is not None:  # .pyc files with checked hashes, tools that honour it
            state = state.with_env("SOURCE_DATE_EPOCH", str(self.pins.source_date_epoch))
        return state

    def run(self, state: State, lines: list[str] | tuple[str, ...], *, name: str,
            span: Span | None, mounts: tuple[MountSpec, ...] = (), shell: str = "bash") -> State:
        """One build step running ``lines`` as a strict bash script."""
        extra = (SecretMount(CA_BUNDLE_PATH, CA_SECRET_ID, mode=0o444),) if self.ca_bundle else ()
        if self.pins is not None:
            lines = (*lines, noise_cleanup())
        return state.run(bash(*lines, shell=shell), mounts=mounts + extra, name=name, span=span)
