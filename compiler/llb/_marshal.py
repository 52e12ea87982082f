"""Marshal a ``State`` into a BuildKit ``pb.Definition``: the only code that knows the wire.

Ops are serialised deterministically (field order, sorted map keys), each digest is the
sha256 of the op's bytes, and ``def`` lists ops inputs-first with the terminal op last, as
BuildKit's solver expects. Names, spans and caps go into ``OpMetadata`` keyed by digest, so
renaming a step never changes a digest.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from compiler.llb._ops import (
    BindMount,
    CacheMount,
    CopyFrom,
    DiffOp,
    ExecOp,
    FileAction,
    FileOp,
    MergeOp,
    Mkdir,
    Mkfile,
    Op,
    Output,
    Owner,
    Platform,
    Rm,
    SecretMount,
    SourceOp,
    TmpfsMount,
    op_inputs,
)
from compiler.llb._state import State
from compiler.llb.protos import ops_pb2 as pb
from dsl.errors import CompileError
from dsl.ir import Span

#: Caps BuildKit v0.8 (dockerd 20.10) does not have; everything else we emit it knows.
MODERN_CAPS = frozenset({"mergeop", "diffop"})
_TERMINAL_CAPS = ("constraints", "platform")
_UNSET_TIME = -1  # Go llb leaves timestamps unset as -1


@dataclass(frozen=True, slots=True)
class Marshalled:
    """A marshalled definition and what the caller needs to know about it.

    Attributes:
        definition: the ``pb.Definition`` bytes (``buildctl build`` reads these on stdin).
        digests: op digests in ``def`` order, terminal op excluded.
        names: op digest → vertex name.
        spans: op digest → the build-file call that produced the op.
        caps: every LLB capability the definition uses.
    """

    definition: bytes
    digests: tuple[str, ...]
    names: dict[str, str]
    spans: dict[str, Span]
    caps: frozenset[str]


def marshal(state: State, *, no_cache: bool = False) -> Marshalled:
    """Serialise the graph ending at ``state``.

    Args:
        state: the final state; its filesystem becomes the build result.
        no_cache: set ``ignore_cache`` in every op's metadata (``dsl build --no-cache``):
            every step runs again, while op bytes and digests stay the same, so the next
            normal build is cached again.

    Returns:
        The ``Marshalled`` definition.

    Raises:
        CompileError: a step was built from invalid input (reported with its span), or the
            state is scratch (nothing to build).
    """
    if state.output is None:
        raise CompileError("nothing to build: the final state is empty (scratch)")
    done: dict[int, str] = {}  # id(op) -> digest
    order: list[str] = []
    blobs: dict[str, bytes] = {}
    meta: dict[str, pb.OpMetadata] = {}
    names: dict[str, str] = {}
    spans: dict[str, Span] = {}
    caps_used: set[str] = set(_TERMINAL_CAPS)

    for op in _post_order(state.output.op):
        if op.problem:
            raise CompileError(f"{op.describe.name}: {op.problem}", span=op.describe.span)
        msg, caps = _op_message(op, done)
        blob = msg.SerializeToString(deterministic=True)
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        done[id(op)] = digest
        caps_used |= caps
        if digest in blobs:  # an identical op built twice: BuildKit sees one vertex
            continue
        blobs[digest] = blob
        order.append(digest)
        md = pb.OpMetadata(caps={c: True for c in caps}, ignore_cache=no_cache)
        if op.describe.name:
            md.description["llb.customname"] = op.describe.name
            names[digest] = op.describe.name
        if op.describe.span is not None:
            spans[digest] = op.describe.span
        meta[digest] = md

    terminal = pb.Op(inputs=[pb.Input(digest=done[id(state.output.op)], index=state.output.index)])
    tblob = terminal.SerializeToString(deterministic=True)
    tdigest = "sha256:" + hashlib.sha256(tblob).hexdigest()
    term_caps = set(_TERMINAL_CAPS) | ({"meta.description"} if names else set())
    if no_cache:
        term_caps.add("meta.ignorecache")
    caps_used |= term_caps
    definition = pb.Definition()
    getattr(definition, "def").extend([blobs[d] for d in order] + [tblob])  # `def` is a Python keyword
    for digest, md in meta.items():
        definition.metadata[digest].CopyFrom(md)
    definition.metadata[tdigest].CopyFrom(pb.OpMetadata(caps={c: True for c in term_caps}))
    return Marshalled(
        definition=definition.SerializeToString(deterministic=True),
        digests=tuple(order), names=names, spans=spans, caps=frozenset(caps_used),
    )


def _post_order(root: Op) -> list[Op]:
    """Ops reachable from ``root``, each after its inputs (iterative: graphs can be deep)."""
    seen: set[int] = set()
    out: list[Op] = []
    stack: list[tuple[Op, bool]] = [(root, False)]
    while stack:
        op, expanded = stack.pop()
        if expanded:
            out.append(op)
            continue
        if id(op) in seen:
            continue
        seen.add(id(op))
        stack.append((op, True))
        for inp in reversed(op_inputs(op)):
            if id(inp.op) not in seen:
                stack.append((inp.op, False))
    return out


class _Inputs:
    """Numbers an op's inputs, de-duplicated by (digest, output index) as Go llb does."""

    def __init__(self, done: dict[int, str]) -> None:
        self._done = done
        self.items: list[pb.Input] = []
        self._index: dict[tuple[str, int], int] = {}

    def add(self, out: Output | None) -> int:
        if out is None:
            return -1
        key = (self._done[id(out.op)], out.index)
        if key not in self._index:
            self._index[key] = len(self.items)
            self.items.append(pb.Input(digest=key[0], index=key[1]))
        return self._index[key]


def _op_message(op: Op, done: dict[int, str]) -> tuple[pb.Op, set[str]]:
    inputs = _Inputs(done)
    msg = pb.Op()
    if isinstance(op, SourceOp):
        caps = _source(msg, op)
    elif isinstance(op, ExecOp):
        caps = _exec(msg, op, inputs)
    elif isinstance(op, FileOp):
        caps = _file(msg, op, inputs)
    elif isinstance(op, MergeOp):
        idx = [inputs.add(o) for o in op.inputs if o is not None]
        msg.merge.inputs.extend(pb.MergeInput(input=i) for i in idx)
        caps = {"mergeop"}
    elif isinstance(op, DiffOp):
        msg.diff.lower.input = inputs.add(op.lower)
        msg.diff.upper.input = inputs.add(op.upper)
        caps = {"diffop"}
    else:  # pragma: no cover - every Op subclass is handled above
        raise TypeError(type(op).__name__)
    msg.inputs.extend(inputs.items)
    msg.platform.CopyFrom(_platform(op.platform, op))
    msg.constraints.SetInParent()
    return msg, caps


def _platform(p: Platform, op: Op) -> pb.Platform:
    if not p.os or not p.architecture:
        raise CompileError(f"invalid platform {p.architecture!r} (expected os/arch, e.g. linux/amd64)",
                           span=op.describe.span)
    return pb.Platform(OS=p.os, Architecture=p.architecture, Variant=p.variant)


def _source(msg: pb.Op, op: SourceOp) -> set[str]:
    msg.source.identifier = op.identifier
    for k, v in op.attrs:
        msg.source.attrs[k] = v
    scheme = op.identifier.split("://", 1)[0]
    if scheme == "docker-image":
        caps = {"source.image"}
    elif scheme == "local":
        caps = {"source.local"}
    elif scheme in ("http", "https"):
        caps = {"source.http"}
    else:
        caps = {f"source.{scheme}"}
    attr_caps = {
        "image.resolvemode": "source.image.resolvemode",
        "local.includepattern": "source.local.includepatterns",
        "local.excludepatterns": "source.local.excludepatterns",
        "local.sharedkeyhint": "source.local.sharedkeyhint",
        "local.unique": "source.local.unique",
        "local.session": "source.local.sessionid",
        "http.checksum": "source.http.checksum",
        "http.perm": "source.http.perm",
    }
    caps |= {attr_caps[k] for k, _ in op.attrs if k in attr_caps}
    return caps


def _exec(msg: pb.Op, op: ExecOp, inputs: _Inputs) -> set[str]:
    caps = {"exec.meta.base"}
    meta = msg.exec.meta
    meta.args.extend(op.args)
    meta.env.extend(op.env)
    meta.cwd = op.cwd
    meta.user = op.user
    mounts = [pb.Mount(input=inputs.add(op.root), dest="/", output=0)]
    for m in sorted(op.mounts, key=lambda m: m.dest):
        if isinstance(m, BindMount):
            mounts.append(pb.Mount(input=inputs.add(m.source), dest=m.dest, selector=m.selector,
                                   output=-1, readonly=m.readonly))
            caps.add("exec.mount.bind")
            if m.selector:
                caps.add("exec.mount.selector")
        elif isinstance(m, CacheMount):
            mounts.append(pb.Mount(input=-1, dest=m.dest, output=-1, mountType=pb.CACHE,
                                   cacheOpt=pb.CacheOpt(ID=m.id, sharing=int(m.sharing))))
            caps |= {"exec.mount.cache", "exec.mount.cache.sharing"}
        elif isinstance(m, SecretMount):
            mounts.append(pb.Mount(input=-1, dest=m.dest, output=-1, readonly=True,
                                   mountType=pb.SECRET,
                                   secretOpt=pb.SecretOpt(ID=m.id, uid=m.uid, gid=m.gid,
                                                          mode=m.mode, optional=m.optional)))
            caps.add("exec.mount.secret")
        elif isinstance(m, TmpfsMount):
            mounts.append(pb.Mount(input=-1, dest=m.dest, output=-1, mountType=pb.TMPFS))
            caps.add("exec.mount.tmpfs")
    msg.exec.mounts.extend(mounts)
    return caps


def _file(msg: pb.Op, op: FileOp, inputs: _Inputs) -> set[str]:
    caps = {"file.base"}
    base = inputs.add(op.base)
    # secondary inputs are numbered before the actions refer to earlier action results
    sources = [inputs.add(a.source) if isinstance(a, CopyFrom) else -1 for a in op.actions]
    n_inputs = len(inputs.items)
    last = len(op.actions) - 1
    for i, action in enumerate(op.actions):
        fa = pb.FileAction(input=base if i == 0 else n_inputs + i - 1,
                           secondaryInput=sources[i], output=0 if i == last else -1)
        _file_action(fa, action)
        if isinstance(action, Rm) and action.allow_wildcard:
            caps.add("file.rm.wildcard")
        msg.file.actions.append(fa)
    return caps


def _file_action(fa: pb.FileAction, a: FileAction) -> None:
    if isinstance(a, Mkdir):
        fa.mkdir.CopyFrom(pb.FileActionMkDir(path=a.path, mode=a.mode, makeParents=a.parents,
                                             owner=_owner(a.owner), timestamp=_UNSET_TIME))
    elif isinstance(a, Mkfile):
        fa.mkfile.CopyFrom(pb.FileActionMkFile(path=a.path, mode=a.mode, data=a.data,
                                               owner=_owner(a.owner), timestamp=_UNSET_TIME))
    elif isinstance(a, Rm):
        fa.rm.CopyFrom(pb.FileActionRm(path=a.path, allowNotFound=a.allow_not_found,
                                       allowWildcard=a.allow_wildcard))
    else:
        fa.copy.CopyFrom(pb.FileActionCopy(
            src=a.src, dest=a.dest, owner=_owner(a.owner), mode=a.mode,
            followSymlink=a.follow_symlink, dirCopyContents=a.dir_copy_contents,
            createDestPath=a.create_dest_path, allowWildcard=a.allow_wildcard,
            allowEmptyWildcard=a.allow_empty_wildcard, timestamp=_UNSET_TIME))


def _owner(owner: Owner | None) -> pb.ChownOpt | None:
    if owner is None:
        return None
    return pb.ChownOpt(user=pb.UserOpt(byID=owner.uid), group=pb.UserOpt(byID=owner.gid))
