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
A reference pinned by digest needs no request. Imports only the standard library (plus the
credential lookup, and only after a 401), so the fast path stays fast.
"""

from __future__ import annotations

import base64
import http.client
import ipaddress
import json
import re
import urllib.parse
from collections.abc import Mapping

from dsl.rules import Invalid, parse_image_ref

MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
TIMEOUT = 3.0  # seconds per request: a slow registry means a real build, not a long wait
DOCKER_HUB_API = "registry-1.docker.io"
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
        timeout: seconds each request may take.
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
    except (OSError, http.client.HTTPException, ValueError):
        return None


class _Client:
    """One request at a time over http.client, no redirects followed, short timeouts."""

    def __init__(self, ca_bundle: str | None, timeout: float) -> None:
        self.ca_bundle, self.timeout = ca_bundle, timeout
        self._tls = None

    def request(self, method: str, url: str, headers: Mapping[str, str],
                body: bytes | None = None) -> tuple[int, http.client.HTTPMessage, bytes]:
        split = urllib.parse.urlsplit(url)
        conn: http.client.HTTPConnection
        if split.scheme == "https":
            conn = http.client.HTTPSConnection(split.netloc, timeout=self.timeout, context=self._context())
        elif split.scheme == "http" and is_loopback(split.netloc):
            conn = http.client.HTTPConnection(split.netloc, timeout=self.timeout)
        else:  # plain HTTP off this machine: never (credentials could travel in clear text)
            raise ValueError(f"refusing {split.scheme or 'no'} scheme for {split.netloc}")
        try:
            target = split.path + (f"?{split.query}" if split.query else "")
            conn.request(method, target or "/", body=body, headers=dict(headers))
            resp = conn.getresponse()
            return resp.status, resp.headers, resp.read(1 << 20)
        finally:
            conn.close()

    def _context(self):  # noqa: ANN202 - ssl is imported only for HTTPS registries
        if self._tls is None:
            import ssl

            self._tls = ssl.create_default_context()
            if self.ca_bundle:
                self._tls.load_verify_locations(cafile=self.ca_bundle)
        return self._tls


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
        authorization = _authorize(client, reply.get("WWW-Authenticate", ""), domain, repo, docker_config_dir)
        if authorization is None:
            return None
        status, reply, _ = client.request("HEAD", base + path, {**headers, "Authorization": authorization})
    digest = reply.get("Docker-Content-Digest", "") if status == 200 else ""
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
