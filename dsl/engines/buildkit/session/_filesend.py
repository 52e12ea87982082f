"""``/moby.filesync.v1.FileSend/DiffCopy``: receive an export from the daemon.

* ``local`` exporter → :class:`DirectoryExport`: the daemon is the fsutil *sender* (STATs, then
  DATA for each REQ we send, FIN handshake); we are the receiver and rebuild the tree.
* ``tar`` / ``oci`` exporters → :class:`FileExport`: the daemon streams raw bytes as
  ``BytesMessage`` and closes its side.

Both write into a staging location next to the destination and move it into place only when
the transfer is complete, so a failed or cancelled build never leaves a half-written output;
and a received path can never escape the destination (no ``..``, no absolute paths, no writing
through a received symlink).
"""

from __future__ import annotations

import os
import queue
import shutil
import stat as st
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc

from dsl.engines.buildkit.protos import filesync_pb2, fsutil_types_pb2 as fs
from dsl.engines.buildkit.session._walk import GO_DIR, GO_PIPE, GO_SYMLINK, GO_TYPE, posix_perm
from dsl.errors import OutputConflict

_FIN = fs.Packet(type=fs.Packet.PACKET_FIN).SerializeToString()


class _Export:
    """Common destination handling: conflict checks, staging names, the result."""

    kind = ""

    def __init__(self, dest: str | os.PathLike[str], *, replace: bool = False) -> None:
        self.dest = Path(dest).absolute()
        self.replace = replace
        self.committed = False
        self.bytes_received = 0
        if self.dest.exists() and not replace and not _empty_dir(self.dest):
            raise OutputConflict(f"{self.dest} already exists",
                                 hint="choose another dest, or remove it first")

    def _staging_parent(self) -> Path:
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        return self.dest.parent

    def receive(self, requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
        raise NotImplementedError


def _empty_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink() and not any(path.iterdir())


class FileExport(_Export):
    """Write the ``tar``/``oci`` exporter's stream to one file, atomically.

    Args:
        dest: the file to write.
        replace: allow replacing an existing file.

    Raises:
        OutputConflict: ``dest`` exists and ``replace`` is False.
    """

    kind = "file"

    def receive(self, requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
        """The FileSend handler: drain the byte stream into the file; answer nothing."""
        fd, tmp = tempfile.mkstemp(prefix=f".{self.dest.name}.", dir=self._staging_parent())
        try:
            with os.fdopen(fd, "wb") as fh:
                for raw in requests:
                    data = filesync_pb2.BytesMessage.FromString(raw).data
                    fh.write(data)
                    self.bytes_received += len(data)
            os.chmod(tmp, 0o666 & ~_umask())
            os.replace(tmp, self.dest)
            self.committed = True
        finally:
            if not self.committed:
                os.unlink(tmp)
        return
        yield  # a generator that sends nothing


class DirectoryExport(_Export):
    """Rebuild the ``local`` exporter's tree in a directory, atomically.

    Args:
        dest: the directory to create (an empty existing directory is fine).
        replace: allow replacing an existing non-empty directory (swapped in at the end).

    Raises:
        OutputConflict: ``dest`` exists, is not an empty directory, and ``replace`` is False.
    """

    kind = "local"

    def receive(self, requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
        """The FileSend handler: the fsutil receiver (module docstring)."""
        staging = Path(tempfile.mkdtemp(prefix=f".{self.dest.name}.", dir=self._staging_parent()))
        tree = _Tree(staging)
        outgoing: queue.Queue[bytes | None] = queue.Queue()
        failure: list[BaseException] = []

        def read() -> None:
            try:
                self._read(requests, tree, outgoing, staging)
            except BaseException as exc:  # noqa: BLE001 - reported through the stream below
                failure.append(exc)
            finally:
                outgoing.put(None)

        reader = threading.Thread(target=read, daemon=True, name="filesend-reader")
        reader.start()
        try:
            while (packet := outgoing.get()) is not None:
                yield packet
            reader.join()
            if failure:
                context.abort(grpc.StatusCode.ABORTED, f"writing the export to {self.dest} "
                              f"failed: {failure[0]}")
        finally:
            if not self.committed:
                shutil.rmtree(staging, ignore_errors=True)

    def _read(self, requests: Iterator[bytes], tree: _Tree,
              outgoing: queue.Queue[bytes | None], staging: Path) -> None:
        for raw in requests:
            packet = fs.Packet.FromString(raw)
            if packet.type == fs.Packet.PACKET_STAT:
                if packet.HasField("stat"):
                    tree.add(packet.stat)
                    continue
                for file_id in tree.wanted():
                    outgoing.put(fs.Packet(type=fs.Packet.PACKET_REQ, ID=file_id).SerializeToString())
            elif packet.type == fs.Packet.PACKET_DATA:
                self.bytes_received += len(packet.data)
                tree.data(packet.ID, packet.data)
            elif packet.type == fs.Packet.PACKET_FIN:
                return  # the sender's answer to our FIN: done
            elif packet.type == fs.Packet.PACKET_ERR:
                raise OSError(f"the builder failed to send: {packet.data.decode('utf-8', 'replace')}")
            if tree.stats_done and tree.complete() and not self.committed:
                tree.finish()
                self._commit(staging)
                outgoing.put(_FIN)
        if not self.committed:
            raise OSError("the builder closed the export stream early")

    def _commit(self, staging: Path) -> None:
        os.chmod(staging, 0o777 & ~_umask())
        if _empty_dir(self.dest):
            self.dest.rmdir()
        if not self.dest.exists():
            os.rename(staging, self.dest)
        else:
            old = Path(tempfile.mkdtemp(prefix=f".{self.dest.name}.old.", dir=self.dest.parent))
            os.rename(self.dest, old / "d")
            os.rename(staging, self.dest)
            shutil.rmtree(old, ignore_errors=True)
        self.committed = True


class _Tree:
    """The receiving tree: validates every announced path and writes entries under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.kinds: dict[str, int] = {"": GO_DIR}  # path → Go type bits, for parent checks
        self.stats: list[fs.Stat] = []
        self.open: dict[int, int] = {}  # file ID → fd, for files still receiving
        self.stats_done = False

    def add(self, stat: fs.Stat) -> None:
        file_id = len(self.stats)
        self.stats.append(stat)
        path = _safe_relpath(stat.path)
        parent = path.rpartition("/")[0]
        if self.kinds.get(parent) != GO_DIR or path in self.kinds:
            raise OSError(f"refusing {stat.path!r}: its parent is not a received directory")
        target = self.root / path
        kind = stat.mode & GO_TYPE
        self.kinds[path] = kind
        if kind == GO_DIR:
            os.mkdir(target, 0o700)
        elif kind == GO_SYMLINK:
            os.symlink(stat.linkname, target)
        elif kind == GO_PIPE:
            os.mkfifo(target, posix_perm(stat.mode))
        elif kind == 0 and stat.linkname:
            first = _safe_relpath(stat.linkname)
            if self.kinds.get(first) != 0:
                raise OSError(f"refusing hardlink {stat.path!r} to {stat.linkname!r}")
            os.link(self.root / first, target, follow_symlinks=False)
        elif kind == 0:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            if stat.size > 0:
                self.open[file_id] = fd
            else:
                self._close(file_id, fd)
        # devices and sockets are not recreated: an export is files, not a root filesystem

    def wanted(self) -> list[int]:
        self.stats_done = True
        return sorted(self.open)

    def data(self, file_id: int, chunk: bytes) -> None:
        fd = self.open.get(file_id)
        if fd is None:
            raise OSError(f"unexpected data for file {file_id}")
        if chunk:
            os.write(fd, chunk)
        else:
            del self.open[file_id]
            self._close(file_id, fd)

    def _close(self, file_id: int, fd: int) -> None:
        stat = self.stats[file_id]
        os.fchmod(fd, posix_perm(stat.mode))
        os.utime(fd, ns=(stat.modTime, stat.modTime))
        os.close(fd)

    def complete(self) -> bool:
        return not self.open

    def finish(self) -> None:
        """Set directory modes and times last (writing inside a directory changes its mtime)."""
        for stat in reversed(self.stats):
            kind = stat.mode & GO_TYPE
            target = self.root / stat.path
            if kind == GO_DIR:
                os.chmod(target, posix_perm(stat.mode))
            if kind in (GO_DIR, GO_SYMLINK):
                os.utime(target, ns=(stat.modTime, stat.modTime), follow_symlinks=False)


def _safe_relpath(path: str) -> str:
    parts = path.split("/")
    if not path or "\0" in path or any(p in ("", ".", "..") for p in parts):
        raise OSError(f"refusing unsafe path {path!r} in the export")
    return path


def _umask() -> int:
    """The process umask, read without changing it (os.umask would race other threads)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022


ExporterSink = FileExport | DirectoryExport
