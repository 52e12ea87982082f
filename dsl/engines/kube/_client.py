"""The Kubernetes API connection of the runner (the ``kubernetes`` client, imported here and in
the stream modules only) and the one place its errors become ours.

Requests go through the client's own ``ApiClient`` (kubeconfig, TLS, auth plugins, proxies)
but as plain JSON: the runner sends the compiler's objects exactly as compiled (server-side
apply bodies are the compiler's YAML bytes), and reads back dicts, never the client's models.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from dsl.errors import EngineError, EngineUnavailable, UsageError

FIELD_MANAGER = "envdsl"
APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCH = "application/merge-patch+json"
_TIMEOUT = 30

# kind -> (API path prefix, plural): the kinds the compiler emits, and what the runner reads.
_PATHS = {
    "Secret": ("/api/v1", "secrets"),
    "PersistentVolumeClaim": ("/api/v1", "persistentvolumeclaims"),
    "Service": ("/api/v1", "services"),
    "Pod": ("/api/v1", "pods"),
    "Event": ("/api/v1", "events"),
    "StatefulSet": ("/apis/apps/v1", "statefulsets"),
    "Deployment": ("/apis/apps/v1", "deployments"),
}


class KubeStatus(Exception):
    """A failed API call, as the server's ``Status`` says (``code`` 0: no answer at all)."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details or {}

    @property
    def causes(self) -> list[dict[str, str]]:
        return list(self.details.get("causes") or [])


@dataclass(frozen=True, slots=True)
class Where:
    """The cluster and namespace a runner talks to (for messages and the ssh ProxyCommand)."""

    server: str
    context: str
    namespace: str


def collection_path(kind: str, namespace: str) -> str:
    prefix, plural = _PATHS[kind]
    return f"{prefix}/namespaces/{namespace}/{plural}"


def object_path(kind: str, namespace: str, name: str) -> str:
    return f"{collection_path(kind, namespace)}/{urllib.parse.quote(name, safe='')}"


SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
IN_CLUSTER = "in-cluster"  # the context name messages show for the Pod's own service account


def in_cluster() -> bool:
    """In a Pod and without a kubeconfig: the service account's credentials, as client-go's
    default loading rules pick them (``KUBERNETES_SERVICE_HOST`` set, no ``$KUBECONFIG`` file
    and no ``~/.kube/config``)."""
    import os

    if not os.environ.get("KUBERNETES_SERVICE_HOST") or not os.environ.get("KUBERNETES_SERVICE_PORT"):
        return False
    files = [f for f in os.environ.get("KUBECONFIG", "").split(os.pathsep) if f]
    files = files or [os.path.join(os.path.expanduser("~"), ".kube", "config")]
    return not any(os.path.isfile(f) for f in files)


def in_cluster_configuration() -> Any:
    """The client configuration of the Pod's service account: the API server at
    ``https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT``, trusted by the mounted
    ``ca.crt``, with the mounted token, read again before each request (the kubelet rotates a
    projected token well before it expires; an old one would be refused).

    Raises:
        EngineUnavailable: the token or the CA certificate is not mounted.
    """
    import os

    from kubernetes import client

    token_file, ca_file = f"{SERVICE_ACCOUNT_DIR}/token", f"{SERVICE_ACCOUNT_DIR}/ca.crt"
    host, port = os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"]
    configuration = client.Configuration()
    configuration.host = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
    if not os.path.isfile(ca_file):
        raise EngineUnavailable(f"in a Pod without a kubeconfig, but {ca_file} is missing",
                                hint="mount the service account token (automountServiceAccountToken: true)")
    configuration.ssl_ca_cert = ca_file

    def read_token(conf: Any) -> None:
        try:
            with open(token_file, encoding="utf-8") as f:
                token = f.read().strip()
        except OSError as exc:
            raise EngineUnavailable(f"cannot read the service account token {token_file}: {exc.strerror}",
                                    hint="mount the service account token (automountServiceAccountToken: true)") from exc
        conf.api_key["BearerToken"] = token
        conf.api_key_prefix["BearerToken"] = "Bearer"

    read_token(configuration)
    configuration.refresh_api_key_hook = read_token
    return configuration


def _service_account_namespace() -> str:
    try:
        with open(f"{SERVICE_ACCOUNT_DIR}/namespace", encoding="utf-8") as f:
            return f.read().strip() or "default"
    except OSError:
        return "default"


class Kube:
    """One API server connection for one namespace."""

    def __init__(self, context: str | None, namespace: str | None) -> None:
        from kubernetes import client, config
        from kubernetes.config.config_exception import ConfigException

        if not context and in_cluster():
            configuration = in_cluster_configuration()
            self.api = client.ApiClient(configuration)
            self.configuration = configuration
            self.where = Where(configuration.host, IN_CLUSTER, namespace or _service_account_namespace())
            return
        try:
            contexts, active = config.list_kube_config_contexts()
            chosen = next((c for c in contexts if c["name"] == context), None) if context else active
            if chosen is None:
                names = ", ".join(sorted(c["name"] for c in contexts)) or "none"
                raise UsageError(f"kube context {context!r} is not in your kubeconfig (it has: {names})",
                                 hint="see `kubectl config get-contexts`")
            configuration = client.Configuration()
            config.load_kube_config(context=chosen["name"], client_configuration=configuration)
        except (ConfigException, OSError, TypeError, KeyError) as exc:
            raise EngineUnavailable(f"cannot use the kubeconfig: {_first_line(exc)}",
                                    hint="set KUBECONFIG, or check `kubectl config current-context`") from exc
        self.api = client.ApiClient(configuration)
        self.configuration = configuration
        self.where = Where(configuration.host, chosen["name"],
                           namespace or (chosen.get("context") or {}).get("namespace") or "default")

    @property
    def namespace(self) -> str:
        return self.where.namespace

    def close(self) -> None:
        self.api.close()

    # ---- requests -----------------------------------------------------------------------

    def request(self, method: str, path: str, *, query: dict[str, str] | None = None, body: Any = None,
                content_type: str = "application/json", timeout: float = _TIMEOUT) -> dict[str, Any]:
        """One API call; the decoded JSON answer.

        Raises:
            KubeStatus: the server refused (its Status), or gave no answer (code 0).
        """
        response = self._send(method, path, query, body, content_type, timeout)
        data = response.read()
        if not 200 <= response.status < 300:
            raise _status(response.status, data)
        return json.loads(data) if data else {}

    def _send(self, method: str, path: str, query: dict[str, str] | None, body: Any, content_type: str,
              timeout: float | tuple[float, float]) -> Any:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type  # JSON types: the client serialises the dict
        try:
            method, url, headers, _, _ = self.api.param_serialize(
                method, path, query_params=list((query or {}).items()), header_params=headers,
                auth_settings=["BearerToken"])
            return self.api.call_api(method, url, header_params=headers, body=body, _request_timeout=timeout)
        except (ApiException, HTTPError, OSError) as exc:  # urllib3/ssl/socket errors: no answer from the server
            raise KubeStatus(0, "Unreachable", _first_line(exc)) from exc

    def get_bytes(self, path: str, query: dict[str, str], timeout: float = _TIMEOUT) -> bytes:
        """A GET whose answer is not JSON (``pods/log``).

        Raises:
            KubeStatus: the server refused, or gave no answer.
        """
        response = self._send("GET", path, query, None, "application/json", timeout)
        data = response.read()
        if not 200 <= response.status < 300:
            raise _status(response.status, data)
        return data

    def watch(self, path: str, query: dict[str, str], timeout: float) -> Iterator[tuple[str, dict[str, Any]]]:
        """``(type, object)`` of a watch until ``timeout`` seconds (the server ends it then)."""
        from urllib3.exceptions import HTTPError

        seconds = max(1, int(timeout + 0.999))
        response = self._send("GET", path, {**query, "watch": "true", "timeoutSeconds": str(seconds)}, None,
                              "application/json", (10, seconds + 10))
        if not 200 <= response.status < 300:
            raise _status(response.status, response.read())
        buffer = b""
        try:
            for chunk in response.response.stream(4096, decode_content=True):
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.strip():
                        event = json.loads(line)
                        yield event.get("type", ""), event.get("object") or {}
        except (HTTPError, OSError):  # the stream broke (read timeout, reset): the caller re-lists
            pass
        finally:
            response.response.release_conn()

    def stream_text(self, path: str, query: dict[str, str]) -> Iterator[bytes]:
        """A streaming GET (``pods/log?follow=true``): its bytes as they come."""
        response = self._send("GET", path, query, None, "application/json", (10, None))  # type: ignore[arg-type]
        if not 200 <= response.status < 300:
            raise _status(response.status, response.read())
        try:
            yield from response.response.stream(4096, decode_content=True)
        finally:
            response.response.release_conn()

    # ---- objects ------------------------------------------------------------------------

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        try:
            return self.request("GET", object_path(kind, self.namespace, name))
        except KubeStatus as exc:
            if exc.code == 404:
                return None
            raise

    def list(self, kind: str, selector: str = "", fields: str = "", *,
             all_namespaces: bool = False) -> tuple[list[dict[str, Any]], str]:
        """The objects of ``kind`` (with ``kind`` filled in) and the list's resourceVersion."""
        query = {k: v for k, v in (("labelSelector", selector), ("fieldSelector", fields)) if v}
        prefix, plural = _PATHS[kind]
        path = f"{prefix}/{plural}" if all_namespaces else collection_path(kind, self.namespace)
        data = self.request("GET", path, query=query)
        items = [{**item, "kind": kind} for item in data.get("items") or []]
        return items, str((data.get("metadata") or {}).get("resourceVersion", ""))


def _status(code: int, data: bytes) -> KubeStatus:
    try:
        body = json.loads(data)
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    message = str(body.get("message") or data[:200].decode(errors="replace").strip() or f"HTTP {code}")
    return KubeStatus(code, str(body.get("reason") or ""), message, body.get("details") or {})


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def translate(exc: KubeStatus, where: Where, doing: str) -> EngineError:
    """Our error for a refused call (``doing``: what we were doing, for the message)."""
    if exc.code == 0:
        return EngineUnavailable(f"cannot reach the Kubernetes API server at {where.server} "
                                 f"(context {where.context}): {exc.message}",
                                 hint="is the cluster up? check `kubectl --context "
                                      f"{where.context} get --raw /healthz`")
    if exc.code in (401, 403):
        return EngineError(f"{doing}: the API server refused: {exc.message}",
                           hint=f"your kube user needs RBAC rights in namespace {where.namespace}; "
                                "docs/kubernetes.md lists them")
    return EngineError(f"{doing}: {exc.message}")


def retry_delays(total: float, first: float = 0.05, most: float = 1.0) -> Iterator[float]:
    """Back-off pauses (doubling, capped at ``most``) that add up to about ``total`` seconds."""
    deadline = time.monotonic() + total
    delay = first
    while time.monotonic() + delay < deadline:
        yield delay
        delay = min(delay * 2, most)
