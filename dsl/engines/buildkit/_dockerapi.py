"""A lean Docker Engine API client for the few calls the builder needs.

Pushing, loading a tarball, inspecting and exec-ing into a builder container are a handful of
HTTP requests; doing them over :func:`connect_docker` keeps ``dsl build`` from importing the
``docker`` package (≈130 ms) on every run.
"""

from __future__ import annotations

import base64
import http.client
import json
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from dsl.engines.buildkit._hijack import connect_docker
from dsl.errors import EngineError

_TIMEOUT = 30.0


class _Conn(http.client.HTTPConnection):
    """An HTTP connection over an already-open socket (unix or TCP, TLS or not)."""

    def __init__(self, docker_host: str, timeout: float) -> None:
        super().__init__("docker", timeout=timeout)
        self._docker_host = docker_host

    def connect(self) -> None:
        self.sock = connect_docker(self._docker_host, timeout=self.timeout or _TIMEOUT)


def request(
    docker_host: str,
    method: str,
    path: str,
    *,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = _TIMEOUT,
) -> tuple[int, Any]:
    """Send one request and decode the JSON answer.

    Args:
        docker_host: the engine address.
        method: ``GET``/``POST``/``DELETE``.
        path: the API path with its query string.
        body: a JSON-able request body, or None.
        headers: extra headers.
        timeout: seconds for the whole exchange.

    Returns:
        ``(status, decoded JSON or text or None)``.

    Raises:
        EngineUnavailable: the engine cannot be reached.
        EngineError: the connection broke or timed out mid-exchange.
    """
    conn = _Conn(docker_host, timeout)
    try:
        data = None if body is None else json.dumps(body).encode()
        hdrs = {"Content-Type": "application/json"} if data is not None else {}
        hdrs.update(headers or {})
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, _decode(raw)
    except (OSError, http.client.HTTPException) as exc:
        raise _broken(docker_host, method, path, exc) from exc
    finally:
        conn.close()


def _broken(docker_host: str, method: str, path: str, exc: Exception) -> EngineError:
    # connect_docker already maps a refused connection; this is a reset, a read timeout or a
    # truncated answer afterwards, which would otherwise reach the user as a traceback.
    return EngineError(f"{method} {path.split('?')[0]} on the Docker engine at {docker_host} failed: "
                       f"{exc or type(exc).__name__}", hint="check that dockerd is still running and retry")


def _decode(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace").strip()


def error_message(payload: Any) -> str:
    """The ``message`` of an Engine API error body."""
    if isinstance(payload, dict):
        return str(payload.get("message", payload))
    return str(payload or "")


def stream_json(
    docker_host: str,
    method: str,
    path: str,
    *,
    body: Iterable[bytes] | bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 3600.0,
    on_event: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Send a request whose answer is a stream of JSON messages (push, load).

    Returns:
        Every decoded message.

    Raises:
        EngineError: a non-2xx status, a message carrying ``error``, or a broken connection.
    """
    conn = _Conn(docker_host, timeout)
    try:
        hdrs = dict(headers or {})
        if body is not None and not isinstance(body, bytes):
            hdrs["Transfer-Encoding"] = "chunked"
            conn.request(method, path, body=body, headers=hdrs, encode_chunked=True)
        else:
            conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        if resp.status >= 300:
            raise EngineError(f"{method} {path.split('?')[0]}: {error_message(_decode(resp.read()))}")
        events = list(_json_messages(resp))
        for event in events:
            if on_event:
                on_event(event)
            if event.get("error"):
                raise EngineError(str(event.get("errorDetail", {}).get("message") or event["error"]))
        return events
    except (OSError, http.client.HTTPException) as exc:
        raise _broken(docker_host, method, path, exc) from exc
    finally:
        conn.close()


def _json_messages(resp: http.client.HTTPResponse) -> Iterator[dict[str, Any]]:
    decoder = json.JSONDecoder()
    buf = ""
    while chunk := resp.read1(65536) if hasattr(resp, "read1") else resp.read(65536):
        buf += chunk.decode("utf-8", "replace")
        while True:
            buf = buf.lstrip()
            if not buf:
                break
            try:
                obj, end = decoder.raw_decode(buf)
            except ValueError:
                break
            buf = buf[end:]
            if isinstance(obj, dict):
                yield obj


def registry_auth_header(auth: dict[str, str] | None) -> dict[str, str]:
    """The ``X-Registry-Auth`` header for push: base64url JSON of the credentials."""
    payload = json.dumps(auth or {}).encode()
    return {"X-Registry-Auth": base64.urlsafe_b64encode(payload).decode()}


def quote(value: str) -> str:
    """Quote one path segment (image names contain ``/`` and ``:``)."""
    return urllib.parse.quote(value, safe="")
