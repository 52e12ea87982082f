"""Is the last build of this file still up to date? The fast path of ``dsl build``.

A *build record* (``$XDG_CACHE_HOME/envdsl/builds/<key>.json``) is written after a successful
build whose inputs provably did not change while it ran (see ``_record.py``). The key covers
every option that shapes the result: the absolute build file and function, the context
directory, the builder, tags, output, platform, owner, CA bundle and the invoking user. The
record holds fingerprints of:

* every file the evaluation read (the build file and everything it ``load()``\\ s) and the
  context's ignore files;
* every build-context entry the session served (ignore and include patterns applied), plus
  the listing (name, is-a-directory) of every directory the sender walked, so an added or
  removed file is noticed even where nothing was sent before;
* the envdsl code itself (size and mtime of each of its source files);
* the base image: its ID in dockerd, or, when dockerd does not have it (BuildKit pulls it on
  every build), the manifest digest its tag resolved to in the registry, checked with one
  ``HEAD`` request (``_registry_head.py``; a base pinned by digest needs none);
* every other image the build reads (``io.copy(image=)``, helper images), the same way;
* the result's image ID under each tag, in dockerd.

A file fingerprint is ``[st_mode, uid, gid, size, mtime_ns, ino, ctime_ns, digest]``. Mode,
owner, size, mtime and inode must match; when only the ctime moved (the file was rewritten in
place, or chmod-ed back) the content digest decides for the files the evaluation read. Build
context entries are recorded without a digest (hashing every context file after each build is
what made a big context slow), so for them a moved ctime means "changed". The kernel updates
ctime on every write and nobody can set it, so "same ctime" means "not written since".

This module imports nothing heavy (no grpc, protobuf, Starlark, compiler or docker SDK): the
image lookups are raw HTTP/1.0 GETs over dockerd's unix socket, the registry's a plain
http.client request. Anything it cannot verify means "not up to date", and ``dsl build``
does the real build.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import stat as st
import urllib.parse
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

FORMAT = 1
HASH_LIMIT = 16 << 20  # bigger files are fingerprinted by stat only (a change → rebuild)
_DOCKER_TIMEOUT = 2.0


def records_dir() -> Path:
    """Where build records live: ``$XDG_CACHE_HOME/envdsl/builds`` (``~/.cache/...``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "envdsl" / "builds"


def record_key(inputs: Mapping[str, Any]) -> str:
    """The record's file name for these build options (a digest of their canonical JSON)."""
    canonical = json.dumps(dict(inputs), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def key_inputs(*, build_file: str, function: str, context_dir: str, builder_url: str, tags: Iterable[str],
               output: str | None, platform: str | None, owner: str | None, ca_bundle: str | None) -> dict[str, Any]:
    """Every option that affects what ``dsl build`` produces, normalised.

    Args:
        build_file: the build file (made absolute and real).
        function: the build function.
        context_dir: the build context directory.
        builder_url: the resolved builder address (its Docker host included).
        tags, output, platform, owner, ca_bundle: the command's options as given.
    """
    return {
        "file": os.path.realpath(build_file), "function": function, "context": os.path.realpath(context_dir),
        "builder": builder_url, "tags": list(tags), "output": output or "type=docker", "platform": platform or "",
        "owner": owner or "", "ca_bundle": os.path.realpath(ca_bundle) if ca_bundle else "",
        "uid": os.getuid(), "gid": os.getgid(),
    }


def file_digest(path: str) -> str | None:
    """sha256 of a regular file's content (None when it is too big to hash on every check)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size > HASH_LIMIT:
            return None
        while block := f.read(1 << 20):
            h.update(block)
    return "sha256:" + h.hexdigest()


def fingerprint(path: str, info: os.stat_result | None = None, *, content: bool = True) -> list[Any]:
    """``[st_mode, uid, gid, size, mtime_ns, ino, ctime_ns, digest]`` of ``path`` (not followed).

    ``digest`` is the content's sha256 for a regular file (when ``content``), the target of a
    symlink, else None.

    Raises:
        OSError: the path cannot be read, or it changed while it was being read.
    """
    info = info or os.lstat(path)
    digest: str | None = None
    if st.S_ISLNK(info.st_mode):
        digest = os.readlink(path)
    elif st.S_ISREG(info.st_mode) and content:
        digest = file_digest(path)
        after = os.lstat(path)
        if (after.st_ctime_ns, after.st_mtime_ns, after.st_size, after.st_ino) != (
                info.st_ctime_ns, info.st_mtime_ns, info.st_size, info.st_ino):
            raise OSError(f"{path} changed while it was read")
    return [info.st_mode, info.st_uid, info.st_gid, info.st_size, info.st_mtime_ns, info.st_ino,
            info.st_ctime_ns, digest]


def same_file(path: str, recorded: list[Any]) -> bool:
    """True when ``path`` still is what ``recorded`` (a :func:`fingerprint`) describes."""
    try:
        info = os.lstat(path)
    except OSError:
        return False
    now = [info.st_mode, info.st_uid, info.st_gid, info.st_size, info.st_mtime_ns, info.st_ino]
    if now != recorded[:6]:
        return False
    if info.st_ctime_ns == recorded[6]:
        return True
    # Rewritten in place or chmod-ed back: only identical content (or link target) is the same.
    try:
        return recorded[7] is not None and fingerprint(path, info)[7] == recorded[7]
    except OSError:
        return False


def listing(directory: str) -> list[list[Any]]:
    """``[[name, is_dir], ...]`` sorted by name (symlinks are not followed).

    Raises:
        OSError: the directory cannot be listed.
    """
    with os.scandir(directory) as it:
        return sorted([e.name, e.is_dir(follow_symlinks=False)] for e in it)


def code_fingerprint() -> str:
    """A digest of envdsl's own source files (path, size, mtime): a new version or an edited
    checkout invalidates every record."""
    import importlib.util

    h = hashlib.sha256()
    for package in ("dsl", "compiler", "stdlib"):
        spec = importlib.util.find_spec(package)
        for root in (spec.submodule_search_locations or []) if spec else []:
            for path, info in _source_files(root):
                h.update(f"{path}\0{info.st_size}\0{info.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _source_files(root: str) -> list[tuple[str, os.stat_result]]:
    out = []
    with os.scandir(root) as it:
        for entry in it:
            if entry.is_dir(follow_symlinks=False):
                if entry.name != "__pycache__":
                    out += _source_files(entry.path)
            elif not entry.name.endswith(".pyc"):
                out.append((entry.path, entry.stat(follow_symlinks=False)))
    return sorted(out, key=lambda item: item[0])


def docker_image_id(docker_host: str, ref: str) -> str | None:
    """The ID of image ``ref`` in the Docker engine, None when absent or unknowable.

    Only ``unix://`` engines are asked (a raw HTTP/1.0 GET); anything else is "unknowable".
    """
    if not docker_host.startswith("unix://"):
        return None
    request = f"GET /images/{urllib.parse.quote(ref, safe='')}/json HTTP/1.0\r\nHost: docker\r\n\r\n".encode()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(_DOCKER_TIMEOUT)
            sock.connect(docker_host[len("unix://"):])
            sock.sendall(request)
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
    except OSError:
        return None
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].split()
    if len(status) < 2 or status[1] != b"200":
        return None
    try:
        image_id = json.loads(body).get("Id")
    except (ValueError, AttributeError):
        return None
    return image_id if isinstance(image_id, str) and image_id else None


def load_record(key: str) -> dict[str, Any] | None:
    """The stored record for ``key``, or None (missing, unreadable or another format)."""
    try:
        data = json.loads((records_dir() / f"{key}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == FORMAT else None


def up_to_date(inputs: Mapping[str, Any], docker_host: str) -> dict[str, Any] | None:
    """The record of the last build when nothing it depended on changed, else None.

    Args:
        inputs: from :func:`key_inputs`.
        docker_host: the Docker engine the image lives in.
    """
    return check(inputs, docker_host)[0]


def check(inputs: Mapping[str, Any], docker_host: str, code: str | None = None) -> tuple[dict[str, Any] | None, str]:
    """:func:`up_to_date`, saying why not: ``(record, "")`` or ``(None, reason)``.

    Args:
        inputs: from :func:`key_inputs`.
        docker_host: the Docker engine the image lives in.
        code: :func:`code_fingerprint` if the caller already has it.

    Returns:
        The record when the build can be skipped; else None and one line for the user
        ("" when no earlier build was recorded).
    """
    record = load_record(record_key(inputs))
    if record is None or record.get("inputs") != json.loads(json.dumps(dict(inputs))):
        return None, ""
    if record.get("code") != (code or code_fingerprint()):
        return None, "envdsl's own files changed since the last build"
    try:
        reason = _first_change(record, docker_host)
    except (OSError, KeyError, TypeError, IndexError, AttributeError) as exc:
        reason = f"the last build's record cannot be checked ({exc})"
    return (None, reason) if reason else (record, "")


def _first_change(record: Mapping[str, Any], docker_host: str) -> str:
    for path, fp in record["files"].items():
        if not same_file(path, fp):
            return f"{path} changed"
    for directory, names in record["listings"].items():
        if listing(directory) != names:
            return f"a file was added to or removed from {directory}"
    context = record["context"]
    if context is not None:  # None: the build served no directory
        root = context["root"]
        for rel, names in context["dirs"].items():
            if listing(os.path.join(root, rel) if rel else root) != names:
                return f"a build-context file was added or removed in {os.path.join(root, rel)}"
        for rel, fp in context["entries"].items():
            if not same_file(os.path.join(root, rel), fp):
                return f"build-context file {os.path.join(root, rel)} changed"
    if not record["images"]:
        return "the last build produced no image"
    for tag, image_id in record["images"].items():
        if docker_image_id(docker_host, tag) != image_id:
            return f"{tag} no longer names the image built last time"
    ca_bundle = record["inputs"].get("ca_bundle") or None
    for source in record["sources"].values():  # io.copy(image=), helper images: see _image_sources.py
        if reason := image_change(source, docker_host, ca_bundle):
            return reason
    return _base_change(record["base"], docker_host, ca_bundle)


def _base_change(base: Mapping[str, str], docker_host: str, ca_bundle: str | None) -> str:
    """Why the base image is not the one of the last build ("" when it is). Last: it may
    take a network round trip."""
    return image_change(base, docker_host, ca_bundle, what="base image")


def image_state(ref: str, docker_host: str, ca_bundle: str | None) -> dict[str, str] | None:
    """What ``ref`` is for a build on ``docker_host`` now: ``{"ref", "id"}`` when dockerd has it
    (dockerd's BuildKit prefers its own store), else ``{"ref", "digest"}`` from its registry
    (no request for a digest pin); None when that cannot be verified."""
    local_id = docker_image_id(docker_host, ref)
    if local_id is not None:
        return {"ref": ref, "id": local_id}
    from dsl.engines.buildkit._registry_head import registry_digest

    digest = registry_digest(ref, ca_bundle=ca_bundle)
    return {"ref": ref, "digest": digest} if digest else None


def image_change(recorded: Mapping[str, str], docker_host: str, ca_bundle: str | None, *, what: str = "image") -> str:
    """Why the image ``recorded`` (an :func:`image_state`) describes is not what its reference
    names now ("" when it still is)."""
    ref, local_id = recorded["ref"], docker_image_id(docker_host, recorded["ref"])
    if "id" in recorded:
        return "" if local_id == recorded["id"] else f"{what} {ref} changed"
    if local_id is not None:  # dockerd prefers its own image over the registry's
        return f"{what} {ref} is now in the Docker engine's image store"
    from dsl.engines.buildkit._registry_head import registry_digest

    if registry_digest(ref, ca_bundle=ca_bundle) != recorded["digest"]:
        return f"{what} {ref} changed in its registry (or the registry could not be asked)"
    return ""
