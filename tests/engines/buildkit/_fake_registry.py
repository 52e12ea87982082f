"""A tiny in-test registry endpoint on loopback: manifest HEADs, a token service, a log.

Only what the up-to-date check's manifest HEAD meets in real registries: an anonymous answer,
a ``Bearer`` challenge with a token endpoint (Basic credentials or an OAuth2 refresh token),
a ``Basic`` challenge, 404, a missing digest header and a slow answer.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOKEN = "the-bearer-token"
DIGEST = "sha256:" + "a" * 64
OTHER = "sha256:" + "b" * 64


@dataclass
class Behaviour:
    """What the server answers; the tests change it between requests.

    Attributes:
        digests: repository path → tag → digest (a missing entry is 404).
        auth: ``""`` (anonymous), ``"bearer"`` or ``"basic"``.
        user, password: the accepted credentials; ``refresh_token``: the accepted identity token.
        digest_header: send ``Docker-Content-Digest`` with a 200.
        delay: seconds to wait before answering a manifest request.
        realm: the token endpoint a Bearer challenge names (default: this server's ``/token``).
    """

    digests: dict[str, dict[str, str]] = field(default_factory=dict)
    auth: str = ""
    user: str = "alice"
    password: str = "s3cret"
    refresh_token: str = ""
    digest_header: bool = True
    delay: float = 0.0
    realm: str = ""
    log: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)


class FakeRegistry:
    """``with FakeRegistry() as reg:`` → ``reg.host`` (``127.0.0.1:PORT``), ``reg.behaviour``.

    Args:
        tls: ``(certificate file, key file)`` to serve HTTPS instead of HTTP.
    """

    def __init__(self, tls: tuple[str, str] | None = None) -> None:
        self.behaviour = Behaviour()
        behaviour = self.behaviour

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # quiet test output
                pass

            def do_HEAD(self) -> None:
                self._manifest()

            def do_GET(self) -> None:
                if self.path.startswith("/token"):
                    self._token(urllib.parse.urlsplit(self.path).query)
                else:
                    self._manifest()

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self._token(self.rfile.read(length).decode(), form=True)

            def _record(self) -> None:
                behaviour.log.append((self.command, self.path, dict(self.headers)))

            def _manifest(self) -> None:
                self._record()
                time.sleep(behaviour.delay)
                if not self._authorized():
                    return
                parts = self.path.split("/")  # /v2/<repo...>/manifests/<tag>
                repo, tag = "/".join(parts[2:-2]), parts[-1]
                digest = behaviour.digests.get(repo, {}).get(tag)
                self.send_response(200 if digest else 404)
                if digest and behaviour.digest_header:
                    self.send_header("Docker-Content-Digest", digest)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _authorized(self) -> bool:
                given = self.headers.get("Authorization", "")
                if behaviour.auth == "bearer" and given != f"Bearer {TOKEN}":
                    realm = behaviour.realm or f"http://{self.headers['Host']}/token"
                    self._deny(f'Bearer realm="{realm}",service="fake-registry",scope="ignored"')
                    return False
                if behaviour.auth == "basic" and given != _basic(behaviour.user, behaviour.password):
                    self._deny('Basic realm="fake-registry"')
                    return False
                return True

            def _deny(self, challenge: str) -> None:
                self.send_response(401)
                self.send_header("WWW-Authenticate", challenge)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _token(self, query: str, *, form: bool = False) -> None:
                self._record()
                params = dict(urllib.parse.parse_qsl(query))
                if form:
                    ok = bool(behaviour.refresh_token) and params.get("refresh_token") == behaviour.refresh_token \
                        and params.get("grant_type") == "refresh_token"
                else:
                    ok = self.headers.get("Authorization") == _basic(behaviour.user, behaviour.password)
                ok = ok and params.get("service") == "fake-registry" and params.get("scope", "").endswith(":pull")
                body = json.dumps({"token": TOKEN} if ok else {"errors": ["denied"]}).encode()
                self.send_response(200 if ok else 401)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        if tls is not None:
            import ssl

            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.host = f"127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    def __enter__(self) -> FakeRegistry:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def manifest_requests(self) -> list[tuple[str, str, dict[str, str]]]:
        """The manifest requests received so far (token requests left out)."""
        return [entry for entry in self.behaviour.log if "/manifests/" in entry[1]]


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
