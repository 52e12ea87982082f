"""``dsl push``: find a project's last build in the Docker engine and push it under a new name.

The build records ``dsl build`` writes (``_record``) name the image IDs a build produced;
the newest record of a build file whose image is still tagged in its engine is "the last
build". Pushing tags that image with the destination name and pushes through the Engine
API, with credentials from the Docker config (as ``--output type=image,push=true`` does).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from dsl.engines.buildkit import _dockerapi as api
from dsl.engines.buildkit._build import _push
from dsl.engines.buildkit._uptodate import docker_image_id, records_dir
from dsl.errors import EngineError


@dataclass(frozen=True, slots=True)
class LocalImage:
    """An image in a Docker engine: where, its ID, and the tag it was built as."""

    docker_host: str
    image_id: str
    tag: str


def last_build(build_files: Iterable[str], function: str) -> LocalImage | None:
    """The newest recorded build of any of ``build_files`` (real paths, as ``dsl build`` was
    given them: the file or its directory) with ``function``, still tagged; None if none."""
    wanted = set(build_files)
    records: list[tuple[int, dict[str, Any]]] = []
    try:
        entries = list(os.scandir(records_dir()))
    except OSError:
        return None
    for entry in entries:
        try:
            with open(entry.path, encoding="utf-8") as handle:
                record = json.load(handle)
            inputs = record["inputs"]
            if inputs["file"] in wanted and inputs["function"] == function and record["images"]:
                records.append((entry.stat().st_mtime_ns, record))
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not a record of ours, or half-written: never the one to push
    for _, record in sorted(records, key=lambda r: r[0], reverse=True):
        host = str(record["inputs"].get("builder", "")).removeprefix("docker://")
        for tag, image_id in sorted(record["images"].items()):
            if docker_image_id(host, tag) == image_id:
                return LocalImage(host, image_id, tag)
    return None


def local_image(docker_host: str, tag: str) -> LocalImage | None:
    """Image ``tag`` of the engine at ``docker_host``, if it is there."""
    image_id = docker_image_id(docker_host, tag)
    return LocalImage(docker_host, image_id, tag) if image_id else None


def push_image(image: LocalImage, target: str) -> str:
    """Tag ``image`` as ``target`` and push it; the registry's manifest digest ("" if unsaid).

    Raises:
        EngineError: the engine refused the tag, or the push failed.
    """
    from dsl.engines.buildkit.session import DockerCredentials
    from dsl.rules import tag_reference

    name = tag_reference(target)
    query = f"repo={api.quote(name.familiar_name())}&tag={api.quote(name.tag or 'latest')}"
    status, payload = api.request(image.docker_host, "POST", f"/images/{api.quote(image.image_id)}/tag?{query}")
    if status != 201:
        raise EngineError(f"cannot tag {image.tag} as {target}: {api.error_message(payload)}")
    return _push(image.docker_host, target, DockerCredentials())
