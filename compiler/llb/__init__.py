"""BuildKit LLB: an immutable builder, its marshaller, and the IR → LLB compiler.

Builder (in the style of BuildKit's Go ``client/llb``)::

    from compiler.llb import image, marshal, CacheMount
    st = image("debian:bookworm").with_cwd("/src")
    st = st.run(["bash", "-c", "echo hi > /x"], mounts=[CacheMount("/c", "id")], name="say hi")
    blob = marshal(st).definition     # pb.Definition bytes, deterministic

Compiler::

    from compiler.llb import compile_environment
    res = compile_environment(env, caps=frozenset({"mergeop", "diffop"}))
"""

from compiler.llb._compile import LLBResult, LocalSource, base_image_ref, compile_environment
from compiler.llb._lockplan import LockRequests, compile_resolution, lock_requests
from compiler.llb._dump import describe_definition
from compiler.llb._marshal import MODERN_CAPS, Marshalled, marshal
from compiler.llb._pins import Pins, Resolution
from compiler.llb._ops import (
    BindMount,
    CacheMount,
    CacheSharing,
    CopyFrom,
    Mkdir,
    Mkfile,
    Owner,
    Platform,
    Rm,
    SecretMount,
    TmpfsMount,
)
from compiler.llb._refs import normalize_image_ref
from compiler.llb._state import State, diff, http, image, local, merge, scratch

__all__ = [
    "MODERN_CAPS", "BindMount", "LLBResult", "LocalSource", "LockRequests", "Pins", "Resolution", "base_image_ref",
    "compile_environment", "compile_resolution", "lock_requests", "CacheMount", "CacheSharing", "CopyFrom", "Marshalled",
    "Mkdir", "Mkfile", "Owner", "Platform", "Rm", "SecretMount", "State", "TmpfsMount",
    "describe_definition", "diff", "http", "image", "local", "marshal", "merge", "normalize_image_ref", "scratch",
]
