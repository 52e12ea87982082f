"""Where a build's result goes: ``--output`` parsing and the exporter each builder needs.

==========================  ====================================  ==============================
``--output``                 dockerd (BuildKit v0.8)                standalone buildkitd
==========================  ====================================  ==============================
``type=docker`` (default)    ``moby`` → the engine's image store    ``docker`` tarball over FileSend,
                                                                    then ``docker load``
``type=image,push=true``     ``moby``, then push via the Engine API ``image`` with ``push=true``
``type=oci,dest=FILE``       not available on dockerd 20.10         ``oci`` over FileSend
``type=tar,dest=FILE``       ``tar`` over FileSend                  ``tar`` over FileSend
``type=local,dest=DIR``      ``local`` over FileSend                ``local`` over FileSend
==========================  ====================================  ==============================
"""

from __future__ import annotations

from dataclasses import dataclass

from dsl.engines.buildkit._solve import Exporter
from dsl.errors import UsageError

OUTPUT_TYPES = ("docker", "image", "oci", "tar", "local")
_BOOL = {"true": True, "1": True, "false": False, "0": False}


@dataclass(frozen=True, slots=True)
class OutputSpec:
    """A parsed ``--output``: its type, image names, push flag and file destination."""

    type: str = "docker"
    names: tuple[str, ...] = ()
    push: bool = False
    dest: str | None = None


def parse_output(text: str | None, *, tags: tuple[str, ...], default_name: str) -> OutputSpec:
    """Parse ``type=T[,name=A[,B]][,push=true][,dest=PATH]``.

    Args:
        text: the ``--output`` value (None = ``type=docker``).
        tags: ``-t`` values; they name the image when the output has no ``name``.
        default_name: the name when neither gives one (``<env-name>:dev``).

    Raises:
        UsageError: an unknown type or key, a missing ``dest``, or ``push`` on a non-image.
    """
    fields: dict[str, str] = {}
    for part in (text or "type=docker").split(","):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep:
            if fields.get("name") is not None and key:  # name=a,b: comma-separated names
                fields["name"] += "," + key
                continue
            raise UsageError(f"--output: expected key=value, got {part!r}", hint=_HINT)
        if key not in ("type", "name", "push", "dest"):
            raise UsageError(f"--output: unknown key {key!r}", hint=_HINT)
        fields[key] = value.strip()
    kind = fields.get("type", "docker")
    if kind not in OUTPUT_TYPES:
        raise UsageError(f"--output: unknown type {kind!r}", hint=_HINT)
    push_text = fields.get("push", "false").lower()
    if push_text not in _BOOL:
        raise UsageError(f"--output: push must be true or false, got {fields['push']!r}")
    push = _BOOL[push_text]
    if push and kind != "image":
        raise UsageError("--output: push=true needs type=image")
    dest = fields.get("dest")
    if kind in ("oci", "tar", "local") and not dest:
        raise UsageError(f"--output type={kind} needs dest=PATH")
    names = tuple(n for n in fields.get("name", "").split(",") if n) or tags or (default_name,)
    return OutputSpec(type=kind, names=names, push=push, dest=dest)


_HINT = "e.g. type=docker | type=image,name=REG/IMG:TAG,push=true | type=oci,dest=img.tar | type=local,dest=DIR"


def exporter_for(output: OutputSpec, *, dockerd: bool) -> Exporter:
    """The BuildKit exporter that produces ``output`` on this kind of builder.

    Raises:
        UsageError: the builder cannot produce that output.
    """
    name = ",".join(output.names)
    if output.type in ("docker", "image") and dockerd:
        return Exporter("moby", {"name": name})
    if output.type == "docker":
        return Exporter("docker", {"name": name})
    if output.type == "image":
        return Exporter("image", {"name": name, "push": "true" if output.push else "false"})
    if output.type == "oci" and dockerd:
        raise UsageError(
            "--output type=oci is not available on dockerd's BuildKit (v0.8)",
            hint="use type=docker, type=tar or type=local; or a standalone buildkitd (--builder)",
        )
    if output.type == "oci":
        return Exporter("oci", {"name": name})
    return Exporter(output.type, {})
