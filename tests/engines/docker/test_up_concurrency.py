"""Ownership by generation: parallel ``dsl up`` of the same environments never leave two
containers or a half-updated one, whatever the load shape.

Four environments (four project directories) each get two configurations, generation 1 and
generation 2 (``--generation``), so eight ``dsl up --detach`` run at once, in the load shapes of
a coordination benchmark: all at once, one every fixed interval, fixed batches (each after the
last finished), and batches of changing size (each started when any of the last one ended).
Every shape must end with exactly four containers, each running generation 2; every command
returns in time; generation 2 always succeeds and a losing generation 1 says why.
"""

from __future__ import annotations

import random
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from dsl.identity import PROJECT_LABEL, project_hash
from tests.engines.docker.conftest import WEB, project

pytestmark = pytest.mark.engine

ENVIRONMENTS = 4
DEADLINE = 240  # seconds for one command: "no command hangs"
LOSER_REASONS = ("a newer configuration is already running", "replaced", "being applied right now")


@dataclass
class Job:
    project: Path
    generation: int
    proc: subprocess.Popen[str] | None = None
    started: float = 0.0
    out: str = ""
    err: str = ""

    def start(self, user, image: str) -> None:
        self.started = time.monotonic()
        self.proc = user.popen("up", "-f", f"g{self.generation}.envd", "--image", image, "--detach",
                               "--generation", str(self.generation), cwd=self.project)

    def finish(self) -> None:
        assert self.proc is not None
        remaining = max(1.0, DEADLINE - (time.monotonic() - self.started))
        try:
            self.out, self.err = self.proc.communicate(timeout=remaining)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.out, self.err = self.proc.communicate()
            pytest.fail(f"`dsl up` generation {self.generation} in {self.project} hung: {self.err[-2000:]}")

    @property
    def done(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None


def _all_at_once(jobs, start):
    for job in jobs:
        start(job)
    return jobs


def _fixed_interval(jobs, start, every=0.25):
    for job in jobs:
        start(job)
        time.sleep(every)
    return jobs


def _batches(jobs, start, size=4):
    for i in range(0, len(jobs), size):
        batch = jobs[i:i + size]
        for job in batch:
            start(job)
        for job in batch:
            job.finish()
    return jobs


def _dynamic_batches(jobs, start, sizes=(1, 3, 4)):
    """Each batch starts as soon as any job of the previous one has finished."""
    i = 0
    previous: list[Job] = []
    for size in sizes:
        while previous and not any(j.done for j in previous):
            time.sleep(0.05)
        previous = jobs[i:i + size]
        for job in previous:
            start(job)
        i += size
    return jobs


SHAPES = {"all-at-once": _all_at_once, "fixed-interval": _fixed_interval, "batches": _batches,
          "dynamic-batches": _dynamic_batches}


def run_and_judge(jobs, shape, start, loser_reasons) -> None:
    """Start ``jobs`` in ``shape``, wait for all; generation 2 must win, a losing generation 1
    exits 1 saying why (one of ``loser_reasons``), never with a traceback."""
    shape(jobs, start)
    for job in jobs:
        if job.out == "" and job.err == "":
            job.finish()
    for job in jobs:
        if job.generation == 2:
            assert job.proc.returncode == 0, f"generation 2 failed:\n{job.err[-3000:]}"
        elif job.proc.returncode != 0:
            assert job.proc.returncode == 1, job.err[-3000:]
            assert any(reason in job.err for reason in loser_reasons), job.err[-3000:]
            assert "Traceback" not in job.err


@pytest.mark.parametrize("shape", SHAPES)
def test_parallel_ups_end_with_one_container_per_environment_on_the_highest_generation(
        shape, user, image, docker_api, tmp_path):
    projects = []
    for _ in range(ENVIRONMENTS):
        directory = project(tmp_path, WEB.format(base="debian:bookworm", config="unused"))
        for generation in (1, 2):
            (directory / f"g{generation}.envd").write_text(
                WEB.format(base="debian:bookworm", config=f"g{generation}"))
        projects.append(directory)
    jobs = [Job(p, g) for p in projects for g in (1, 2)]
    random.Random(shape).shuffle(jobs)  # a different interleaving per shape, the same every run

    run_and_judge(jobs, SHAPES[shape], lambda job: job.start(user, image), LOSER_REASONS)

    for directory in projects:
        containers = docker_api.containers(all=True, filters={"label": f"{PROJECT_LABEL}={project_hash(str(directory))}"})
        assert len(containers) == 1, [c["Names"] for c in containers]  # no claim, no old one left
        info = docker_api.inspect_container(containers[0]["Id"])
        assert info["Name"] == f"/upimage.{project_hash(str(directory))}"
        assert info["Config"]["Labels"]["envdsl/generation"] == "2"
        assert "CONFIG=g2" in info["Config"]["Env"] and info["State"]["Running"]
    ssh_config = (user.home / ".ssh" / "config").read_text()
    assert ssh_config.count("Include") == 1
    assert len(list((user.home / ".ssh" / "envdsl" / "hosts").glob("*.conf"))) == ENVIRONMENTS
    # the survivors answer over SSH, each with its own pinned host key
    for directory in projects:
        alias = f"upimage.{project_hash(str(directory))}.dsl"
        login = user.ssh(alias, "echo $CONFIG")
        assert (login.returncode, login.stdout) == (0, "g2\n"), login.stderr
