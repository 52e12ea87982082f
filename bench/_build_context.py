"""The big build context: a 4,000-file, 110 MB project ``io.copy``'d into the image.

Two parts:

* ``python bench/_build_context.py [--rounds N]`` — a micro-benchmark of the FileSync sender
  alone, in-process: the session's own gRPC server on a unix socket and a local receiver that
  asks for every file the way the daemon does after a cache prune (MB/s, packets/s), plus the
  directory scan by itself. It needs no engine; on a busy machine compare the CPU figure (both
  ends' process time), which other load disturbs far less than wall time. The receiver is a
  grpcio client, whose own per-message cost (50-100 µs) now bounds the figures: the sender
  against a real daemon is what ``context_case`` measures.
* :func:`context_case` — the ``context-big`` case of ``bench/build.py``: ``dsl build`` against
  ``docker build`` (BuildKit, the same ``COPY``) on one dockerd, after a cache prune, and after
  changing one file of the project.

The project is deterministic (same names, sizes and bytes every time) so runs compare: 3,980
files of 4–24 KiB in 40 directories (about 56 MB) and 20 files of 2.7 MB.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import queue
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SMALL_FILES, SMALL_DIRS, BIG_FILES = 3980, 40, 20
BIG_SIZE = 2_700_000
TARGET = "/opt/bigctx"
CHANGED = "d00/f0000.bin"  # the file the "one file changed" scenario rewrites


def _small_size(i: int) -> int:
    return 4096 + (i * 7919) % (20 * 1024)


def _content(name: str, size: int) -> bytes:
    """Incompressible, deterministic bytes (a SHAKE stream seeded by the name)."""
    return hashlib.shake_256(name.encode()).digest(size)


def make_project(root: Path) -> Path:
    """Write the project under ``root/bigctx`` once (kept between runs); return its directory."""
    project = root / "bigctx"
    stamp = project / ".complete"
    if stamp.exists():
        return project
    for i in range(SMALL_FILES):
        rel = f"d{i % SMALL_DIRS:02d}/f{i:04d}.bin"
        path = project / "src" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_content(rel, _small_size(i)))
    for i in range(BIG_FILES):
        rel = f"big{i:02d}.bin"
        (project / "data").mkdir(parents=True, exist_ok=True)
        (project / "data" / rel).write_bytes(_content(rel, BIG_SIZE))
    stamp.write_text("")
    return project


def project_size(project: Path) -> tuple[int, int]:
    """(files, bytes) of the project, as sent."""
    files = size = 0
    for folder, _dirs, names in os.walk(project):
        for name in names:
            files += 1
            size += os.lstat(os.path.join(folder, name)).st_size
    return files, size


# --- the in-process micro-benchmark ---------------------------------------------------------


def _receive_all(channel) -> tuple[int, int, int, float]:
    """Act as the daemon after a prune: read every STAT, REQ every non-empty regular file,
    drain the DATA, FIN. Returns (stats, data packets, data bytes, seconds until the last STAT)."""
    from dsl.engines.buildkit.protos import fsutil_types_pb2 as fs

    outgoing: queue.Queue = queue.Queue()

    def requests() -> Iterator:
        while (item := outgoing.get()) is not None:
            yield item

    call = channel.stream_stream("/moby.filesync.v1.FileSync/DiffCopy",
                                 request_serializer=fs.Packet.SerializeToString,
                                 response_deserializer=fs.Packet.FromString)
    responses = call(requests(), metadata=[("dir-name", "context")])
    stats = packets = size = 0
    stat_phase = 0.0
    began = time.perf_counter()
    wanted: set[int] = set()
    for packet in responses:
        if packet.type == fs.Packet.PACKET_STAT:
            if packet.HasField("stat"):
                if packet.stat.mode & (1 << 31) == 0 and packet.stat.size > 0:
                    wanted.add(stats)
                    outgoing.put(fs.Packet(type=fs.Packet.PACKET_REQ, ID=stats))
                stats += 1
            else:
                stat_phase = time.perf_counter() - began
                if not wanted:
                    outgoing.put(fs.Packet(type=fs.Packet.PACKET_FIN))
        elif packet.type == fs.Packet.PACKET_DATA:
            if packet.data:
                packets += 1
                size += len(packet.data)
            else:
                wanted.discard(packet.ID)
                if not wanted:
                    outgoing.put(fs.Packet(type=fs.Packet.PACKET_FIN))
        elif packet.type == fs.Packet.PACKET_FIN:
            break
    outgoing.put(None)
    for _ in responses:  # the sender's end of the stream, so the call closes cleanly
        pass
    return stats, packets, size, stat_phase


@contextlib.contextmanager
def _serving(table: dict, path: str) -> Iterator[str]:
    """The session's own server (``_h2.GrpcConnection``) on the first connection to ``path``."""
    from dsl.engines.buildkit.session._h2 import GrpcConnection

    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen(1)
    served: list[GrpcConnection] = []
    accept = threading.Thread(target=lambda: served.append(GrpcConnection(listener.accept()[0], table).start()),
                              daemon=True)
    accept.start()
    try:
        yield path
    finally:
        accept.join(5)
        for conn in served:
            conn.close()
        listener.close()


def micro(project: Path, rounds: int) -> list[str]:
    """Time the sender alone (module docstring); returns report lines."""
    import grpc

    from dsl.engines.buildkit.session import Session, served_files

    scans, sends, cpus, stat_phases, result = [], [], [], [], (0, 0, 0, 0.0)
    for _ in range(rounds):
        session = Session(context_dir=project)
        began = time.perf_counter()
        served_files(session.filesync.dirs["context"], {})
        scans.append(time.perf_counter() - began)
        with tempfile.TemporaryDirectory() as tmp, _serving(session._table, f"{tmp}/s.sock") as path, \
                grpc.insecure_channel(f"unix:{path}") as channel:
            began, cpu = time.perf_counter(), time.process_time()
            result = _receive_all(channel)
            sends.append(time.perf_counter() - began)
            cpus.append(time.process_time() - cpu)
            stat_phases.append(result[3])
    stats, packets, size, _ = result
    sec = statistics.median(sends)
    return [
        f"FileSync sender, in-process ({stats} entries, {size / 1e6:.1f} MB; {rounds} round(s), median):",
        f"  scan (walk + stat + Stat records) {statistics.median(scans) * 1000:7.0f} ms",
        f"  the STATs alone                   {statistics.median(stat_phases) * 1000:7.0f} ms = "
        f"{stats / statistics.median(stat_phases):7.0f} packets/s",
        f"  full send after a prune            {sec * 1000:7.0f} ms = {size / 1e6 / sec:6.0f} MB/s, "
        f"{(packets + stats) / sec:7.0f} packets/s ({packets} DATA)",
        f"  CPU of the send, both ends         {statistics.median(cpus) * 1000:7.0f} ms (steadier than wall "
        "time on a busy machine)",
    ]


# --- the bench/build.py case ---------------------------------------------------------------


def context_case(eng, work: Path, rounds: int) -> list[str]:
    """``dsl build`` vs ``docker build`` of the big context: cold (after a prune) and one file
    changed; returns the report lines (medians, ratio to docker build, target ≤ 1.0)."""
    project = make_project(work / "context-big")
    files, size = project_size(project)
    build_file = project / "build.envd"
    build_file.write_text(
        "# syntax=v1\n"
        "def build():\n"
        f"    base(image={eng.base_image!r}, dev=False)\n"
        f"    io.copy(source='.', target={TARGET!r})\n")
    (project / "Dockerfile").write_text(f"FROM {eng.base_image}\nCOPY . {TARGET}\n")
    (project / ".dockerignore").write_text("build.envd\nDockerfile\n.dockerignore\n.complete\n")
    pycache = work / "dsl-pycache"
    env = {k: v for k, v in eng.env().items() if k != "PYTHONDONTWRITEBYTECODE"}
    dsl_env = {**env, "PYTHONPATH": str(REPO), "PYTHONPYCACHEPREFIX": str(pycache)}
    tags = {"dsl": "bench-ctx-dsl:1", "docker build": "bench-ctx-docker:1"}
    tools = {
        "dsl": ([sys.executable, "-m", "dsl", "build", str(project), "-t", tags["dsl"],
                 "--progress", "plain"], dsl_env),
        "docker build": ([*eng.docker_cli, "build", "--progress", "plain", "-t", tags["docker build"],
                          str(project)], {**env, "DOCKER_BUILDKIT": "1"}),
    }
    times: dict[tuple[str, str], list[float]] = {}
    failures: list[str] = []
    for round_no in range(rounds):
        order = list(tools) if round_no % 2 == 0 else list(reversed(tools))
        for name in order:
            argv, tool_env = tools[name]
            eng.prune()
            eng.remove_image(tags[name])  # else dsl's up-to-date check could skip the cold build
            _write_changed(project, "original")
            for scenario in ("cold", "changed"):
                token = "original"
                if scenario == "changed":
                    token = f"round {round_no}"
                    _write_changed(project, token)
                began = time.perf_counter()
                log = work / "logs" / f"context-big-{name.replace(' ', '-')}-{scenario}-{round_no}.log"
                log.parent.mkdir(parents=True, exist_ok=True)
                with log.open("w") as out:
                    code = _run(argv, tool_env, out)
                took = time.perf_counter() - began
                if code != 0:
                    failures.append(f"  {name} {scenario} failed: see {log}")
                    continue
                if _image_head(eng, tags[name]) != _token_head(token):
                    failures.append(f"  {name} {scenario}: the image lacks the changed file (a skipped build)")
                    continue
                times.setdefault((scenario, name), []).append(took)
    out = ["", f"context-big: io.copy / COPY of {files} files, {size / 1e6:.0f} MB; {rounds} round(s), "
           "seconds, median (min–max)",
           f"{'scenario':<21}{'dsl build':<22}{'docker build':<22}dsl / docker build (≤ 1.0)"]
    for scenario, label in (("cold", "cold, after a prune"), ("changed", "one file changed")):
        ours, peer = times.get((scenario, "dsl"), []), times.get((scenario, "docker build"), [])
        ratio = "—"
        if ours and peer:
            r = statistics.median(ours) / statistics.median(peer)
            ratio = f"{r:.2f} {'ok' if r <= 1.0 else 'MISSED'}"
        out.append(f"{label:<21}{_cell(ours):<22}{_cell(peer):<22}{ratio}")
    return out + failures


def _token_head(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _write_changed(project: Path, token: str) -> None:
    path = project / "src" / CHANGED
    data = bytearray(path.read_bytes())
    data[:64] = _token_head(token).encode()
    path.write_bytes(bytes(data))


def _image_head(eng, tag: str) -> str:
    """The first 64 bytes of the changed file as the image holds it (checked, untimed)."""
    proc = eng.docker("run", "--rm", "--entrypoint", "head", tag, "-c", "64", f"{TARGET}/src/{CHANGED}",
                      check=False)
    return proc.stdout


def _run(argv: Sequence[str], env: dict[str, str], out) -> int:
    import subprocess

    return subprocess.run(list(argv), stdout=out, stderr=subprocess.STDOUT, env=env, check=False).returncode


def _cell(times: Sequence[float]) -> str:
    if not times:
        return "—"
    return f"{statistics.median(times):.2f} ({min(times):.2f}–{max(times):.2f})"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the in-process sender micro-benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
                        / "envdsl" / "bench" / "build" / "work" / "context-big")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    project = make_project(args.dir)
    print("\n".join(micro(project, args.rounds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
