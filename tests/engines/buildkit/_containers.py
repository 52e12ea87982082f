"""Running a command in a built image, shared by the engine tests."""

from __future__ import annotations


def run_in(docker_api, ref: str, script: str) -> str:
    """Run ``script`` with ``/bin/sh -c`` in a throw-away container of ``ref``; its output.

    The container is removed whatever happens; a non-zero exit fails the test with the logs.
    """
    container = docker_api.create_container(ref, entrypoint=["/bin/sh", "-c"], command=[script])
    try:
        docker_api.start(container)
        status = docker_api.wait(container, timeout=120)["StatusCode"]
        logs = docker_api.logs(container).decode()
        assert status == 0, logs
        return logs
    finally:
        docker_api.remove_container(container, force=True)
