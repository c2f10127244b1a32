"""A real OpenID Connect provider for tests: the `oidc-provider-mock` package's Flask app (built
on authlib's authorization server), served from a thread on a free loopback port.

It publishes a discovery document and a key set, shows a sign-in page (type a `sub`, or press the
button of a predefined person; "Deny" refuses), issues codes, and signs ID tokens with RS256 whose
claims are the person's. A person's claims are set at start (`start_provider(people=...)`) or
later (`OidcProvider.person`). Any client id and secret are accepted.

Around it, `_Checks` adds what the package leaves out, so a client's mistakes show:
- the token endpoint takes only the one client, CLIENT_ID with CLIENT_SECRET, sent as discovery
  advertises (`start_provider(auth_methods=...)`; client_secret_basic when it says nothing);
- PKCE (RFC 7636) is required: every authorization request must carry an S256 `code_challenge`,
  and the token request's `code_verifier` must match it, or the code is refused (invalid_grant);
- every authorization request is kept (`authorizations`), for tests to look at its parameters;
- `tamper_next_id_token(**claims)` changes claims in the next ID token after it was signed, as an
  attacker between the two would, to show that a client checks the signature.

The fixture `oidc_provider` (session scope) yields an `OidcProvider`: `.issuer`, `.person(sub,
claims)`, `.authorizations`, `.requests`, `.tamper_next_id_token(**claims)`. `start_provider()`
runs another, with other people or a shorter token lifetime, for the length of a `with` block.

Import the fixture into a test module: `from tests.harness.oidc import oidc_provider`.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import threading
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlsplit

import pytest
import werkzeug.serving

CLIENT_ID = "ai-incidents"
# Characters that Basic authentication must form-encode first (RFC 6749 2.3.1): a client that
# forgets is refused.
CLIENT_SECRET = "a client secret: with ~odd+ characters/"

PEOPLE: dict[str, dict[str, object]] = {
    # The sub is the email, so the mock's own page is easy to drive: press the button named so.
    "cdpo@city.example": {
        "email": "cdpo@city.example",
        "email_verified": True,
        "name": "Chief Data Privacy Officer",
    },
    "auditor@city.example": {
        "email": "auditor@city.example",
        "email_verified": True,
        "name": "Records Auditor",
        "roles": ["Staff", "Records Auditors"],
    },
    "one.role@city.example": {
        "email": "one.role@city.example",
        "name": "One Role",
        "roles": "Records Auditors",  # one string, as some providers send a single value
    },
    "staff@city.example": {
        "email": "staff@city.example",
        "name": "Staff Member",
        "roles": ["Staff"],
    },
    "no-email": {"name": "Nobody's Address"},
    "unverified@city.example": {
        "email": "unverified@city.example",
        "email_verified": False,
        "name": "Not Verified",
    },
}


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class _Checks:
    """WSGI middleware around the mock provider: requires PKCE and the client's own secret,
    sent the way discovery advertises; keeps what was asked; can tamper with an ID token."""

    app: Any
    client_id: str
    client_secret: str
    auth_methods: tuple[str, ...] | None  # None: discovery does not say (basic is the default)
    authorizations: list[dict[str, str]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)  # every request's method and path
    token_auth: list[str] = field(default_factory=list)  # how each token request authenticated
    challenges: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    tamper: dict[str, object] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        with self.lock:
            self.paths.append(f"{environ.get('REQUEST_METHOD')} {path}")
        if path == "/oauth2/authorize":
            return self._authorize(environ, start_response)
        if path == "/oauth2/token" and environ.get("REQUEST_METHOD") == "POST":
            return self._token(environ, start_response)
        if path == "/.well-known/openid-configuration" and self.auth_methods is not None:
            methods = list(self.auth_methods)
            return _rewritten(
                self.app,
                environ,
                start_response,
                lambda document: document.update(token_endpoint_auth_methods_supported=methods),
            )
        return self.app(environ, start_response)  # type: ignore[no-any-return]

    def _authorize(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        challenge = (query.get("code_challenge"), query.get("code_challenge_method"))
        if environ.get("REQUEST_METHOD") == "GET":
            with self.lock:
                self.authorizations.append(query)

        def remember_code(status: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
            for name, value in headers:
                if name.lower() == "location":
                    code = parse_qs(urlsplit(value).query).get("code")
                    if code:
                        with self.lock:
                            self.challenges[code[0]] = challenge
            return start_response(status, headers, *rest)

        return self.app(environ, remember_code)  # type: ignore[no-any-return]

    def _token(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        method, client = _client_of(environ.get("HTTP_AUTHORIZATION", ""), form)
        with self.lock:
            self.token_auth.append(method)
        allowed = self.auth_methods or ("client_secret_basic",)
        if method not in allowed or client != (self.client_id, self.client_secret):
            return _refuse(start_response, f"client not authenticated ({method})", "invalid_client")
        if form.get("grant_type") == "authorization_code":
            with self.lock:
                challenge, method = self.challenges.pop(form.get("code", ""), (None, None))
            verifier = form.get("code_verifier")
            if challenge is None or method != "S256":
                return _refuse(start_response, "PKCE with S256 is required")
            if verifier is None or _s256(verifier) != challenge:
                return _refuse(start_response, "the code_verifier does not match")
        with self.lock:
            tamper, self.tamper = self.tamper, None
        if tamper is None:
            return self.app(environ, start_response)  # type: ignore[no-any-return]

        def forge(answer: dict[str, Any]) -> None:
            # The claims changed after signing, the signature kept: what an attacker between
            # the provider and the client would send.
            header, payload, signature = answer["id_token"].split(".")
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            claims.update(tamper)
            answer["id_token"] = f"{header}.{_b64url(json.dumps(claims).encode())}.{signature}"

        return _rewritten(self.app, environ, start_response, forge)


def _client_of(authorization: str, form: Mapping[str, str]) -> tuple[str, tuple[str, str] | None]:
    """How a token request authenticated its client (RFC 6749 2.3.1), and as whom."""
    if authorization.lower().startswith("basic "):
        try:
            pair = base64.b64decode(authorization[6:]).decode()
        except ValueError:
            return "client_secret_basic", None
        client_id, _, secret = pair.partition(":")
        return "client_secret_basic", (unquote_plus(client_id), unquote_plus(secret))
    if "client_secret" in form:
        return "client_secret_post", (form.get("client_id", ""), form["client_secret"])
    return "none", None


def _rewritten(
    app: Any, environ: dict[str, Any], start_response: Any, change: Any
) -> Iterable[bytes]:
    """The app's JSON answer, changed in place by `change` before it is sent."""
    kept: dict[str, Any] = {}

    def hold(status: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
        kept.update(status=status, headers=headers)
        return lambda data: None

    answer = json.loads(b"".join(app(environ, hold)))
    change(answer)
    body = json.dumps(answer).encode()
    headers = [(k, v) for k, v in kept["headers"] if k.lower() != "content-length"]
    start_response(kept["status"], [*headers, ("Content-Length", str(len(body)))])
    return [body]


def _refuse(start_response: Any, why: str, error: str = "invalid_grant") -> Iterable[bytes]:
    body = json.dumps({"error": error, "error_description": why}).encode()
    status = "401 UNAUTHORIZED" if error == "invalid_client" else "400 BAD REQUEST"
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


@dataclass
class OidcProvider:
    """A running provider: its issuer URL, and what the tests may ask of it."""

    issuer: str
    checks: _Checks

    @property
    def authorizations(self) -> list[dict[str, str]]:
        """The query parameters of every authorization request it was sent, oldest first."""
        return self.checks.authorizations

    @property
    def token_auth(self) -> list[str]:
        """How each token request authenticated: client_secret_basic, client_secret_post."""
        return self.checks.token_auth

    @property
    def requests(self) -> list[str]:
        """Every request it was sent, as "METHOD /path", oldest first."""
        return self.checks.paths

    def person(self, sub: str, claims: Mapping[str, object]) -> None:
        """Set (or replace) the claims of the person signing in as `sub`."""
        request = urllib.request.Request(
            f"{self.issuer}/users/{sub}",
            data=json.dumps(dict(claims)).encode(),
            headers={"Content-Type": "application/json"},
            method="PUT",
        )
        with urllib.request.urlopen(request, timeout=5) as answer:
            assert answer.status == 204, answer.status

    def tamper_next_id_token(self, **claims: object) -> None:
        """Change these claims in the next ID token issued, after it was signed."""
        with self.checks.lock:
            self.checks.tamper = dict(claims)


@contextmanager
def start_provider(
    people: Mapping[str, Mapping[str, object]] = PEOPLE,
    *,
    token_lifetime: timedelta = timedelta(hours=1),
    auth_methods: tuple[str, ...] | None = None,
) -> Iterator[OidcProvider]:
    """Run a provider on 127.0.0.1 (a free port) until the block ends. It knows one client,
    CLIENT_ID with CLIENT_SECRET; `auth_methods` is what its discovery document says the token
    endpoint takes (None: it says nothing, and client_secret_basic is the one taken)."""
    from oidc_provider_mock import User, app

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    flask_app = app(
        require_nonce=True,
        access_token_max_age=token_lifetime,
        user_claims=[User(sub=sub, claims=dict(claims)) for sub, claims in people.items()],
    )
    checks = _Checks(flask_app, CLIENT_ID, CLIENT_SECRET, auth_methods)
    server = werkzeug.serving.make_server("127.0.0.1", 0, checks, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield OidcProvider(issuer=f"http://127.0.0.1:{server.server_port}", checks=checks)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture(scope="session")
def oidc_provider() -> Iterator[OidcProvider]:
    """A provider for the whole run, with the people in `PEOPLE`."""
    with start_provider() as running:
        yield running
