"""LLB vertices and their options as small immutable values.

Nothing here knows the wire format: ``_marshal`` turns these values into ``pb`` messages.
Vertices compare by identity (two equal-looking ops built separately are still two objects);
marshal collapses them when their bytes, hence digests, are equal, as BuildKit does.
Constructors never raise: a bad value is parked in ``problem`` and reported by ``marshal``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from dsl.ir import Span


@dataclass(frozen=True, slots=True)
class Platform:
    """An OCI platform, e.g. ``Platform.parse("linux/arm64/v8")``."""

    os: str = "linux"
    architecture: str = "amd64"
    variant: str = ""

    @classmethod
    def parse(cls, text: str) -> Platform:
        """Parse ``os/arch[/variant]``; a malformed value yields a platform marshal rejects."""
        parts = text.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            return cls(os="", architecture=text)
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else "")

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


@dataclass(frozen=True, slots=True)
class Describe:
    """What a vertex is called in progress output and which build-file call made it.

    Lives in ``OpMetadata`` only, never in the digested op bytes.
    """

    name: str = ""
    span: Span | None = None


class CacheSharing(enum.IntEnum):
    """How concurrent builds share a cache mount (values are the wire enum)."""

    SHARED = 0
    PRIVATE = 1
    LOCKED = 2


# ---- exec mounts ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BindMount:
    """A read-only view of ``source`` (a state's output) at ``dest``, optionally a subpath."""

    dest: str
    source: Output | None
    selector: str = ""
    readonly: bool = True


@dataclass(frozen=True, slots=True)
class CacheMount:
    """A persistent cache directory kept by the builder across builds, keyed by ``id``."""

    dest: str
    id: str
    sharing: CacheSharing = CacheSharing.SHARED


@dataclass(frozen=True, slots=True)
class SecretMount:
    """A secret served by the client session at build time; never stored in a layer."""

    dest: str
    id: str
    uid: int = 0
    gid: int = 0
    mode: int = 0o400
    optional: bool = False


@dataclass(frozen=True, slots=True)
class TmpfsMount:
    dest: str


MountSpec = BindMount | CacheMount | SecretMount | TmpfsMount


# ---- file actions -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Owner:
    """Numeric owner for created or copied files."""

    uid: int
    gid: int


@dataclass(frozen=True, slots=True)
class Mkdir:
    path: str
    mode: int = 0o755
    parents: bool = True
    owner: Owner | None = None


@dataclass(frozen=True, slots=True)
class Mkfile:
    path: str
    data: bytes
    mode: int = 0o644
    owner: Owner | None = None


@dataclass(frozen=True, slots=True)
class Rm:
    path: str
    allow_not_found: bool = True
    allow_wildcard: bool = False


@dataclass(frozen=True, slots=True)
class CopyFrom:
    """Copy ``src`` (path in ``source``) to ``dest`` in the state being changed."""

    source: Output | None
    src: str
    dest: str
    owner: Owner | None = None
    mode: int = -1  # -1 = keep the source mode (Go llb's default)
    follow_symlink: bool = True
    dir_copy_contents: bool = True
    create_dest_path: bool = True
    allow_wildcard: bool = True
    allow_empty_wildcard: bool = False


FileAction = Mkdir | Mkfile | Rm | CopyFrom


# ---- vertices -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class Output:
    """One output (a filesystem) of a vertex."""

    op: Op
    index: int = 0


@dataclass(frozen=True, slots=True, eq=False)
class Op:
    """Base of every vertex: platform, description and a parked construction problem."""

    platform: Platform
    describe: Describe
    problem: str = field(default="", kw_only=True)


@dataclass(frozen=True, slots=True, eq=False)
class SourceOp(Op):
    identifier: str
    attrs: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True, eq=False)
class ExecOp(Op):
    root: Output | None
    args: tuple[str, ...]
    env: tuple[str, ...]
    cwd: str
    user: str
    mounts: tuple[MountSpec, ...] = ()


@dataclass(frozen=True, slots=True, eq=False)
class FileOp(Op):
    base: Output | None
    actions: tuple[FileAction, ...]


@dataclass(frozen=True, slots=True, eq=False)
class MergeOp(Op):
    inputs: tuple[Output | None, ...]


@dataclass(frozen=True, slots=True, eq=False)
class DiffOp(Op):
    lower: Output | None
    upper: Output | None


def op_inputs(op: Op) -> tuple[Output, ...]:
    """The outputs an op reads, in the order marshal numbers them (duplicates kept)."""
    if isinstance(op, ExecOp):
        found = [op.root] + [m.source for m in op.mounts if isinstance(m, BindMount)]
    elif isinstance(op, FileOp):
        found = [op.base] + [a.source for a in op.actions if isinstance(a, CopyFrom)]
    elif isinstance(op, MergeOp):
        found = list(op.inputs)
    elif isinstance(op, DiffOp):
        found = [op.lower, op.upper]
    else:
        found = []
    return tuple(o for o in found if o is not None)
