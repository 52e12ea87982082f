"""Write the build record that lets the next unchanged ``dsl build`` skip (see ``_uptodate.py``).

A record is written only when it is provably true. Every fingerprint is taken after the
build, and every file, served entry and walked directory must have a ctime older than the
moment the command started (minus a margin for the kernel's coarse timestamps): then nothing
was written, added or removed while the build evaluated the file, read the context and
exported the image, so what the fingerprints describe is exactly what the build used. A
base image in dockerd's store must have had the same ID before and after the build; a base
only in a registry is recorded by the manifest digest the builder resolved its tag to during
the build, and only if the registry still names that digest afterwards (and the tag did not
appear in dockerd's store meanwhile, which dockerd would prefer). Every other image the
build reads must be the same after the build as while it ran (``_image_sources.py``). Every
tag must name the image the build produced. Otherwise no record is written and the next
build is a real one.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dsl.engines.buildkit._image_sources import image_states
from dsl.engines.buildkit._registry_head import pinned_digest, registry_digest
from dsl.engines.buildkit._uptodate import FORMAT, code_fingerprint, docker_image_id, fingerprint, listing, records_dir

RACY_NS = 20_000_000  # ≥ 2 ticks of the coarse clock file times come from (HZ=100: 10 ms)
CONTEXT = "context"
IGNORE_FILES = (".dslignore", ".dockerignore")


@dataclass(frozen=True, slots=True)
class BuildFacts:
    """What a finished build depended on and produced, as the CLI saw it.

    Attributes:
        started_ns: ``time.time_ns()`` before the build file was evaluated.
        files: local files the evaluation read (absolute).
        includes: ``include()`` URLs (remote code: never recorded).
        context_dir: the build context directory.
        local_sources: ``(name, include patterns)`` of every ``local://`` source in the LLB.
        base_ref: the base image reference; ``base_id_before``: its ID in dockerd when the build
            began (None: not in dockerd's store).
        base_digest: the manifest digest the builder resolved ``base_ref`` to (``""``: none).
        sources_before: the other images the build reads, as ``_image_sources.ImageStates``
            found them while it ran (None: unknown).
        images: tag → image ID the build reported.
        report: what ``dsl build`` printed and wrote to ``--metadata-file``.
        code: envdsl's :func:`code_fingerprint` when the build started (None: take it now).
    """

    started_ns: int
    files: Sequence[str]
    includes: Sequence[str]
    context_dir: str
    local_sources: Sequence[tuple[str, Sequence[str]]]
    base_ref: str
    base_id_before: str | None
    images: Mapping[str, str]
    report: Mapping[str, Any]
    code: str | None = None
    base_digest: str = ""
    sources_before: Mapping[str, Any] | None = None


def write_record(key: str, inputs: Mapping[str, Any], facts: BuildFacts, docker_host: str) -> bool:
    """Store the record for ``key`` if the build's inputs were stable; return whether it was.

    Never raises for an unreadable file or engine: those just mean "no record".
    """
    path = records_dir() / f"{key}.json"
    try:
        path.unlink(missing_ok=True)  # a stale record must never outlive a new build
        record = _record(inputs, facts, docker_host)
    except OSError:
        return False
    if record is None:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".record-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(record, out, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return True


def _record(inputs: Mapping[str, Any], facts: BuildFacts, docker_host: str) -> dict[str, Any] | None:
    if facts.includes or not facts.images:
        return None
    if any(name != CONTEXT for name, _ in facts.local_sources):
        return None  # only the build context is served by `dsl build`'s session
    limit = facts.started_ns - RACY_NS
    files: dict[str, list[Any]] = {}
    dirs: dict[str, list[list[Any]]] = {}
    context_root = os.path.realpath(facts.context_dir)
    candidates = [*facts.files, *(os.path.join(context_root, name) for name in IGNORE_FILES)]
    for file in candidates:
        if os.path.lexists(file):
            files[file] = fingerprint(file)
    # load() looks next to the importer first, and -f FILE in the context before the working
    # directory: a new file in one of those places could change what is evaluated.
    for directory in sorted({os.path.dirname(f) for f in facts.files} | {context_root}):
        dirs[directory] = listing(directory)
    context = None
    if facts.local_sources:
        includes = sorted({p for _, patterns in facts.local_sources for p in patterns})
        context = _context_snapshot(context_root, includes)
    stamps = [fp[6] for fp in files.values()] + [os.lstat(d).st_ctime_ns for d in dirs]
    if context is not None:
        stamps += [fp[6] for fp in context["entries"].values()]
        stamps += context.pop("dir_ctimes")
    if any(ctime >= limit for ctime in stamps):
        return None  # written during (or just before) the build: what was used is unknown
    code = code_fingerprint()
    if facts.code is not None and code != facts.code:
        return None  # envdsl itself was edited while it ran: which code built the image is unknown
    if any(docker_image_id(docker_host, tag) != image_id for tag, image_id in facts.images.items()):
        return None
    ca_bundle = inputs.get("ca_bundle") or None
    base = _base(facts, docker_host, ca_bundle)
    if base is None:
        return None
    sources = facts.sources_before
    if sources is None or any(state is None for state in sources.values()):
        return None  # an image the build read cannot be verified
    if image_states(sources, docker_host, ca_bundle) != sources:
        return None  # one moved while the build ran: which one it used is unknown
    return {
        "format": FORMAT, "inputs": dict(inputs), "code": code, "files": files,
        "listings": dirs, "context": context, "base": base, "sources": dict(sources),
        "images": dict(facts.images), "report": dict(facts.report),
    }


def _base(facts: BuildFacts, docker_host: str, ca_bundle: str | None) -> dict[str, str] | None:
    """``{"ref", "id"}`` (in dockerd's store) or ``{"ref", "digest"}`` (from a registry), None
    when which base the build used is unknown."""
    now = docker_image_id(docker_host, facts.base_ref)
    if facts.base_id_before is not None:
        return {"ref": facts.base_ref, "id": now} if now == facts.base_id_before else None
    if now is not None:
        return None  # the tag appeared in dockerd's store during the build: which one was used?
    digest = pinned_digest(facts.base_ref)
    if digest is None:
        # What the builder resolved the tag to; the registry must still say so after the build
        # (a tag that moved while the build ran could have given the layers of another manifest).
        digest = facts.base_digest
        if not digest or registry_digest(facts.base_ref, ca_bundle=ca_bundle) != digest:
            return None
    return {"ref": facts.base_ref, "digest": digest}


def _context_snapshot(root: str, includes: Iterable[str]) -> dict[str, Any]:
    """What the session serves of ``root`` for these include patterns, walked the same way."""
    from dsl.engines.buildkit.session import SyncedDir, read_ignore_file, served_files

    synced = SyncedDir(root, excludes=tuple(read_ignore_file(root)))
    meta = {"include-patterns": list(includes)} if includes else {}
    files = served_files(synced, meta)
    # stat only, no content digest: hashing a 110 MB context after every build cost 0.24–0.28 s
    # (bench context-big); a context file whose ctime moved is then simply sent again
    entries = {stat.path: fingerprint(source, content=False) for stat, source in zip(files.stats, files.sources)}
    walked = {rel: listing(os.path.join(root, rel) if rel else root) for rel in files.directories}
    dir_ctimes = [os.lstat(os.path.join(root, rel) if rel else root).st_ctime_ns for rel in files.directories]
    return {"root": root, "entries": entries, "dirs": walked, "dir_ctimes": dir_ctimes}
