"""Fixtures of the BuildKit engine tests."""

from __future__ import annotations

import pytest

from tests.engines.buildkit._fake_registry import DIGEST, FakeRegistry


@pytest.fixture
def reg():
    """A running fake registry (``_fake_registry``) whose ``team/base:1`` is ``DIGEST``."""
    with FakeRegistry() as server:
        server.behaviour.digests = {"team/base": {"1": DIGEST}}
        yield server
