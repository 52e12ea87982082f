"""Build benchmark: ``dsl build`` against envd and a Dockerfile, on one dockerd BuildKit.

    python bench/build.py [--rounds N] [--docker-host URL] [--only dsl,envd,dockerfile,dev,context-big]
                          [--cases local,registry] [--dev-baseline REV] [--json FILE]

The same environment — the test base ``debian:bookworm`` + apt ``jq`` (and ``python3-pip``) +
pip ``six idna`` + one ``run`` — is built three ways (see ``_build_peers.py``), in each case of
``CASES``:

* **local** — ``dsl build`` and the Dockerfile start from the test base in dockerd's image store;
* **registry** — the same base, pushed unchanged to the loopback registry of ``scripts/engines``
  and untagged locally, so every build resolves the tag there (what a team's base does).

envd reads its base from the registry in both cases (it cannot use dockerd's store). Each case
runs four scenarios:

* **cold** — after ``docker builder prune -af`` (cache mounts included), the tool's own cache
  (``envd prune --all``) and the built image are gone;
* **warm no-op** — the same file rebuilt unchanged;
* **add one package** — one pip package added (a different one each round, so it is never in
  any cache), rebuilt; the image is then checked to really contain it, so a tool that skips a
  changed build is reported as wrong, not fast;
* **context file changed** — the file also copies a build-context file into the image
  (``io.copy`` / ``COPY``); after an untimed build only that file's content changes, and the
  rebuilt image must hold the new content.

The ``context-big`` case (``_build_context.py``) copies a 4,000-file, 110 MB project into the
image (``io.copy`` / ``COPY``) against ``docker build``, after a cache prune and after one
file changed; ``python bench/_build_context.py`` times the FileSync sender alone, in-process.

The ``dev`` case (``_build_dev.py``) times a dev environment's cold build once the dev runtime
is cached, and how much of it the dev layer takes (target ≤ 1 s), beside the same build with
envdsl at ``--dev-baseline`` (default ``ae2b7cb``, the last commit before the runtime bundle).

Rounds alternate the tools' order; the table shows, per case and scenario, medians (and
min–max), our ratio to the better peer (target ≤ 1.0) and the client-side share of
``dsl build``'s wall time (target ≤ 5 %). It prints figures and never asserts. A tool that cannot run here is reported with the
reason and the others still run. Needs root (dockerd, a bridge) like ``scripts/engines``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _build_context import context_case  # noqa: E402
from _build_dev import dev_case  # noqa: E402
from _build_engine import Engine, engine, log_tail  # noqa: E402
from _build_peers import BuildResult, DockerfilePeer, DslPeer, EnvdPeer, push_registry_base  # noqa: E402

BASE_PACKAGES = ("six", "idna")
# Small pure-Python wheels; round r adds ADDED[r], never seen by any cache before.
ADDED = ("packaging", "iniconfig", "tomli", "pluggy", "toml", "wcwidth", "zipp", "pyparsing",
         "attrs", "certifi")
SCENARIOS = (("cold", "cold"), ("noop", "warm no-op"), ("add", "add one package"),
             ("context", "context file changed"))
PEER_ORDER = ("dsl", "envd", "dockerfile")
TITLES = {"dsl": "dsl build", "envd": "envd", "dockerfile": "Dockerfile"}


@dataclass(frozen=True)
class Case:
    """One variant of the environment that every tool builds in every scenario."""

    title: str
    registry_base: bool = False  # dsl and the Dockerfile pull the base from the loopback registry


# A new case is one entry here (and, if it needs it, a branch where the peers are pointed at it).
CASES = {
    "local": Case("base in dockerd's image store (envd: from the registry)"),
    "registry": Case("base pulled from the loopback registry", registry_base=True),
}
Results = dict[tuple[str, str, str], list[BuildResult]]  # (case, scenario, tool) -> rounds


def _cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "envdsl" / "bench" / "build"


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _image_has(eng: Engine, tag: str, package: str) -> bool:
    """True when ``pip show package`` succeeds inside the built image."""
    proc = eng.docker("run", "--rm", "--entrypoint", "python3", tag, "-m", "pip", "show", "-q", package,
                      check=False)
    return proc.returncode == 0


def _run_peer(peer: DslPeer | EnvdPeer | DockerfilePeer, eng: Engine, round_no: int, case: str,
              results: Results) -> None:
    """One round of one case for one tool: cold, warm no-op, add one package, change a context file."""
    peer.reset()
    eng.prune()
    peer.write(BASE_PACKAGES)
    added = ADDED[round_no % len(ADDED)]
    for scenario, label in SCENARIOS:
        token = ""
        if scenario == "add":
            peer.write((*BASE_PACKAGES, added))
        if scenario == "context":
            # Untimed: add an io.copy/COPY of a context file and build; then change only the file.
            peer.write((*BASE_PACKAGES, added), copy_file=True)
            peer.write_data("first\n")
            peer.build()
            token = f"round {round_no + 1}: changed\n"
            peer.write_data(token)
        result = peer.build()
        if result.ok and scenario == "add" and not _image_has(eng, peer.tag, added):
            result.ok, result.skipped_change = False, True
            _say(f"  {peer.name} {label}: the image lacks {added}: the changed build was skipped")
        if result.ok and token and peer.image_data() != token:
            result.ok, result.skipped_change = False, True
            _say(f"  {peer.name} {label}: the image has the old file: the changed build was skipped")
        if peer.name == "dsl" and scenario == "noop" and result.ok and result.solve_seconds is not None:
            why = re.findall(r"^rebuilding: (.+)$", result.log.read_text(errors="replace"), re.M)
            _say(f"  dsl build warm no-op solved instead of skipping: "
                 f"{why[0] if why else 'no `rebuilding:` reason (the up-to-date check did not apply to this build)'}")
        results.setdefault((case, scenario, peer.name), []).append(result)
        status = f"{result.seconds:6.2f} s" if result.ok else "FAILED"
        _say(f"  round {round_no + 1} {case:<8} {TITLES[peer.name]:<11} {label:<20} {status}  ({result.log})")
        if not result.ok:
            _say(log_tail(result.log))
            return


def _median(results: Sequence[BuildResult]) -> float | None:
    ok = [r.seconds for r in results if r.ok]
    return statistics.median(ok) if ok and len(ok) == len(results) else None


def _cell(results: Sequence[BuildResult]) -> str:
    if not results:
        return "—"
    med = _median(results)
    if med is None:
        skipped = sum(r.skipped_change for r in results)
        if skipped:
            return f"WRONG: skipped {skipped}/{len(results)}"
        return f"failed {sum(not r.ok for r in results)}/{len(results)}"
    times = [r.seconds for r in results]
    return f"{med:.2f} ({min(times):.2f}–{max(times):.2f})"


def _ratio(results: Results, case: str, scenario: str) -> str:
    ours = _median(results.get((case, scenario, "dsl"), []))
    peers = [m for name in ("envd", "dockerfile")
             if (m := _median(results.get((case, scenario, name), []))) is not None]
    if ours is None or not peers:
        return "—"
    ratio = ours / min(peers)
    return f"{ratio:.2f} {'ok' if ratio <= 1.0 else 'MISSED'}"


def _client_share(results: Results, case: str, scenario: str) -> str:
    """Client-side share of ``dsl build``'s wall time: wall minus ``solve_seconds``, the time it
    reported waiting on BuildKit (in its ``--metadata-file``); a build skipped as up to date
    never solves, so all of it is client time (shown as such, not as a share)."""
    runs = [r for r in results.get((case, scenario, "dsl"), []) if r.ok]
    if not runs:
        return "—"
    solved = [r for r in runs if r.solve_seconds is not None]
    if len(solved) < len(runs):
        return f"skipped {len(runs) - len(solved)}/{len(runs)}: no solve"
    client = statistics.median(r.seconds - r.solve_seconds for r in solved)
    share = statistics.median((r.seconds - r.solve_seconds) / r.seconds for r in solved)
    return f"{share * 100:4.1f} % ({client * 1000:.0f} ms) {'ok' if share <= 0.05 else 'MISSED'}"


def _interpreter_start() -> float:
    """Median wall time of a bare ``python -c pass`` (interpreter start and ``site``)."""
    times = []
    for _ in range(5):
        began = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def _client_breakdown(peer: DslPeer) -> list[str]:
    """Where a solving ``dsl build``'s client time goes: one context-file change under
    ``-X importtime`` (the last scenario left the file copied into the image)."""
    startup = _interpreter_start()
    peer.build()  # other tools' rounds pruned the cache since: warm it, as in the timed scenario
    peer.write_data("breakdown: changed\n")
    result = peer.build(python_flags=("-X", "importtime"))
    if not result.ok or result.solve_seconds is None:
        return [f"  (breakdown run failed or did not solve; see {result.log})"]
    top: dict[str, float] = {}
    started = False  # imports up to `site` are part of the interpreter start
    for cum_us, name in re.findall(r"^import time:\s+\d+ \|\s+(\d+) \| (.+)$",
                                   result.log.read_text(errors="replace"), re.M):
        if name.startswith(" "):
            continue  # nested: its top-level parent's cumulative time covers it
        if started:
            top[name] = top.get(name, 0.0) + int(cum_us) / 1e6
        started = started or name == "site"
    imports = sum(top.values())
    heavy = ", ".join(f"{n} {t * 1000:.0f}" for n, t in sorted(top.items(), key=lambda kv: -kv[1])[:8])
    waited = result.solve_seconds
    rest = result.seconds - startup - imports - waited
    return [
        f"  breakdown of one context-file-changed build under -X importtime ({result.seconds * 1000:.0f} ms wall; "
        "importtime itself slows imports; an interpreter option makes dsl run in-process, so this is what "
        "the warm server saves the rows above):",
        f"    interpreter start + site {startup * 1000:.0f} ms (a bare `python -c pass`); imports "
        f"{imports * 1000:.0f} ms (largest top-level, ms: {heavy});",
        f"    waiting on BuildKit {waited * 1000:.0f} ms; the rest (evaluate, compile, connect, session, "
        f"record, report) {rest * 1000:.0f} ms",
    ]


def _report(results: Results, peers: dict, eng: Engine, rounds: int, cases: Sequence[str],
            breakdown: Sequence[str]) -> str:
    server = eng.docker("version", "-f", "{{.Server.Version}}", check=False).stdout.strip()
    envd = peers.get("envd")
    out = [
        "",
        f"Build benchmark: {eng.base_image} + apt {' '.join(('jq', 'python3-pip'))} + pip "
        f"{' '.join(BASE_PACKAGES)} + one run; {rounds} round(s), seconds, median (min–max)",
        f"engine: {'private' if eng.private else 'existing'} dockerd {server} ({eng.docker_host}); "
        f"docker CLI {eng.docker_cli[0]}"
        + (f"; envd {envd.version}" if envd is not None and not envd.unavailable else ""),
        "",
        f"{'scenario':<24}" + "".join(f"{TITLES[n]:<22}" for n in PEER_ORDER)
        + f"{'dsl / better peer (≤ 1.0)':<27}dsl client share (≤ 5 %)",
    ]
    for case in cases:
        out.append(f"{case}: {CASES[case].title}")
        for scenario, label in SCENARIOS:
            row = f"  {label:<22}" + "".join(f"{_cell(results.get((case, scenario, n), [])):<22}" for n in PEER_ORDER)
            out.append(row + f"{_ratio(results, case, scenario):<27}" + _client_share(results, case, scenario))
    out.append("client share = (wall − solve_seconds) / wall, medians; `skipped`: up to date, no solve at all")
    if breakdown:
        out += ["", *breakdown]
    for name in PEER_ORDER:
        peer = peers.get(name)
        if peer is not None and peer.unavailable:
            out.append(f"not run: {TITLES[name]}: {peer.unavailable}")
    return "\n".join(out)


def _as_json(results: Results) -> dict:
    return {f"{case}/{scenario}/{name}": [{"seconds": r.seconds, "ok": r.ok, "solve_seconds": r.solve_seconds}
                                          for r in runs] for (case, scenario, name), runs in sorted(results.items())}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds per tool (default 3)")
    parser.add_argument("--docker-host", help="use this dockerd instead of a private one (its build cache is pruned!)")
    parser.add_argument("--only", default=",".join((*PEER_ORDER, "dev", "context-big")),
                        help="comma-separated tools to run, `dev` for the dev=True case and "
                             "`context-big` for the big build context (_build_context.py)")
    parser.add_argument("--cases", default=",".join(CASES),
                        help=f"comma-separated cases, each run by every tool (default: {','.join(CASES)})")
    parser.add_argument("--dev-baseline", default="ae2b7cb", metavar="REV",
                        help="envdsl revision the dev=True case compares with (default: the last commit before the bundle)")
    parser.add_argument("--json", type=Path, help="also write the raw timings here")
    args = parser.parse_args(argv)
    # `kill PID` should stop the private dockerd and remove its bridge like Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    wanted = [n for n in PEER_ORDER if n in args.only.split(",")]
    cases = [c for c in args.cases.split(",") if c]
    if unknown := [c for c in cases if c not in CASES]:
        parser.error(f"unknown case(s) {', '.join(unknown)}; known: {', '.join(CASES)}")
    cache = _cache_dir()
    work = cache / "work"
    with engine(cache, args.docker_host) as eng:
        _say(f"engine: {eng.docker_host}, registry {eng.registry}, docker CLI {eng.docker_cli[0]}")
        factories = {"dsl": lambda: DslPeer(eng, work), "envd": lambda: EnvdPeer(eng, work, cache),
                     "dockerfile": lambda: DockerfilePeer(eng, work)}
        peers = {name: factories[name]() for name in wanted}
        for name, peer in peers.items():
            if peer.unavailable:
                _say(f"{TITLES[name]} will not run: {peer.unavailable}")
        runnable = [p for p in peers.values() if not p.unavailable]
        registry_base = push_registry_base(eng) if any(CASES[c].registry_base for c in cases) else ""
        results: Results = {}
        for round_no in range(args.rounds):
            shift = round_no % max(1, len(runnable))
            for case in cases:
                for peer in runnable[shift:] + runnable[:shift]:
                    if not isinstance(peer, EnvdPeer):  # envd's base is always its own, in the registry
                        peer.base = registry_base if CASES[case].registry_base else eng.base_image
                    _run_peer(peer, eng, round_no, case, results)
        breakdown: list[str] = []
        dsl = peers.get("dsl")
        last_case = cases[-1] if cases else ""
        if dsl is not None and not dsl.unavailable and ((last_case, "context", "dsl") in results):
            breakdown = _client_breakdown(dsl)  # on the last case's base, which dsl still points at
        for peer in runnable:
            peer.reset()
        dev = dev_case(eng, work, cache, args.dev_baseline, args.rounds) if "dev" in args.only.split(",") else []
        if "context-big" in args.only.split(","):
            dev += context_case(eng, work, args.rounds)
        table = _report(results, peers, eng, args.rounds, cases, breakdown) if results or not dev else ""
        print("\n".join([table, *dev]) if dev else table)
    if args.json:
        args.json.write_text(json.dumps(_as_json(results), indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
