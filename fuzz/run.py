"""Fuzz evaluation and every compiler: ``python fuzz/run.py --execs N``.

Property (``fuzz/target.py``): every input, a ``build.envd``'s bytes, ends in artifacts or a
``DslError``; never another exception, never a hang. The seeds are the examples, the
bad-input suite (``tests/lang/bad``) and the envd corpus (``shared/envd-corpus`` beside the
checkout or above it; ``--envd-corpus`` to name it).

Workers are libFuzzer processes (``atheris``, coverage of ``dsl`` and ``compiler``) run by this
supervisor. A worker records a Python exception itself and goes on. An input that runs past
``--timeout`` seconds (libFuzzer's own alarm, which also stops a loop inside C code such as a
regular expression), a native crash or an out-of-memory ends the worker; the supervisor
records it and starts the worker again until the executions are done.

Everything found lands in ``WORKDIR/findings/``: per finding the input (``.envd``) and a
``.txt`` with its kind, the traceback or libFuzzer's report and the input's first bytes. The
summary lists them; the exit status is 1 when anything was found. Progress lines (executions,
executions/s, findings) go to stderr and, with ``--progress FILE``, to that file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path[:1]:
    sys.path.insert(0, str(REPO))  # this checkout's dsl/compiler, not an installed copy

MAX_RESTARTS = 200


# ---- seeds ------------------------------------------------------------------------------------


def find_envd_corpus() -> Path | None:
    """``shared/envd-corpus`` beside the checkout or beside one of its parents."""
    for parent in REPO.parents:
        candidate = parent / "shared" / "envd-corpus"
        if candidate.is_dir():
            return candidate
    return None


def seed_files(envd_corpus: Path | None) -> list[Path]:
    """The examples' build files, the bad-input suite and the envd corpus's ``.envd`` files."""
    files = sorted(REPO.glob("examples/*/build.envd")) + sorted((REPO / "tests" / "lang" / "bad").glob("*.envd"))
    files += sorted((REPO / "tests" / "fuzz" / "regressions").glob("*.envd"))
    if envd_corpus is not None:
        files += sorted(envd_corpus.glob("*.envd"))
    return files


def write_seeds(directory: Path, files: list[Path]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for path in files:
        rel = path.relative_to(path.parents[1]) if path.is_relative_to(REPO / "examples") else Path(path.name)
        shutil.copyfile(path, directory / str(rel).replace(os.sep, "__"))


def write_dictionary(path: Path) -> None:
    """libFuzzer tokens: builtin names, their parameters and Starlark keywords."""
    from dsl.lang import builtins

    words = {"def build():\n    ", "load(", "include(", "return ", "lambda ", " for ", " in ", " if ",
             "True", "False", "None", "# syntax=v1\n", "=", "(", ")", "[", "]", "{", "}", ",", ":"}
    for b in builtins():
        words.add(b.name + "(")
        words.update(f"{p.name}=" for p in b.params if p.kind == "normal")
    def quoted(word: str) -> str:  # libFuzzer's syntax: printable ASCII, \\, \" and \xHH
        return '"' + "".join(chr(b) if 32 <= b < 127 and b not in b'\\"' else f"\\x{b:02X}"
                             for b in word.encode()) + '"'

    path.write_text("".join(quoted(w) + "\n" for w in sorted(words)), encoding="ascii")


# ---- worker (one libFuzzer process) ----------------------------------------------------------


def _signature(exc: BaseException) -> str:
    """Exception type + innermost frame of ours: one finding per distinct bug, not per input."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if f"{os.sep}dsl{os.sep}" in f.filename or f"{os.sep}compiler{os.sep}" in f.filename]
    where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"
    return f"{type(exc).__name__}@{where}"


def write_finding(findings: Path, kind: str, data: bytes, report: str) -> Path:
    """``findings/<kind>-<sha1>.envd`` plus a ``.txt`` report; returns the input's path."""
    findings.mkdir(parents=True, exist_ok=True)
    stem = f"{kind}-{hashlib.sha1(data).hexdigest()[:16]}"
    (findings / f"{stem}.envd").write_bytes(data)
    head = data[:400].decode("utf-8", "backslashreplace")
    (findings / f"{stem}.txt").write_text(f"kind: {kind}\n\n{report}\n\ninput (first 400 bytes):\n{head}\n",
                                          encoding="utf-8")
    return findings / f"{stem}.envd"


def worker(args: argparse.Namespace, libfuzzer_args: list[str]) -> None:
    import atheris

    with atheris.instrument_imports(include=["dsl", "compiler"]):
        import compiler.k8s._pyyaml  # noqa: F401 - imported lazily by dump_yaml: instrument it now
        from fuzz import target
        from fuzz.mutate import Mutator
        from dsl.lang import builtins

    # atheris.Mutate is rebound by Setup() (to the libFuzzer core): look it up at call time
    mutator = Mutator({b.name: {p.name: p.default for p in b.params if p.kind == "normal"} for b in builtins()},
                      lambda data, max_size: atheris.Mutate(data, max_size))
    workdir = Path(args.workdir)
    findings = workdir / "findings"
    progress = workdir / f"progress-{args.worker_id}.json"
    seen = {line.split(": ", 1)[1] for txt in findings.glob("crash-*.txt")  # also a restarted worker's
            for line in txt.read_text(encoding="utf-8").splitlines()[:3] if line.startswith("signature: ")}
    state = {"execs": args.done, "python_crashes": 0, "evaluated": 0, "last": time.monotonic()}
    goal = args.done + args.runs

    def write_progress() -> None:
        tmp = progress.with_suffix(".tmp")
        tmp.write_text(json.dumps({k: state[k] for k in ("execs", "python_crashes", "evaluated")}))
        tmp.replace(progress)

    run_one = _planted(target.run_one) if args.plant else target.run_one

    def test_one(data: bytes) -> None:
        state["execs"] += 1
        try:
            if run_one(data, eval_timeout=args.eval_timeout)["eval"] == "ok":
                state["evaluated"] += 1
        except Exception as exc:  # the bug being looked for: record it and go on
            sig = _signature(exc)
            if sig not in seen:
                seen.add(sig)
                state["python_crashes"] += 1
                report = f"signature: {sig}\n\n" + "".join(traceback.format_exception(exc))
                write_finding(findings, "crash", data, report)
        now = time.monotonic()
        if now - state["last"] > 1.0 or state["execs"] >= goal:  # libFuzzer exits without returning
            state["last"] = now
            write_progress()

    write_progress()
    atheris.Setup([sys.argv[0], *libfuzzer_args], test_one, custom_mutator=mutator)
    try:
        atheris.Fuzz()
    finally:
        write_progress()


PLANTED = (b"# FUZZ-PLANTED-CRASH\ndef build():\n    pass\n", b"# FUZZ-PLANTED-HANG\ndef build():\n    pass\n")


def _planted(run_one):
    """``run_one`` with two planted bugs, for testing the harness itself (``--plant``): an
    exception, and a hang inside C code (a regular expression that backtracks for hours)."""
    import re

    def planted(data: bytes, **kwargs):
        if b"FUZZ-PLANTED-CRASH" in data:
            raise RuntimeError("planted crash")
        if b"FUZZ-PLANTED-HANG" in data:
            re.match(r"(?:a|aa)+$", "a" * 64 + "b")
        return run_one(data, **kwargs)

    return planted


# ---- supervisor -------------------------------------------------------------------------------


class _Broken(Exception):
    """A worker failed without leaving a finding: the harness itself is broken."""


class Supervisor:
    """Runs the workers to ``execs`` executions in all, restarting those that stop early."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.workdir = Path(args.workdir)
        self.findings = self.workdir / "findings"
        self.artifacts = self.workdir / "artifacts"
        self.corpus = self.workdir / "corpus"
        self.seeds = self.workdir / "seeds"
        self.progress_file = Path(args.progress) if args.progress else None
        self.hangs: list[Path] = []
        self.native: list[Path] = []
        self.restarts = 0

    def prepare(self) -> None:
        for d in (self.findings, self.artifacts, self.corpus, self.workdir / "quarantine"):
            d.mkdir(parents=True, exist_ok=True)
        corpus = Path(self.args.envd_corpus) if self.args.envd_corpus else find_envd_corpus()
        files = seed_files(corpus if corpus and corpus.is_dir() else None)
        write_seeds(self.seeds, files)
        if self.args.plant:
            for i, data in enumerate(PLANTED):
                (self.seeds / f"planted-{i}.envd").write_bytes(data)
        write_dictionary(self.workdir / "tokens.dict")
        self.say(f"fuzz: {len(files)} seeds (envd corpus: {corpus or 'not found'}); work directory {self.workdir}")

    def say(self, line: str) -> None:
        print(line, file=sys.stderr, flush=True)
        if self.progress_file is not None:
            with self.progress_file.open("a", encoding="utf-8") as out:
                out.write(line + "\n")

    def executed(self, wid: int) -> int:
        try:
            return json.loads((self.workdir / f"progress-{wid}.json").read_text())["execs"]
        except (OSError, ValueError, KeyError):
            return 0

    def start(self, wid: int, done: int, runs: int) -> subprocess.Popen:
        a = self.args
        lib = [f"-runs={runs}", f"-seed={a.seed * 1000 + wid * 100 + self.restarts + 1}", f"-timeout={a.timeout:g}",
               f"-rss_limit_mb={a.rss_limit_mb}", f"-max_len={a.max_len}", f"-artifact_prefix={self.artifacts}/",
               f"-dict={self.workdir / 'tokens.dict'}", "-print_final_stats=1", "-close_fd_mask=1",
               "-mutate_depth=2",  # each mutation is a whole token or call: two keep most inputs Starlark
               str(self.corpus), str(self.seeds)]
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--worker-id", str(wid), "--done", str(done),
               "--runs", str(runs), *(["--plant"] if a.plant else []),
               "--workdir", str(self.workdir), "--eval-timeout", str(a.eval_timeout), "--", *lib]
        log = (self.workdir / f"worker-{wid}.log").open("ab")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
        return subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env, cwd=self.workdir)

    def collect_artifacts(self, wid: int, code: int) -> int:
        """A worker that ended early left libFuzzer's artifact: move it into findings.

        Returns:
            How many artifacts there were.
        """
        log = (self.workdir / f"worker-{wid}.log").read_bytes().decode("utf-8", "replace")
        marks = [log.rfind(m) for m in ("ALARM:", "==ERROR: libFuzzer", "=== Uncaught", "deadly signal")]
        report = log[max(max(marks), len(log) - 6000, 0):][-6000:]
        count = 0
        for art in sorted(self.artifacts.iterdir()):
            kind = art.name.split("-", 1)[0]  # timeout, crash, oom, slow-unit
            label = {"timeout": "hang", "crash": "native-crash", "oom": "oom"}.get(kind, kind)
            data = art.read_bytes()
            found = write_finding(self.findings, label, data, f"worker exit status {code}\n\n{report}")
            listed = self.hangs if label == "hang" else self.native
            if found not in listed:
                listed.append(found)
                self.say(f"fuzz: found a {label}: {found} (input {data[:120]!r})")
            self.quarantine(data)
            art.unlink()
            count += 1
        return count

    def quarantine(self, data: bytes) -> None:
        """Take an input that stops a worker out of the seeds and the corpus: a restarted
        worker runs them all first and would stop on it again."""
        for directory in (self.seeds, self.corpus):
            for path in directory.iterdir():
                if path.stat().st_size == len(data) and path.read_bytes() == data:
                    path.replace(self.workdir / "quarantine" / path.name)

    def run(self) -> int:
        a = self.args
        self.prepare()
        goal = {i: a.execs // a.workers + (1 if i < a.execs % a.workers else 0) for i in range(a.workers)}
        procs = {wid: self.start(wid, 0, n) for wid, n in goal.items() if n > 0}
        started = last_report = time.monotonic()
        broken = False
        try:
            self._loop(procs, goal, started, last_report)
        except _Broken:
            broken = True
        finally:  # also on Ctrl-C or SIGTERM: no worker outlives the supervisor
            for proc in procs.values():
                proc.kill()
                proc.wait()
        return 2 if broken else self.summary(time.monotonic() - started)

    def _loop(self, procs: dict[int, subprocess.Popen], goal: dict[int, int], started: float, last_report: float) -> None:
        a = self.args
        while procs:
            time.sleep(0.2)
            for wid, proc in list(procs.items()):
                code = proc.poll()
                if code is None:
                    continue
                del procs[wid]
                done = self.executed(wid)
                if code == 0:
                    continue
                if not self.collect_artifacts(wid, code):
                    log = (self.workdir / f"worker-{wid}.log").read_text(encoding="utf-8", errors="replace")
                    self.say(f"fuzz: worker {wid} failed with status {code} and no finding:\n{log[-3000:]}")
                    raise _Broken
                left = goal[wid] - done - 1  # the input that ended it counts as executed
                if left > 0 and self.restarts < MAX_RESTARTS:
                    self.restarts += 1
                    procs[wid] = self.start(wid, done + 1, left)
                elif left > 0:
                    self.say(f"fuzz: worker {wid} stopped {MAX_RESTARTS} times; its last {left} executions are skipped")
            now = time.monotonic()
            if now - last_report >= a.report_every:
                last_report = now
                self.report(now - started)

    def totals(self) -> tuple[int, int, int]:
        """Executions, inputs that evaluated (this run of each worker), crash findings."""
        execs = evaluated = 0
        for wid in range(self.args.workers):
            try:
                data = json.loads((self.workdir / f"progress-{wid}.json").read_text())
            except (OSError, ValueError):
                continue
            execs += data.get("execs", 0)
            evaluated += data.get("evaluated", 0)
        return execs, evaluated, len(list(self.findings.glob("crash-*.envd")))

    def report(self, elapsed: float) -> None:
        execs, evaluated, crashes = self.totals()
        rate = execs / elapsed if elapsed else 0.0
        self.say(f"fuzz: {execs} execs in {elapsed:.0f}s ({rate:.0f}/s, {evaluated} evaluated); {crashes} crashes, "
                 f"{len(self.hangs)} hangs, {len(self.native)} native/oom, {self.restarts} restarts")

    def summary(self, elapsed: float) -> int:
        execs, _, crashes = self.totals()
        found = sorted(self.findings.glob("*.envd"))
        self.say(f"fuzz: done: {execs} executions in {elapsed:.1f}s ({execs / max(elapsed, 1e-9):.0f}/s), "
                 f"{self.args.workers} workers; {crashes} crashes, {len(self.hangs)} hangs, {len(self.native)} native/oom")
        for path in found:
            report = path.with_suffix(".txt").read_text(encoding="utf-8")
            first = next((ln for ln in report.splitlines() if ln.startswith("signature:")), report.splitlines()[0])
            self.say(f"  {path}  {first}  input: {path.read_bytes()[:160]!r}")
        return 1 if found else 0


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    argv, extra = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--execs", type=int, default=20_000, help="executions in all workers together (default 20000)")
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1), help="parallel libFuzzer processes")
    # The CLI's evaluation limit is 10 s, but a constant folded by the interpreter or one native
    # call ("x" * (1 << 29)) cannot be interrupted and takes ~6 s (12 s on a busy machine).
    p.add_argument("--timeout", type=float, default=30.0, help="per-input wall limit in seconds; past it: a hang")
    p.add_argument("--eval-timeout", type=float, default=1.0, help="the evaluator's own time limit per input")
    p.add_argument("--workdir", help="corpus, seeds and findings (default: a new temporary directory)")
    p.add_argument("--seed", type=int, default=1, help="random seed (workers derive theirs from it)")
    p.add_argument("--max-len", type=int, default=16384, help="largest input libFuzzer generates (bytes)")
    # One Starlark value may reach 4 GiB before the interpreter's 32-bit size check refuses it
    # with an error (dsl/lang/_limits.py); past that plus the worker itself, it is a finding.
    p.add_argument("--rss-limit-mb", type=int, default=6144, help="memory limit of a worker (an oom finding past it)")
    p.add_argument("--envd-corpus", help="directory of envd build files (default: shared/envd-corpus found above the checkout)")
    p.add_argument("--progress", help="also append progress lines to this file")
    p.add_argument("--report-every", type=float, default=10.0, help="seconds between progress lines")
    p.add_argument("--plant", action="store_true", help="plant a crash and a hang (tests of the harness itself)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--worker-id", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--done", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--runs", type=int, default=0, help=argparse.SUPPRESS)
    return p.parse_args(argv), extra


def main(argv: list[str] | None = None) -> int:
    args, extra = parse_args(sys.argv[1:] if argv is None else argv)
    if args.worker:
        worker(args, extra)
        return 0
    try:
        import atheris  # noqa: F401 - fail here, with the remedy, not in every worker
    except ImportError:
        print("fuzz: atheris is not installed; pip install -e '.[dev]' (or pip install atheris)", file=sys.stderr)
        return 2
    args.workdir = args.workdir or tempfile.mkdtemp(prefix="envdsl-fuzz-")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally that stops the workers
    return Supervisor(args).run()


if __name__ == "__main__":
    sys.exit(main())
