"""Fixtures of the HTTP/2 server tests (the harness is ``_harness.py``)."""

from __future__ import annotations

import faulthandler
import sys

import pytest

from tests.engines.buildkit.h2._harness import Served, assert_no_session_threads

_WATCHDOG_S = 60  # a deadlock dumps every thread's stack and ends the run instead of hanging


@pytest.fixture(autouse=True)
def _watchdog():
    faulthandler.dump_traceback_later(_WATCHDOG_S, exit=True, file=sys.stderr)
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.fixture
def serve():
    """``serve(table, options=())`` → a :class:`Served`; closed after the test, which then
    checks that ``close`` took at most ~5 s and left none of the server's threads running."""
    made: list[Served] = []

    def start(table, options=()) -> Served:
        served = Served(table, options)
        made.append(served)
        return served

    yield start
    for served in made:
        took = served.close()
        assert took < 6, f"GrpcConnection.close took {took:.1f} s"
    assert_no_session_threads()
