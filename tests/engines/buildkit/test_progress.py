"""Plain progress from BuildKit's Status stream, fed with the updates BuildKit really repeats."""

from __future__ import annotations

import io

from google.protobuf.timestamp_pb2 import Timestamp

from dsl.engines.buildkit._progress import PlainRenderer, ProgressTracker
from dsl.engines.buildkit._solve import step_failure_hint
from dsl.engines.buildkit.protos import bk_control_pb2 as control


def _ts(seconds: int) -> Timestamp:
    return Timestamp(seconds=seconds)


def _plain(*updates: control.StatusResponse) -> list[str]:
    tracker, out = ProgressTracker(), io.StringIO()
    renderer = PlainRenderer(out)
    for update in updates:
        renderer.events(tracker.update(update))
    return out.getvalue().splitlines()


def test_a_status_resent_with_each_update_of_its_vertex_is_printed_once():
    vertex = control.Vertex(digest="sha256:a", name="exporting to image", started=_ts(10))
    layers = control.VertexStatus(ID="exporting layers", vertex="sha256:a", name="exporting layers",
                                  started=_ts(10), completed=_ts(11))
    lines = _plain(control.StatusResponse(vertexes=[vertex], statuses=[layers]),
                   control.StatusResponse(statuses=[layers]),
                   control.StatusResponse(vertexes=[control.Vertex(digest="sha256:a", completed=_ts(12))],
                                          statuses=[layers]))
    assert lines.count("#1 exporting layers done") == 1, lines
    assert [line for line in lines if "DONE" in line] == ["#1 DONE 2.0s"]


def test_a_failed_vertex_is_not_also_reported_done():
    failed = control.Vertex(digest="sha256:b", name="run make", started=_ts(1), error="exit code: 2")
    again = control.Vertex(digest="sha256:b", name="run make", started=_ts(1), completed=_ts(3),
                           error="exit code: 2")
    lines = _plain(control.StatusResponse(vertexes=[failed]), control.StatusResponse(vertexes=[again]))
    assert lines == ["#1 run make", "#1 ERROR: exit code: 2"]


def _failed_with(*log_lines: str):
    tracker = ProgressTracker()
    tracker.update(control.StatusResponse(
        vertexes=[control.Vertex(digest="sha256:c", name="install.python_packages", error="exit code: 1")],
        logs=[control.VertexLog(vertex="sha256:c", msg=("\n".join(log_lines) + "\n").encode())]))
    return tracker.failed_vertex()


def test_a_certificate_failure_anywhere_in_the_step_log_names_ca_bundle():
    # the certificate line scrolled out of the kept tail: the hint still sees it
    lines = ["Could not fetch URL https://pypi.org/simple/six/: [SSL: CERTIFICATE_VERIFY_FAILED] "
             "certificate verify failed: unable to get local issuer certificate"] + [f"retry {i}" for i in range(40)]
    hint = step_failure_hint(_failed_with(*lines))
    assert hint is not None and "--ca-bundle" in hint and "DSL_CA_BUNDLE" in hint


def test_other_failures_keep_the_plain_hint():
    assert step_failure_hint(_failed_with("ERROR: No matching distribution found for sixx")) == \
        "the last log lines of the step are above"
