"""What the fake API server's own tests share: a CoreV1 client of the fake with the Docker
kubelet (that must end with no kubelet errors), and polling for a state the fake reaches."""

from __future__ import annotations

import time

import pytest
from kubernetes import client


@pytest.fixture
def core(fake_kube_node):
    api = fake_kube_node.api_client()
    yield client.CoreV1Api(api)
    api.close()
    assert fake_kube_node.kubelet.errors == []


def wait_for(what, timeout: float = 30.0, every: float = 0.2):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = what()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out waiting: last value {last!r}")
