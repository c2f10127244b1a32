"""Single sign-on with OpenID Connect: the authorization code flow with PKCE.

- `GET /signin/oidc` reads the provider's discovery document, then sends the browser to the
  provider's sign-in page. What the callback must check (`state`, `nonce`, the PKCE
  `code_verifier`) and the page to go back to travel in a short-lived cookie, encrypted and
  signed, that only this browser holds.
- `GET /signin/oidc/callback` is where the provider sends the browser back. It checks `state`
  against that cookie, exchanges the code for tokens over the back channel (with the client
  secret and the `code_verifier`), and checks the ID token: its signature against the
  provider's published keys, and its issuer, audience, expiry and nonce. The person's `email`
  says who they are; the roles claim, through `SingleSignOn.role_map`, what extra grants they
  hold for this session. Then they are signed in like anyone else.

Both answer 404 when single sign-on is not configured. Every failure is a page in plain words
that says what to do next (start again, or tell the IT desk what the provider said); a provider
that does not answer gives 503, one whose answer cannot be used 502, and neither a traceback.

Talking to the provider goes through aiohttp's client, the HTTP stack the service already runs
on; authlib checks the ID token's claims (on top of joserfc, which checks the signature) and
makes the PKCE challenge.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import timedelta
from typing import Any, Literal
from urllib.parse import quote_plus

import aiohttp
import aiohttp_jinja2
from aiohttp import web
from authlib.oauth2.rfc7636 import create_s256_code_challenge  # type: ignore[import-untyped]
from authlib.oidc.core import CodeIDToken  # type: ignore[import-untyped]
from cryptography.fernet import Fernet, InvalidToken
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry
from yarl import URL

from incidents.kernel.actor import Grant
from incidents.kernel.errors import InvalidInput, NotFound
from incidents.people import signin
from incidents.people.permissions import Permission
from incidents.web.access import requires, safe_next, session_secret, set_session
from incidents.web.deps import DEPS, SingleSignOn, WebDeps
from incidents.web.security import throttle

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

CALLBACK = "/signin/oidc/callback"
TRANSACTION_COOKIE = "incidents_oidc"
TRANSACTION_PATH = "/signin/oidc"  # sent to the start and the callback only
TRANSACTION_LIFETIME = timedelta(minutes=10)
SCOPES = "openid email profile"
# The provider's discovery document and keys are read again after this, so a changed
# configuration or a rotated key is picked up without a restart.
DISCOVERY_LIFETIME = timedelta(hours=1)
# Clocks on two machines differ a little; a minute either way is not a replay.
LEEWAY_SECONDS = 60
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=10)
MAX_ANSWER_BYTES = 1_000_000  # a discovery document or key set is a few kilobytes
# Signatures made with the provider's private key only: "none" would accept anything, and the
# HMAC ones would mean trusting a token signed with our own client secret.
SIGNING_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)

AuthMethod = Literal["client_secret_basic", "client_secret_post"]


# --- what can go wrong, in words a person can act on ---------------------------------------------


class SignInTrouble(Exception):
    """A sign-in that cannot go on: the page to show, and a detail for the IT desk."""

    def __init__(self, status: int, title: str, message: str, detail: str = "") -> None:
        super().__init__(f"{title}: {detail or message}")
        self.status = status
        self.title = title
        self.message = message
        self.detail = detail


def _unreachable(detail: str) -> SignInTrouble:
    return SignInTrouble(
        503,
        "Your organisation's sign-in is not answering",
        "This service could not reach your organisation's sign-in service just now, so you "
        "are not signed in. Try again in a few minutes; if it keeps happening, sign in with a "
        "password if you have one, or tell your IT desk.",
        detail,
    )


def _unusable(detail: str) -> SignInTrouble:
    return SignInTrouble(
        502,
        "Your organisation's sign-in gave an answer we cannot use",
        "Your organisation's sign-in service answered, but not in a way this service can "
        "trust, so you are not signed in. Try again; if it keeps happening, tell your IT desk "
        "and give them the detail below.",
        detail,
    )


def _start_again(detail: str) -> SignInTrouble:
    return SignInTrouble(
        400,
        "Start signing in again",
        "This sign-in cannot be finished: it was started in another browser or tab, it took "
        "longer than 10 minutes, or the address was changed on the way. Start again.",
        detail,
    )


def _refused(message: str, detail: str = "") -> SignInTrouble:
    return SignInTrouble(403, "You are not signed in", message, detail)


# Errors an authorization server may send back instead of a code (RFC 6749 4.1.2.1, OpenID
# Connect Core 3.1.2.6), and what each means for the person looking at the page.
_PROVIDER_SAID = {
    "access_denied": (
        403,
        "You did not sign in with your organisation's account: you chose not to, or your "
        "account is not allowed to use this service. If you think it should be, ask your IT "
        "desk to give you access.",
    ),
    "login_required": (401, "Your organisation's sign-in asked you to sign in first. Try again."),
    "interaction_required": (
        401,
        "Your organisation's sign-in needs you to answer something on its page. Try again.",
    ),
    "consent_required": (
        401,
        "Your organisation's sign-in needs you to agree to share your name and email with "
        "this service. Try again and accept, or ask your IT desk.",
    ),
    "account_selection_required": (
        401,
        "Your organisation's sign-in needs you to choose an account. Try again.",
    ),
    "temporarily_unavailable": (
        503,
        "Your organisation's sign-in is busy or down for maintenance. Try again in a few minutes.",
    ),
}
_SETUP_PROBLEM = (
    "Your organisation's sign-in refused this service's request, which usually means its "
    "set-up needs fixing. Tell your IT desk and give them the detail below."
)


# --- the provider, from its discovery document ---------------------------------------------------


@dataclass(frozen=True)
class Provider:
    """What the provider's discovery document says, and its current signing keys."""

    issuer: str  # exactly as the provider spells it: the ID token's `iss` must be this
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    auth_method: AuthMethod
    algorithms: tuple[str, ...]
    keys: KeySet
    read_at: float = field(default_factory=time.monotonic)


# Per process and per issuer: a sign-in should not cost two extra round trips to the provider.
_PROVIDERS: dict[str, Provider] = {}


def forget_providers() -> None:
    """Forget every cached discovery document and key set (tests; a configuration change)."""
    _PROVIDERS.clear()


async def _get_json(http: aiohttp.ClientSession, url: str, what: str) -> dict[str, Any]:
    """GET a JSON object from the provider; SignInTrouble (503 or 502) when that fails."""
    try:
        async with http.get(url, headers={"Accept": "application/json"}) as answer:
            body = await answer.content.read(MAX_ANSWER_BYTES + 1)
            status = answer.status
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise _unreachable(f"{what} at {url}: {type(exc).__name__} {exc}".strip()) from exc
    if status != 200:
        raise _unusable(f"{what} at {url} answered HTTP {status}")
    return _json_object(body, f"{what} at {url}")


def _json_object(body: bytes, what: str) -> dict[str, Any]:
    if len(body) > MAX_ANSWER_BYTES:
        raise _unusable(f"{what} is larger than {MAX_ANSWER_BYTES} bytes")
    try:
        parsed = json.loads(body)
    except ValueError as exc:
        raise _unusable(f"{what} is not JSON") from exc
    if not isinstance(parsed, dict):
        raise _unusable(f"{what} is not a JSON object")
    return parsed


def _endpoint(document: Mapping[str, Any], name: str, issuer: str) -> str:
    value = document.get(name)
    if not isinstance(value, str) or not value:
        raise _unusable(f"the discovery document has no {name}")
    try:
        url = URL(value)
    except ValueError as exc:
        raise _unusable(f"the discovery document's {name} is not an address: {value}") from exc
    # An https issuer whose endpoints are plain http would send the code and the client
    # secret in the clear.
    allowed = ("https",) if issuer.startswith("https://") else ("https", "http")
    if url.scheme not in allowed or not url.host:
        raise _unusable(f"the discovery document's {name} is not a usable address: {value}")
    return value


def _auth_method(document: Mapping[str, Any]) -> AuthMethod:
    # Absent, the specification's default is client_secret_basic.
    offered = document.get("token_endpoint_auth_methods_supported", ["client_secret_basic"])
    if not isinstance(offered, list):
        offered = []
    if "client_secret_basic" in offered:
        return "client_secret_basic"
    if "client_secret_post" in offered:
        return "client_secret_post"
    raise _unusable(
        "the token endpoint accepts neither client_secret_basic nor client_secret_post "
        f"(it offers {offered})"
    )


def _algorithms(document: Mapping[str, Any]) -> tuple[str, ...]:
    offered = document.get("id_token_signing_alg_values_supported", ["RS256"])
    usable = tuple(a for a in SIGNING_ALGORITHMS if isinstance(offered, list) and a in offered)
    if not usable:
        raise _unusable(f"the provider signs ID tokens only with {offered}, none of them usable")
    return usable


async def _key_set(http: aiohttp.ClientSession, jwks_uri: str) -> KeySet:
    published = await _get_json(http, jwks_uri, "the signing keys")
    try:
        return KeySet.import_key_set(published)  # type: ignore[arg-type]
    except (JoseError, KeyError, TypeError, ValueError) as exc:
        raise _unusable(f"the signing keys at {jwks_uri} cannot be read: {exc}") from exc


async def provider(sso: SingleSignOn, *, fresh_keys: bool = False) -> Provider:
    """The provider's discovery document and keys, read once an hour per process (and the
    keys again when `fresh_keys`: a token signed with a key we have not seen yet)."""
    known = _PROVIDERS.get(sso.issuer)
    stale = known is None or time.monotonic() - known.read_at > DISCOVERY_LIFETIME.total_seconds()
    if known is not None and not stale and not fresh_keys:
        return known
    async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as http:
        if known is not None and not stale:
            read = replace(known, keys=await _key_set(http, known.jwks_uri))
        else:
            read = await _discover(http, sso.issuer)
    _PROVIDERS[sso.issuer] = read
    return read


async def _discover(http: aiohttp.ClientSession, issuer: str) -> Provider:
    url = f"{issuer.rstrip('/')}/.well-known/openid-configuration"
    document = await _get_json(http, url, "the discovery document")
    said = document.get("issuer")
    # OpenID Connect Discovery 4.3: the document must name the issuer it was asked about.
    # (The setting is kept without a trailing slash; some providers' issuers end with one.)
    if not isinstance(said, str) or said.rstrip("/") != issuer.rstrip("/"):
        raise _unusable(
            f"the discovery document at {url} names its issuer {said!r}; "
            "set INCIDENTS_OIDC_ISSUER to exactly the provider's issuer"
        )
    jwks_uri = _endpoint(document, "jwks_uri", said)
    return Provider(
        issuer=said,
        authorization_endpoint=_endpoint(document, "authorization_endpoint", said),
        token_endpoint=_endpoint(document, "token_endpoint", said),
        jwks_uri=jwks_uri,
        auth_method=_auth_method(document),
        algorithms=_algorithms(document),
        keys=await _key_set(http, jwks_uri),
    )


# --- the transaction cookie: what the callback checks ---------------------------------------------


@dataclass(frozen=True)
class Transaction:
    """One sign-in in progress in one browser."""

    state: str  # ties the callback to this browser (no one else's code signs this browser in)
    nonce: str  # ties the ID token to this sign-in (no replayed token)
    verifier: str  # PKCE: only who started the sign-in can exchange its code
    next: str  # the page to go back to


def _fernet(deps: WebDeps) -> Fernet:
    # A key of its own, so a session cookie can never be passed off as a transaction, or back.
    key = hmac.new(deps.secret, b"single sign-on transaction", hashlib.sha256).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def _seal(deps: WebDeps, transaction: Transaction) -> str:
    plain = json.dumps(asdict(transaction)).encode()
    return _fernet(deps).encrypt_at_time(plain, int(deps.now().timestamp())).decode()


def _unseal(deps: WebDeps, cookie: str | None) -> Transaction | None:
    """The transaction in the cookie; None when there is none, or it is old or altered."""
    if not cookie:
        return None
    try:
        plain = _fernet(deps).decrypt_at_time(
            cookie.encode(),
            ttl=int(TRANSACTION_LIFETIME.total_seconds()),
            current_time=int(deps.now().timestamp()),
        )
        return Transaction(**json.loads(plain))
    except (InvalidToken, ValueError, TypeError):
        return None


def _keep(response: web.StreamResponse, deps: WebDeps, transaction: Transaction) -> None:
    response.set_cookie(
        TRANSACTION_COOKIE,
        _seal(deps, transaction),
        max_age=int(TRANSACTION_LIFETIME.total_seconds()),
        httponly=True,
        # Lax: the browser sends it when the provider sends it back here (a top-level GET).
        samesite="Lax",
        secure=deps.secure_cookies,
        path=TRANSACTION_PATH,
    )


def _forget(response: web.StreamResponse) -> None:
    response.del_cookie(TRANSACTION_COOKIE, path=TRANSACTION_PATH)


# --- the pages ------------------------------------------------------------------------------------


def _configured(deps: WebDeps) -> SingleSignOn:
    if deps.single_sign_on is None:
        raise NotFound(
            "Single sign-on is not set up for this service. Sign in with your email and "
            "password at /signin."
        )
    return deps.single_sign_on


def _trouble_page(request: web.Request, trouble: SignInTrouble, target: str) -> web.Response:
    if trouble.status >= 500:
        log.warning("single sign-on failed: %s", trouble)
    else:
        log.info("single sign-on refused: %s", trouble)
    sso = request.app[DEPS].single_sign_on
    context = {
        "title": trouble.title,
        "message": trouble.message,
        "detail": trouble.detail,
        "next": safe_next(target),
        "label": sso.label if sso else "",
    }
    response = aiohttp_jinja2.render_template(
        "oidc_error.html", request, context, status=trouble.status
    )
    _forget(response)  # a transaction is used once, whatever came of it
    return response


def _see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


@routes.get("/signin/oidc")
@requires(Permission.SIGN_IN)
async def start(request: web.Request) -> web.StreamResponse:
    """Send the browser to the organisation's sign-in page."""
    deps = request.app[DEPS]
    sso = _configured(deps)
    target = safe_next(request.query.get("next", "/me"))
    try:
        found = await provider(sso)
    except SignInTrouble as trouble:
        return _trouble_page(request, trouble, target)
    transaction = Transaction(
        state=secrets.token_urlsafe(32),
        nonce=secrets.token_urlsafe(32),
        verifier=secrets.token_urlsafe(48),  # 64 characters; RFC 7636 asks for 43 to 128
        next=target,
    )
    authorize = URL(found.authorization_endpoint).update_query(
        response_type="code",
        client_id=sso.client_id,
        redirect_uri=deps.base_url + CALLBACK,
        scope=SCOPES,
        state=transaction.state,
        nonce=transaction.nonce,
        code_challenge=create_s256_code_challenge(transaction.verifier),
        code_challenge_method="S256",
    )
    response = _see_other(str(authorize))
    _keep(response, deps, transaction)
    return response


@routes.get(CALLBACK)
@requires(Permission.SIGN_IN)
async def finish(request: web.Request) -> web.StreamResponse:
    """Where the provider sends the browser back: check everything, then sign the person in."""
    deps = request.app[DEPS]
    sso = _configured(deps)
    await throttle(request, "signin")  # each try costs the provider a token request
    transaction = _unseal(deps, request.cookies.get(TRANSACTION_COOKIE))
    target = transaction.next if transaction else "/me"
    try:
        person = await _check(request, sso, transaction)
        async with deps.uows() as uow:
            earlier = session_secret(request)
            if earlier is not None:  # whoever was signed in in this browser is not any more
                await signin.sign_out(earlier, uow=uow, now=deps.now())
            started = await signin.with_identity_provider(
                person.email,
                name=person.name,
                grants=person.grants,
                issuer=person.issuer,
                uow=uow,
                now=deps.now(),
            )
    except SignInTrouble as trouble:
        return _trouble_page(request, trouble, target)
    except InvalidInput as exc:
        refusal = _refused(
            "The email address your organisation's sign-in gave for you is not one this "
            "service can use. Tell your IT desk.",
            str(exc),
        )
        return _trouble_page(request, refusal, target)
    response = _see_other(safe_next(target))
    set_session(response, deps, started.secret)
    _forget(response)
    return response


@dataclass(frozen=True)
class Person:
    """Who the provider vouched for."""

    email: str
    name: str
    grants: frozenset[Grant]
    issuer: str


async def _check(
    request: web.Request, sso: SingleSignOn, transaction: Transaction | None
) -> Person:
    query = request.query
    error = query.get("error")
    if error is not None:
        raise _provider_said(error, query.get("error_description", ""))
    if transaction is None:
        raise _start_again("no sign-in in progress in this browser, or it expired")
    if not hmac.compare_digest(query.get("state", "").encode(), transaction.state.encode()):
        raise _start_again("the state parameter does not match the one sent")
    code = query.get("code")
    if not code:
        raise _start_again("the provider sent no authorization code")
    found = await provider(sso)
    tokens = await _exchange(found, sso, code, transaction.verifier, request.app[DEPS].base_url)
    claims = await _id_token_claims(found, sso, tokens, transaction.nonce, request.app[DEPS])
    return _person(claims, sso, found.issuer)


def _provider_said(error: str, description: str) -> SignInTrouble:
    # Only the code is shown (a short word of our own list's letters), never the provider's
    # free text, which anyone can put in a link to this page.
    code = error if re.fullmatch(r"[a-z_]{1,64}", error) else "unknown"
    log.info("the provider sent back %s: %s", code, description[:500])
    status, message = _PROVIDER_SAID.get(code, (502, _SETUP_PROBLEM))
    title = "You are not signed in"
    if status == 503:
        title = "Your organisation's sign-in is not available"
    elif status == 502:
        title = "Your organisation's sign-in refused the request"
    return SignInTrouble(status, title, message, f"the provider answered error={code}")


async def _exchange(
    found: Provider, sso: SingleSignOn, code: str, verifier: str, base_url: str
) -> dict[str, Any]:
    """Trade the code for tokens at the token endpoint (RFC 6749 4.1.3, RFC 7636 4.5)."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": base_url + CALLBACK,
        "code_verifier": verifier,
    }
    headers = {"Accept": "application/json"}
    if found.auth_method == "client_secret_basic":
        # RFC 6749 2.3.1: each part form-encoded before Basic's own encoding.
        pair = f"{quote_plus(sso.client_id)}:{quote_plus(sso.client_secret)}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    else:
        form.update(client_id=sso.client_id, client_secret=sso.client_secret)
    what = f"the token endpoint at {found.token_endpoint}"
    try:
        async with (
            aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as http,
            http.post(
                found.token_endpoint, data=form, headers=headers, allow_redirects=False
            ) as answer,
        ):
            body = await answer.content.read(MAX_ANSWER_BYTES + 1)
            status = answer.status
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise _unreachable(f"{what}: {type(exc).__name__} {exc}".strip()) from exc
    if status != 200:
        try:
            error = json.loads(body).get("error")
        except (ValueError, AttributeError):  # not JSON, or not an object: an error page
            error = None
        said = error if isinstance(error, str) and re.fullmatch(r"[a-z_]{1,64}", error) else "?"
        # Its description, for whoever reads the log; the page shows only the error's code.
        log.warning("token endpoint refused the code: HTTP %s %s %r", status, said, body[:500])
        if said == "invalid_grant":  # the code expired, was used, or the verifier is wrong
            raise _start_again(f"the token endpoint answered HTTP {status} error={said}")
        raise SignInTrouble(
            502,
            "Your organisation's sign-in refused the request",
            _SETUP_PROBLEM,
            f"the token endpoint answered HTTP {status} error={said}",
        )
    tokens = _json_object(body, f"the answer of {what}")
    if not isinstance(tokens.get("id_token"), str):
        raise _unusable(f"{what} sent no ID token (is the openid scope allowed?)")
    return tokens


async def _id_token_claims(
    found: Provider, sso: SingleSignOn, tokens: Mapping[str, Any], nonce: str, deps: WebDeps
) -> dict[str, Any]:
    """The ID token's claims, once its signature, issuer, audience, expiry and nonce check."""
    registry = JWSRegistry(algorithms=list(found.algorithms), strict_check_header=False)
    try:
        try:
            token = jwt.decode(tokens["id_token"], found.keys, registry=registry)
        except InvalidKeyIdError:
            # Signed with a key published since we last looked: read the keys again, once.
            found = await provider(sso, fresh_keys=True)
            token = jwt.decode(tokens["id_token"], found.keys, registry=registry)
        claims = CodeIDToken(
            token.claims,
            token.header,
            {
                "iss": {"essential": True, "value": found.issuer},
                "aud": {"essential": True, "value": sso.client_id},
                "exp": {"essential": True},
            },
            {
                "nonce": nonce,
                "client_id": sso.client_id,
                "access_token": tokens.get("access_token"),
            },
        )
        claims.validate(now=int(deps.now().timestamp()), leeway=LEEWAY_SECONDS)
    except JoseError as exc:
        raise _unusable(f"the ID token does not check out: {exc}") from exc
    return dict(token.claims)


def _person(claims: Mapping[str, Any], sso: SingleSignOn, issuer: str) -> Person:
    email = claims.get("email")
    if not isinstance(email, str) or not email.strip():
        raise _refused(
            "Your organisation's sign-in did not give this service your email address, which "
            "is how it knows who you are. Ask your IT desk to let this service see your email "
            "address.",
            "the ID token has no email claim",
        )
    verified = claims.get("email_verified")
    if verified is False or (isinstance(verified, str) and verified.lower() == "false"):
        raise _refused(
            f"Your organisation's sign-in says the email address {email} is not verified, so "
            "this service cannot take it as yours. Verify it with your IT desk, then try again.",
            "email_verified is false",
        )
    return Person(
        email=email,
        name=_name(claims),
        grants=grants_for(claims.get(sso.roles_claim), sso.role_map),
        issuer=issuer,
    )


def _name(claims: Mapping[str, Any]) -> str:
    name = claims.get("name")
    if isinstance(name, str) and name.strip():
        return name.strip()
    parts = [claims.get("given_name"), claims.get("family_name")]
    return " ".join(p.strip() for p in parts if isinstance(p, str) and p.strip())


def grants_for(value: object, role_map: Mapping[str, Grant]) -> frozenset[Grant]:
    """The grants a roles claim maps to: the claim may be a list of strings or one string;
    values the map does not name give nothing."""
    values = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    return frozenset(role_map[v] for v in values if isinstance(v, str) and v in role_map)
