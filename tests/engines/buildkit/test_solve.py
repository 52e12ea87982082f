"""Solving through the gateway forwarder on the real dockerd BuildKit.

Definitions are made with the LLB builder (``compiler.llb``); the image lands in dockerd with
the config we return as result metadata, which dockerd 20.10 ignores as an exporter attr.
"""

from __future__ import annotations

import threading
import uuid

import pytest

from compiler.llb import image, marshal
from dsl.engines.buildkit import Exporter, Plan, ProgressTracker, connect, solve
from dsl.errors import SolveFailed
from dsl.ir import Span

pytestmark = pytest.mark.engine


def _plan(base: str, *commands: str, span: Span | None = None):
    st = image(base)
    for i, cmd in enumerate(commands):
        st = st.run(["sh", "-c", cmd], name=f"step {i}: {cmd[:40]}", span=span)
    m = marshal(st)
    return lambda caps, platform: Plan(m.definition, base, m.spans)


def _config(base_config, platform):
    config = dict(base_config or {})
    config.pop("created", None)
    config["config"] = {
        "Env": ["PATH=/usr/local/bin:/usr/bin:/bin", "GREETING=hello"],
        "Entrypoint": ["/bin/sh", "-c"],
        "Cmd": None,
        "User": "1000:1000",
        "WorkingDir": "/work",
        "ExposedPorts": {"2222/tcp": {}},
        "Labels": {"ai.envdsl.test": "yes"},
    }
    return config


def _run(docker_api, ref: str, script: str) -> str:
    container = docker_api.create_container(ref, command=[script])
    try:
        docker_api.start(container)
        assert docker_api.wait(container, timeout=60)["StatusCode"] == 0
        return docker_api.logs(container).decode()
    finally:
        docker_api.remove_container(container, force=True)


def test_image_lands_in_dockerd_with_its_config(docker_host, docker_api, base_image):
    tag = f"dsl-solve-{uuid.uuid4().hex[:8]}:dev"
    marker = uuid.uuid4().hex
    with connect(f"docker://{docker_host}") as builder:
        out = solve(builder, _plan(base_image, f"mkdir -p /work && echo {marker} > /work/marker"),
                    image_config=_config, exporter=Exporter("moby", {"name": tag}))
    try:
        digest = out.exporter_response["containerimage.digest"]
        info = docker_api.inspect_image(tag)
        assert info["Id"] == digest
        cfg = info["Config"]
        assert cfg["Entrypoint"] == ["/bin/sh", "-c"] and cfg["User"] == "1000:1000"
        assert cfg["WorkingDir"] == "/work" and "2222/tcp" in cfg["ExposedPorts"]
        assert cfg["Labels"]["ai.envdsl.test"] == "yes" and "GREETING=hello" in cfg["Env"]
        # the base image's creation time must not leak into ours
        assert info["Created"] != docker_api.inspect_image(base_image)["Created"]
        seen = _run(docker_api, tag, 'cat marker; id -u; pwd; echo "$GREETING"').split()
        assert seen == [marker, "1000", "/work", "hello"]
    finally:
        docker_api.remove_image(tag, force=True)


def test_second_build_is_fully_cached(docker_host, base_image):
    marker = uuid.uuid4().hex
    plan = _plan(base_image, f"echo {marker} > /a", "echo two > /b")
    with connect(f"docker://{docker_host}") as builder:
        solve(builder, plan)
        tracker = ProgressTracker()
        solve(builder, plan, tracker=tracker)
    steps = [v for v in tracker.vertices.values() if v.name.startswith("step ")]
    assert len(steps) == 2 and all(v.cached for v in steps)


def test_changed_step_rebuilds_only_from_there(docker_host, base_image):
    marker = uuid.uuid4().hex
    with connect(f"docker://{docker_host}") as builder:
        solve(builder, _plan(base_image, f"echo {marker} > /a", "echo one > /b"))
        tracker = ProgressTracker()
        solve(builder, _plan(base_image, f"echo {marker} > /a", "echo two > /b"), tracker=tracker)
    by_name = {v.name.split(":")[0]: v for v in tracker.vertices.values() if v.name.startswith("step ")}
    assert by_name["step 0"].cached and not by_name["step 1"].cached


def test_failed_step_names_step_line_and_log(docker_host, base_image):
    span = Span("build.envd", 7, 5)
    plan = _plan(base_image, f"echo {uuid.uuid4().hex}; echo broken-thing >&2; exit 3", span=span)
    with connect(f"docker://{docker_host}") as builder, pytest.raises(SolveFailed) as info:
        solve(builder, plan)
    err = info.value
    assert err.step and err.step.startswith("step 0")
    assert err.span == span and "build.envd:7:5" in err.headline()
    assert "exit code: 3" in err.message
    assert "broken-thing" in err.log_tail


def test_a_bug_in_progress_rendering_is_raised_not_swallowed(docker_host, base_image):
    """The Status reader used to swallow every exception: a broken renderer silently stopped
    the progress output and the build "succeeded". Only the stream's own end is expected."""

    class Broken:
        def events(self, events):
            raise RuntimeError("renderer bug")

        def close(self, tracker):
            pass

    with connect(f"docker://{docker_host}") as builder, pytest.raises(RuntimeError, match="renderer bug"):
        solve(builder, _plan(base_image, f"echo {uuid.uuid4().hex}"), renderer=Broken())


def test_four_concurrent_builds_on_one_dockerd(docker_host, base_image):
    results: dict[int, object] = {}

    def one(i: int) -> None:
        try:
            with connect(f"docker://{docker_host}") as builder:
                results[i] = solve(builder, _plan(base_image, f"echo {uuid.uuid4().hex} > /n{i}; sleep 1"))
        except Exception as exc:  # reported below
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(results) == 4
    for i, r in results.items():
        assert not isinstance(r, Exception), f"build {i}: {r}"
        assert r.vertices >= 2
