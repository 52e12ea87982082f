"""The runner inside a Pod without a kubeconfig (the gc CronJob): the service account's token,
CA certificate and namespace, as client-go's in-cluster rules take them; the token is read again
as the kubelet rotates it."""

from __future__ import annotations

import pytest

from dsl.engines.kube import _client
from dsl.errors import EngineUnavailable


@pytest.fixture
def pod(tmp_path, monkeypatch):
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text("first-token\n")
    (account / "ca.crt").write_text("not checked until a TLS handshake\n")
    (account / "namespace").write_text("team\n")
    monkeypatch.setattr(_client, "SERVICE_ACCOUNT_DIR", str(account))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.kube/config
    return account


def test_in_a_pod_the_service_account_is_used_and_its_rotated_token_is_read_again(pod, fake_kube):
    kube = _client.Kube(None, None)
    try:
        assert kube.where.context == "in-cluster" and kube.namespace == "team"
        assert kube.configuration.host == "https://10.96.0.1:443"
        assert kube.configuration.ssl_ca_cert == str(pod / "ca.crt")
        seen: list[str] = []
        dispatch = fake_kube.router.dispatch

        def recording(request):
            seen.append(request.headers.get("Authorization"))
            return dispatch(request)

        fake_kube.router.dispatch = recording
        kube.configuration.host = fake_kube.url  # the fake speaks plain HTTP: only the address differs
        kube.list("Pod")
        (pod / "token").write_text("rotated-token\n")
        kube.list("Pod")
        assert seen == ["Bearer first-token", "Bearer rotated-token"]
    finally:
        fake_kube.router.dispatch = dispatch
        kube.close()


def test_a_kubeconfig_wins_over_the_pod(pod, fake_kube, monkeypatch):
    from kubernetes.config import kube_config

    monkeypatch.setenv("KUBECONFIG", str(fake_kube.kubeconfig))
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(fake_kube.kubeconfig))  # read at import
    kube = _client.Kube(None, None)
    try:
        assert kube.where.context != "in-cluster" and kube.configuration.host == fake_kube.url
    finally:
        kube.close()


def test_an_unmounted_token_is_one_clear_error(pod):
    (pod / "ca.crt").unlink()
    with pytest.raises(EngineUnavailable, match="ca.crt is missing") as caught:
        _client.Kube(None, None)
    assert "automountServiceAccountToken" in (caught.value.hint or "")
