"""A real ``dsl build`` through the warm server, on the test dockerd's BuildKit: grpc, the
session and its HTTP/2 server all start in the forked child, and what it builds and records is
what an in-process build would have."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.warm.test_warm import Warm

pytestmark = pytest.mark.engine


def test_a_warm_build_sends_the_context_builds_and_is_up_to_date_next_time(tmp_path: Path, docker_api,
                                                                         base_image: str) -> None:
    warm = Warm(tmp_path)
    project = tmp_path / "project"
    project.mkdir()
    (project / "build.envd").write_text(
        f'def build():\n    base(image="{base_image}", dev=False)\n'
        '    io.copy(source="data.txt", target="/opt/data.txt")\n')
    tag = "envdsl-test-warm:1"

    def build(content: str | None = None) -> str:
        if content is not None:
            (project / "data.txt").write_text(content)
        proc = warm.run("build", str(project), "-t", tag, "--progress", "plain")
        assert proc.returncode == 0, proc.stderr
        return proc.stdout + proc.stderr

    def image_data() -> str:
        container = docker_api.create_container(tag, ["cat", "/opt/data.txt"])
        try:
            docker_api.start(container)
            docker_api.wait(container, timeout=60)
            return docker_api.logs(container, stderr=False).decode()
        finally:
            docker_api.remove_container(container, force=True)

    try:
        build("first\n")  # in-process; starts the server
        warm.wait_for_server(served=0)
        build("second\n")
        assert image_data() == "second\n"
        assert "up to date" in build()
        assert warm.status()[0]["served"] == 2
    finally:
        warm.stop()
        docker_api.remove_image(tag, force=True)
