"""``dsl compile --target llb|image-config``: the LLB definition or the image config.

``llb`` writes the marshalled ``pb.Definition`` to stdout, the bytes ``buildctl build`` reads
on stdin (``--format json`` prints a readable dump instead); ``image-config`` prints the OCI
image config JSON built on the default base config (the real base config is only known to a
builder; ``dsl build`` passes it).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from dsl.cli._gitops import writing
from dsl.errors import UsageError
from dsl.ir import Environment


def parse_caps(text: str | None) -> frozenset[str]:
    """``"mergeop, diffop"`` → ``frozenset({"mergeop", "diffop"})``."""
    return frozenset(c.strip() for c in (text or "").split(",") if c.strip())


def emit(target: str, env: Environment, opts: dict[str, Any]) -> None:
    """Compile ``env`` for ``target`` and write the result.

    Args:
        target: ``llb`` or ``image-config``.
        env: the evaluated environment.
        opts: the remaining ``dsl compile`` options (caps, sequential, ca_bundle, fmt, out).

    Raises:
        UsageError: binary output to a terminal, an unsupported ``--format``, or an
            ``--output`` file that cannot be written.
        CompileError: the environment cannot be compiled.
    """
    fmt = opts.get("fmt")
    out = opts.get("out")
    if target == "image-config":
        if fmt not in (None, "json"):
            raise UsageError(f"--format {fmt} is not available for image-config", hint="use --format json")
        from compiler.image_config import image_config
        from dsl.cli._runtime_base import runtime_base

        _write_text(json.dumps(image_config(env, base_config=None, runtime_base=runtime_base()), indent=2) + "\n",
                    out)
        return
    if fmt not in (None, "json"):
        raise UsageError(f"--format {fmt} is not available for llb",
                         hint="the default is the binary definition; --format json is readable")
    from compiler.llb import compile_environment, describe_definition
    from dsl.cli._runtime_base import runtime_base

    lock = opts.get("lock")
    res = compile_environment(
        env, caps=parse_caps(opts.get("caps")), ca_bundle=bool(opts.get("ca_bundle")),
        sequential=True if opts.get("sequential") else None, runtime_base=runtime_base(), pins=opts.get("pins"),
        **({"platform": lock["inputs"]["platform"]} if lock else {}),
    )
    if fmt == "json":
        dump = {
            "shape": res.shape, "base_image": res.base_image, "caps": sorted(res.caps_used),
            "local_sources": [{"name": s.name, "include": list(s.include)} for s in res.local_sources],
            "secrets": list(res.secrets),
            "ops": [dict(op, **({"at": str(res.vertex_spans[op["digest"]])}
                                if op["digest"] in res.vertex_spans else {}))
                    for op in describe_definition(res.definition)],
        }
        _write_text(json.dumps(dump, indent=2, ensure_ascii=False) + "\n", out)
        return
    if out:
        with writing(out):
            Path(out).write_bytes(res.definition)
        return
    if sys.stdout.isatty():
        raise UsageError("refusing to write the binary LLB definition to a terminal",
                         hint="pipe it (dsl compile --target llb | buildctl build ...), "
                              "use -o FILE, or --format json to read it")
    sys.stdout.buffer.write(res.definition)
    sys.stdout.buffer.flush()


def _write_text(text: str, out: str | None) -> None:
    if out:
        with writing(out):
            Path(out).write_text(text)
    else:
        click.echo(text, nl=False)
