"""Ownership by generation on Kubernetes: parallel ``dsl up --target k8s`` of the same
environments end with exactly one configuration each, the highest generation, whatever the
load shape — by the API server's own guarantees (resourceVersion preconditions, AlreadyExists),
no local lock.

Four environments (four project directories) each get generation 1 and generation 2
(``--generation``), eight ``dsl up`` in the shapes of tests/engines/docker/test_up_concurrency.py:
all at once, one every fixed interval, fixed batches, batches of changing size. Every command
returns in time; generation 2 always succeeds; a losing generation 1 exits 1 and says why.
"""

from __future__ import annotations

import random

import pytest

from tests.engines.docker.test_up_concurrency import SHAPES, Job, run_and_judge
from tests.engines.kube.conftest import IMAGE, WEB, objects, project

pytestmark = pytest.mark.fake_kube(controllers=True)

ENVIRONMENTS = 4
LOSER_REASONS = ("a newer configuration is already applied", "was replaced by a newer configuration")


class KubeJob(Job):
    def start(self, user, image: str) -> None:
        import time

        self.started = time.monotonic()
        self.proc = user.popen("up", "--target", "k8s", "-f", f"g{self.generation}.envd", "--image", image,
                               "--detach", "--generation", str(self.generation), cwd=self.project)


@pytest.mark.parametrize("shape", SHAPES)
def test_parallel_ups_end_on_the_highest_generation_of_each_environment(shape, fake_kube, kube_user, tmp_path):
    projects = []
    for i in range(ENVIRONMENTS):
        directory = project(tmp_path, WEB.format(config="unused"), name=f"ws{i}")
        for generation in (1, 2):
            (directory / f"g{generation}.envd").write_text(WEB.format(config=f"g{generation}"))
        projects.append(directory)
    jobs = [KubeJob(p, g) for p in projects for g in (1, 2)]
    random.Random(shape).shuffle(jobs)

    run_and_judge(jobs, SHAPES[shape], lambda job: job.start(kube_user, IMAGE), LOSER_REASONS)
    for job in jobs:
        assert job.generation == 2 or job.proc.returncode == 0 or "generation 2" in job.err, job.err[-3000:]

    fake_kube.controllers.settle()
    pods = list(objects(fake_kube, "Pod").values())
    assert len(pods) == ENVIRONMENTS, [p["metadata"]["name"] for p in pods]
    for i in range(ENVIRONMENTS):
        (pod,) = [p for p in pods if p["metadata"]["labels"]["app.kubernetes.io/instance"] == f"ws{i}"]
        assert pod["metadata"]["annotations"]["envdsl/generation"] == "2"
        env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
        assert env["CONFIG"] == "g2"
        for kind in ("Service", "PersistentVolumeClaim", "Secret"):
            for obj in objects(fake_kube, kind).values():
                if obj["metadata"]["labels"]["app.kubernetes.io/instance"] == f"ws{i}":
                    assert obj["metadata"]["annotations"]["envdsl/generation"] == "2", (kind, obj["metadata"]["name"])
    assert len(list((kube_user.home / ".ssh" / "envdsl" / "hosts").glob("*.conf"))) == ENVIRONMENTS
