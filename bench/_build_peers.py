"""The three builders that ``bench/build.py`` times, and the engine they share.

Each peer builds the same environment — the test base ``debian:bookworm`` plus apt ``jq``
(and ``python3-pip``: the minbase has no pip, and every tool needs one), pip packages, and one
``run`` — on the same dockerd BuildKit:

* :class:`DslPeer` — our ``dsl build`` (with ``--ca-bundle`` for pip behind the re-signing proxy);
* :class:`EnvdPeer` — envd itself, installed with pip into a venv under the bench's cache dir;
* :class:`DockerfilePeer` — an equivalent Dockerfile with cache mounts, built by a Docker
  20.10-style client with ``DOCKER_BUILDKIT=1``.

A peer that cannot run here carries the exact reason in ``unavailable`` instead of raising, so
the benchmark still runs the others.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from _build_engine import Engine, run_logged

REPO = Path(__file__).resolve().parent.parent
MARKER_RUN = "echo envdsl-bench > /tmp/bench-marker"
APT_PACKAGES = ("jq", "python3-pip")
# The context probe copies this build-context file into the image, then changes it.
DATA_FILE = "bench-data.txt"
DATA_TARGET = "/opt/bench/bench-data.txt"


@dataclass
class BuildResult:
    """One timed build."""

    seconds: float
    ok: bool
    log: Path
    solve_seconds: float | None = None  # time spent waiting on the builder (dsl only)
    skipped_change: bool = False  # the inputs changed but the image did not


def _build_envd(base: str, packages: Sequence[str], copy_file: bool) -> str:
    """The build.envd shared by ``dsl build`` and envd (json lists are valid Starlark)."""
    copy = f"    io.copy(source={json.dumps(DATA_FILE)}, target={json.dumps(DATA_TARGET)})\n"
    return textwrap.dedent(
        f"""\
        # syntax=v1
        def build():
            base(image={json.dumps(base)}, dev=False)
            install.apt_packages(name={json.dumps(list(APT_PACKAGES))})
            install.python_packages(name={json.dumps(list(packages))})
            run(commands={json.dumps([MARKER_RUN])})
        """
    ) + (copy if copy_file else "")


class _Peer:
    """What every peer shares: a project dir, an image tag, a log per build."""

    name = ""

    def __init__(self, engine: Engine, work: Path) -> None:
        self.engine = engine
        self.project = work / self.name / "bench-env"
        self.project.mkdir(parents=True, exist_ok=True)
        self.logs = work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.tag = f"envdsl-bench-{self.name}:dev"
        self.base = engine.base_image  # where the base comes from: a case may point it at the registry
        self.unavailable = ""
        self._count = 0

    def _log(self) -> Path:
        self._count += 1
        return self.logs / f"{self.name}-{self._count:03d}.log"

    def reset(self) -> None:
        """Remove the built image (the harness prunes the shared build cache itself)."""
        self.engine.remove_image(self.tag)

    def write_data(self, text: str) -> None:
        """Write the build-context file the context probe copies into the image."""
        (self.project / DATA_FILE).write_text(text)

    def image_data(self) -> str:
        """The copied file's content in the built image ('' when missing)."""
        proc = self.engine.docker("run", "--rm", "--entrypoint", "cat", self.tag, DATA_TARGET, check=False)
        return proc.stdout if proc.returncode == 0 else ""

    def _timed(self, argv: Sequence[str], env: dict[str, str]) -> BuildResult:
        log = self._log()
        start = time.perf_counter()
        code = run_logged(argv, log, env=env, cwd=self.project)
        return BuildResult(time.perf_counter() - start, code == 0, log)


class DockerfilePeer(_Peer):
    """An equivalent Dockerfile: apt and pip cache mounts, the CA bundle as a build secret."""

    name = "dockerfile"

    def write(self, packages: Sequence[str], copy_file: bool = False) -> None:
        """Write the Dockerfile for these pip packages (and the context file's COPY).

        The steps are in the order envd and ``dsl build`` compile the build file (envd's stage
        order: ``io.copy`` before ``run``), so a changed context file re-runs the same steps.
        """
        # No `# syntax=` line: it would pull a frontend image from Docker Hub, unreachable here;
        # dockerd 20.10's built-in frontend already knows RUN --mount.
        text = textwrap.dedent(
            f"""\
            FROM {self.base}
            ENV PIP_BREAK_SYSTEM_PACKAGES=1
            RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \\
                --mount=type=cache,target=/var/lib/apt/lists,sharing=locked \\
                apt-get update && apt-get install -y --no-install-recommends {" ".join(APT_PACKAGES)}
            RUN --mount=type=cache,target=/root/.cache/pip \\
                --mount=type=secret,id=ca,target=/run/secrets/ca.crt \\
                PIP_CERT=/run/secrets/ca.crt python3 -m pip install {" ".join(packages)}
            """
        ) + (f"COPY {DATA_FILE} {DATA_TARGET}\n" if copy_file else "") + f"RUN {MARKER_RUN}\n"
        (self.project / "Dockerfile").write_text(text)

    def build(self) -> BuildResult:
        """``docker build`` with BuildKit; the CA bundle never lands in a layer."""
        argv = [*self.engine.docker_cli, "build", "--progress", "plain",
                "--secret", f"id=ca,src={self.engine.ca_bundle}", "-t", self.tag, "."]
        return self._timed(argv, {**self.engine.env(), "DOCKER_BUILDKIT": "1"})


class EnvdPeer(_Peer):
    """envd, installed privately, reading its base from the loopback registry.

    envd reads the base image config from a registry (never from dockerd), runs
    ``python -m pip``, and has no build-time CA option; so its base is ``debian:bookworm``
    plus a ``python`` on PATH, pip allowed over Debian's Python (``break-system-packages``,
    what ``PIP_BREAK_SYSTEM_PACKAGES=1`` does) and the host CA bundle, pushed to the registry. envd runs with a private ``HOME`` under the bench cache: its contexts and
    caches stay there, and the registry is marked insecure in that HOME's
    ``.config/containers/registries.conf`` (the per-user file containers/image reads before
    ``/etc/containers/registries.conf``), so no system file is touched.
    """

    name = "envd"

    def __init__(self, engine: Engine, work: Path, cache: Path) -> None:
        super().__init__(engine, work)
        self.venv = cache / "envd-venv"
        self.home = cache / "envd-home"
        self.base = f"{engine.registry}/envdsl-bench/envd-base:1"
        self.version = ""
        try:
            self._install()
            self._configure_home()
            self._push_base(work / "envd-base")
        except _SetupFailed as exc:
            self.unavailable = str(exc)

    @property
    def binary(self) -> Path:
        return self.venv / "bin" / "envd"

    def _install(self) -> None:
        if not self.binary.exists():
            if not (self.venv / "bin" / "python").exists():
                _check([sys.executable, "-m", "venv", str(self.venv)], "python -m venv")
            _check([str(self.venv / "bin" / "pip"), "install", "-q", "envd"], "pip install envd")
        out = _check([str(self.binary), "version", "--short"], "envd version")
        found = re.search(r"v\d+\.\d+\.\d+", out)
        self.version = found.group(0) if found else out.strip()

    def _configure_home(self) -> None:
        conf = self.home / ".config" / "containers" / "registries.conf"
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(f'[[registry]]\nlocation = "{self.engine.registry}"\ninsecure = true\n')

    def _push_base(self, context: Path) -> None:
        context.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.engine.ca_bundle, context / "host-ca.crt")
        # envd 1.3.6 adds the base image's ENV to every step in Go map order (compileBaseImage
        # ranges over a map), so with two or more ENV entries the same build.envd compiles to
        # different LLB from run to run and misses the cache at random. Give envd its best
        # case: settings in files and a base whose config has PATH only. /etc/pip.conf allows
        # installing over Debian's Python (PEP 668, what PIP_BREAK_SYSTEM_PACKAGES=1 does);
        # the CA bundle replaces the system one and sits where update-ca-certificates keeps it.
        ca = "/usr/local/share/ca-certificates/envdsl-bench-host.crt"
        (context / "Dockerfile").write_text(
            f"FROM {self.engine.base_image}\n"
            f"COPY host-ca.crt {ca}\n"
            f"RUN ln -sf /usr/bin/python3 /usr/local/bin/python && cp {ca} /etc/ssl/certs/ca-certificates.crt"
            " && printf '[global]\\nbreak-system-packages = true\\n' > /etc/pip.conf\n"
        )
        env = {**self.engine.env(), "DOCKER_BUILDKIT": "1"}
        staged = "envdsl-bench/envd-base-staged:1"
        _check([*self.engine.docker_cli, "build", "-q", "-t", staged, str(context)],
               "building envd's base image", env=env)
        path = _check([*self.engine.docker_cli, "image", "inspect", "-f", "{{json .Config.Env}}", staged],
                      "reading the staged base's ENV", env=env)
        path_entry = next(e for e in json.loads(path) if e.startswith("PATH="))
        self._flatten(staged, path_entry, env)
        _check([*self.engine.docker_cli, "push", self.base],
               f"pushing envd's base image to {self.engine.registry}", env=env)

    def _flatten(self, staged: str, path_entry: str, env: dict[str, str]) -> None:
        """Re-import the staged image's filesystem with ``ENV PATH`` as its only config."""
        name = "envdsl-bench-envd-base-export"
        subprocess.run([*self.engine.docker_cli, "rm", "-f", name], capture_output=True, env=env)
        _check([*self.engine.docker_cli, "create", "--name", name, staged, "true"],
               "creating a container from the staged base", env=env)
        try:
            export = subprocess.Popen([*self.engine.docker_cli, "export", name], stdout=subprocess.PIPE, env=env)
            imported = subprocess.run([*self.engine.docker_cli, "import", "--change", f"ENV {path_entry}", "-",
                                       self.base], stdin=export.stdout, capture_output=True, text=True, env=env)
            if export.wait() != 0 or imported.returncode != 0:
                raise _SetupFailed(f"flattening envd's base image failed: {imported.stderr.strip()}")
        finally:
            subprocess.run([*self.engine.docker_cli, "rm", "-f", name], capture_output=True, env=env)

    def _env(self) -> dict[str, str]:
        return {**self.engine.env(), "HOME": str(self.home), "XDG_CONFIG_HOME": "",
                "XDG_CACHE_HOME": "", "XDG_DATA_HOME": ""}

    def write(self, packages: Sequence[str], copy_file: bool = False) -> None:
        """Write build.envd for these pip packages, on envd's registry base."""
        (self.project / "build.envd").write_text(_build_envd(self.base, packages, copy_file))

    def build(self) -> BuildResult:
        """``envd build`` on the engine's dockerd (its default moby-worker builder)."""
        argv = [str(self.binary), "--analytics-enabled=false", "build",
                "--path", str(self.project), "-t", self.tag]
        return self._timed(argv, self._env())

    def reset(self) -> None:
        """Remove envd's image and its own caches (``envd prune --all``)."""
        super().reset()
        run_logged([str(self.binary), "--analytics-enabled=false", "prune", "--all"],
                   self._log(), env=self._env(), cwd=self.project)


class DslPeer(_Peer):
    """Our ``dsl build``, run as a user runs it (``python -m dsl``): the first build of a run
    starts the warm server (docs/build.md, "Start-up") and later ones run through it.

    Each build writes ``--metadata-file``, whose ``solve_seconds`` is how long ``dsl build``
    itself was blocked on BuildKit's answers (0 for a build skipped as up to date), so the
    harness can report the client-side share of wall time without wrapping anything.

    ``dsl`` runs as installed, with its bytecode cached (``pip install`` compiles it): here in
    a private ``PYTHONPYCACHEPREFIX`` that the first build fills, so the checkout stays clean
    and a ``PYTHONDONTWRITEBYTECODE=1`` shell does not make every start compile from source.
    """

    name = "dsl"

    def __init__(self, engine: Engine, work: Path) -> None:
        super().__init__(engine, work)
        probe = subprocess.run([sys.executable, "-m", "dsl", "build", "--help"], cwd=REPO,
                               capture_output=True, text=True, env=engine.env())
        if probe.returncode != 0 or "Usage" not in probe.stdout:
            self.unavailable = ("`dsl build` is not available yet (`python -m dsl build --help` "
                                f"exited {probe.returncode}): the command is still being written")
        self._metadata = work / "dsl-metadata.json"
        self._pycache = work / "dsl-pycache"

    def write(self, packages: Sequence[str], copy_file: bool = False) -> None:
        """Write build.envd for these pip packages, on the case's base (the plain test base,
        from dockerd's store or from the registry)."""
        (self.project / "build.envd").write_text(_build_envd(self.base, packages, copy_file))

    def build(self, python_flags: Sequence[str] = ()) -> BuildResult:
        """``python -m dsl build DIR -t TAG --ca-bundle CA``; also reads its ``solve_seconds``.

        Args:
            python_flags: interpreter options, e.g. ``-X importtime`` for the breakdown.

        Returns:
            The result; ``solve_seconds`` is None when the build was skipped as up to date
            (``0`` in the metadata) or failed before writing it.
        """
        self._metadata.unlink(missing_ok=True)
        argv = [sys.executable, *python_flags, "-m", "dsl", "build", str(self.project), "-t", self.tag,
                "--ca-bundle", self.engine.ca_bundle, "--progress", "plain", "--metadata-file", str(self._metadata)]
        env = {k: v for k, v in self.engine.env().items() if k != "PYTHONDONTWRITEBYTECODE"}
        result = self._timed(argv, {**env, "PYTHONPATH": str(REPO), "PYTHONPYCACHEPREFIX": str(self._pycache)})
        if self._metadata.exists():
            waited = json.loads(self._metadata.read_text()).get("solve_seconds")
            result.solve_seconds = waited if waited else None
        return result


def push_registry_base(engine: Engine) -> str:
    """The test base, unchanged, pushed to the loopback registry; its ref.

    The local tag is removed again, so a build ``FROM`` it resolves the tag in the registry
    (dockerd's BuildKit prefers an image in its own store under the same name); the layers stay
    in the store under the test base's own name, as on any machine that pulled it before.
    """
    ref = f"{engine.registry}/envdsl-bench/base:1"
    engine.docker("tag", engine.base_image, ref)
    try:
        engine.docker("push", ref)
    finally:
        engine.remove_image(ref)
    return ref


class _SetupFailed(Exception):
    """A peer's set-up step failed; the message says which and why."""


def _check(argv: Sequence[str], what: str, env: dict[str, str] | None = None) -> str:
    """Run a set-up command; raise :class:`_SetupFailed` with its last output lines."""
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True,
                              env=env if env is not None else dict(os.environ))
    except OSError as exc:
        raise _SetupFailed(f"{what}: {exc}") from exc
    if proc.returncode != 0:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise _SetupFailed(f"{what} failed (exit {proc.returncode}): {tail}")
    return proc.stdout

