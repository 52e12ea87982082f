"""Which manifest a tag names in its registry now: one ``HEAD /v2/<repo>/manifests/<tag>``.

The up-to-date check of ``dsl build`` asks this for a base image that is not in dockerd's
image store (dockerd's BuildKit pulls it from the registry on every build). The answer is the
registry's ``Docker-Content-Digest`` for the Accept types BuildKit's resolver sends (OCI
index and manifest, Docker manifest list and v2), i.e. the digest a build of the tag resolves
to. Authentication follows the distribution spec: a ``401`` names a ``Bearer`` token endpoint
(asked with the user's Docker credentials, the ones ``dsl build``'s session gives BuildKit) or
``Basic``. Transport follows dockerd's defaults: plain HTTP for a loopback registry (dockerd
treats ``127.0.0.0/8`` and ``localhost`` as insecure), else HTTPS verified against the system
CAs plus the ``--ca-bundle`` file.

Anything that does not give a well-formed digest (no network, a timeout, 404, no header, an
auth failure, a redirect) is ``None``: "cannot verify", which the caller treats as "changed".
A reference pinned by digest needs no request. Imports only the standard library, and not
http.client (a raw HTTP/1.0 exchange, as the Docker lookups of ``_uptodate.py``); ``ssl`` only
for an HTTPS registry, the credential lookup only after a 401.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
import socket
import time
import urllib.parse
from collections.abc import Mapping
from typing import TYPE_CHECKING

from dsl.rules import Invalid, parse_image_ref

if TYPE_CHECKING:
    import ssl

MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
TIMEOUT = 3.0  # seconds for the whole check: a slow registry means a real build, not a long wait
DOCKER_HUB_API = "registry-1.docker.io"
MAX_ANSWER = 1 << 20  # a manifest HEAD or a token: far less
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


def pinned_digest(ref: str) -> str | None:
    """The digest ``ref`` is pinned to (``name@sha256:…``), None for a tag or a bad reference."""
    try:
        return parse_image_ref(ref).digest or None
    except Invalid:
        return None


def registry_digest(ref: str, *, ca_bundle: str | None = None, timeout: float = TIMEOUT,
                    docker_config_dir: str | None = None) -> str | None:
    """The manifest digest ``ref`` names in its registry now (pinned: its digest, no request).

    Args:
        ref: an image reference (normalised or as written).
        ca_bundle: an extra CA bundle to trust for an HTTPS registry.
        timeout: seconds the whole check (HEAD, token, HEAD again) may take.
        docker_config_dir: where the Docker credentials live (default: as ``dsl build``).

    Returns:
        ``sha256:…``, or None when it cannot be verified.
    """
    try:
        parsed = parse_image_ref(ref)
    except Invalid:
        return None
    if parsed.digest:
        return parsed.digest
    host = DOCKER_HUB_API if parsed.domain == "docker.io" else parsed.domain
    path = f"/v2/{parsed.path}/manifests/{urllib.parse.quote(parsed.tag or 'latest', safe='')}"
    client = _Client(ca_bundle, timeout)
    try:
        return _head_digest(client, host, parsed.domain, parsed.path, path, docker_config_dir)
    except (OSError, ValueError):
        return None


class _Client:
    """One HTTP/1.0 request at a time over a socket, no redirects followed, all of them
    within ``timeout`` seconds of the client's creation.

    HTTP/1.0 because the fast path should not pay for http.client: importing it (with the
    email parser it pulls in) measured 15-17 ms here, a third of an up-to-date ``dsl build``
    (~50 ms). A 1.0 request gets a plain body, never a chunked one, and the connection closes
    after it.
    """

    def __init__(self, ca_bundle: str | None, timeout: float) -> None:
        self.ca_bundle, self.deadline = ca_bundle, time.monotonic() + timeout
        self._tls: ssl.SSLContext | None = None

    def request(self, method: str, url: str, headers: Mapping[str, str],
                body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
        """``(status, headers with lower-case names, body)``.

        Raises:
            OSError: no connection, a TLS failure or a timeout.
            ValueError: plain HTTP to another machine, or a malformed answer.
        """
        split = urllib.parse.urlsplit(url)
        if split.scheme not in ("https", "http") or not split.hostname:
            raise ValueError(f"unsupported URL {url!r}")
        if split.scheme == "http" and not is_loopback(split.netloc):
            raise ValueError(f"refusing plain HTTP to {split.netloc}")  # credentials would travel in clear
        port = split.port or (443 if split.scheme == "https" else 80)
        lines = [f"{method} {split.path or '/'}{'?' + split.query if split.query else ''} HTTP/1.0",
                 f"Host: {split.netloc}", "User-Agent: envdsl", *(f"{k}: {v}" for k, v in headers.items())]
        if body is not None:
            lines.append(f"Content-Length: {len(body)}")
        if any("\r" in line or "\n" in line for line in lines):  # a token or realm from the server
            raise ValueError("refusing a line break inside a request line or header")
        payload = ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the registry check ran out of time")
        with socket.create_connection((split.hostname, port), timeout=left) as raw:
            sock = self._context().wrap_socket(raw, server_hostname=split.hostname) if split.scheme == "https" else raw
            sock.sendall(payload)
            answer = _read_all(sock, deadline=self.deadline)
        return _parse_response(answer, head_only=method == "HEAD")

    def _context(self) -> ssl.SSLContext:
        if self._tls is None:
            import ssl  # only an HTTPS registry pays for it

            self._tls = ssl.create_default_context()
            if self.ca_bundle:
                self._tls.load_verify_locations(cafile=self.ca_bundle)
        return self._tls


def _read_all(sock: socket.socket, *, deadline: float) -> bytes:
    chunks, size = [], 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the registry's answer is too slow")
        sock.settimeout(left)  # a server dribbling bytes must not stretch the time box
        chunk = sock.recv(65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_ANSWER:
            raise ValueError("the registry's answer is too big")


def _parse_response(answer: bytes, *, head_only: bool) -> tuple[int, dict[str, str], bytes]:
    head, separator, body = answer.partition(b"\r\n\r\n")
    if not separator:
        raise ValueError("the registry's answer has no end of headers")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ValueError(f"not an HTTP answer: {status_line[:40]!r}")
    headers: dict[str, str] = {}
    for line in header_lines:
        name, colon, value = line.partition(":")
        if colon:
            headers[name.strip().lower()] = value.strip()
    return int(parts[1]), headers, b"" if head_only else body


def is_loopback(netloc: str) -> bool:
    """``localhost[:port]``, ``127.x.y.z[:port]`` or ``[::1][:port]``: dockerd's default insecure registries."""
    host = urllib.parse.urlsplit(f"//{netloc}").hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _head_digest(client: _Client, host: str, domain: str, repo: str, path: str,
                 docker_config_dir: str | None) -> str | None:
    base = f"{'http' if is_loopback(host) else 'https'}://{host}"
    headers = {"Accept": ", ".join(MANIFEST_TYPES)}
    status, reply, _ = client.request("HEAD", base + path, headers)
    if status == 401:
        authorization = _authorize(client, reply.get("www-authenticate", ""), domain, repo, docker_config_dir)
        if authorization is None:
            return None
        status, reply, _ = client.request("HEAD", base + path, {**headers, "Authorization": authorization})
    digest = reply.get("docker-content-digest", "") if status == 200 else ""
    return digest if _DIGEST.fullmatch(digest) else None


def _authorize(client: _Client, challenge: str, domain: str, repo: str, docker_config_dir: str | None) -> str | None:
    """The ``Authorization`` value answering a 401's challenge, None when there is none."""
    scheme, _, rest = challenge.strip().partition(" ")
    params = dict(_CHALLENGE_PARAM.findall(rest))
    username, secret = _credential(domain, docker_config_dir)
    if scheme.lower() == "basic":
        if not (username and secret):
            return None
        return "Basic " + base64.b64encode(f"{username}:{secret}".encode()).decode()
    if scheme.lower() != "bearer" or not params.get("realm"):
        return None
    token = _bearer_token(client, params, f"repository:{repo}:pull", username, secret)
    return f"Bearer {token}" if token else None


def _bearer_token(client: _Client, params: Mapping[str, str], scope: str, username: str, secret: str) -> str | None:
    realm = params["realm"]
    query = {"scope": scope, **({"service": params["service"]} if params.get("service") else {})}
    if secret and not username:  # an identity (refresh) token: the OAuth2 form of the spec
        form = urllib.parse.urlencode({**query, "grant_type": "refresh_token", "refresh_token": secret,
                                       "client_id": "envdsl"}).encode()
        status, _, body = client.request("POST", realm, {"Content-Type": "application/x-www-form-urlencoded"}, form)
    else:
        headers = {}
        if username and secret:
            headers["Authorization"] = "Basic " + base64.b64encode(f"{username}:{secret}".encode()).decode()
        separator = "&" if "?" in realm else "?"
        status, _, body = client.request("GET", realm + separator + urllib.parse.urlencode(query), headers)
    if status != 200:
        return None
    reply = json.loads(body)
    token = (reply.get("token") or reply.get("access_token")) if isinstance(reply, dict) else None
    return token if isinstance(token, str) and token else None


def _credential(domain: str, docker_config_dir: str | None) -> tuple[str, str]:
    """The user's (username, secret) for ``domain`` from the Docker config, as the session reads them."""
    # Imported only after a 401: the session package pulls in grpc, which an anonymous
    # registry (the common case on the fast path) never needs.
    from dsl.engines.buildkit.session._auth import DockerCredentials
    from dsl.errors import EngineError

    try:
        found = DockerCredentials(docker_config_dir).lookup(DOCKER_HUB_API if domain == "docker.io" else domain)
    except EngineError:
        return "", ""
    return found.username, found.secret
