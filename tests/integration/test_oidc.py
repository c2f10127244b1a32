"""Single sign-on against a real OpenID Connect provider (tests/harness/oidc.py, on its own port),
with the service on a real port too, so the browser's round trip is walked as a browser walks it:
the service sends us to the provider, the provider's form sends us back with a code, and the
service exchanges it over the back channel and checks the ID token.

The provider requires PKCE (S256) and a nonce, so every sign-in that succeeds here also shows
that the service sends a verifier matching its challenge.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlsplit, urlunsplit

import aiohttp
import pytest
from pydantic import SecretStr
from sqlmodel import col, select

from incidents.people.model import Account
from incidents.record.model import AuditEntry
from incidents.web import oidc
from incidents.web.app import create_app
from infra.bootstrap import Runtime, build
from infra.settings import Settings
from tests.harness.oidc import (
    CLIENT_ID,
    CLIENT_SECRET,
    OidcProvider,
    oidc_provider,
    start_provider,
)
from tests.support import FakeClock

__all__ = ["oidc_provider"]  # the fixture, for pytest to find in this module


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Site:
    """The service on a real port, configured for the provider; a browser-like client."""

    url: str
    runtime: Runtime
    clock: FakeClock
    http: aiohttp.ClientSession

    async def begin(self, next_page: str = "/me") -> str:
        """Press the single sign-on button: the provider's authorization address."""
        answer = await self.http.get(
            f"{self.url}/signin/oidc", params={"next": next_page}, allow_redirects=False
        )
        assert answer.status == 303, await answer.text()
        return answer.headers["Location"]

    async def at_provider(self, authorize: str, **form: str) -> str:
        """Submit the provider's form: the address it sends the browser back to."""
        answer = await self.http.post(authorize, data=form, allow_redirects=False)
        assert answer.status == 302, await answer.text()
        return answer.headers["Location"]

    async def back(self, callback: str) -> aiohttp.ClientResponse:
        return await self.http.get(callback, allow_redirects=False)

    async def sign_in(self, sub: str, next_page: str = "/me") -> aiohttp.ClientResponse:
        return await self.back(await self.at_provider(await self.begin(next_page), sub=sub))

    async def page(self, path: str) -> aiohttp.ClientResponse:
        return await self.http.get(self.url + path, allow_redirects=False)

    async def entries(self) -> list[AuditEntry]:
        async with self.runtime.uows() as uow:
            return list(await uow.session.exec(select(AuditEntry).order_by(col(AuditEntry.seq))))


def _sso(settings: Settings, issuer: str, secret: str) -> Settings:
    return settings.model_copy(
        update={
            "oidc_issuer": issuer,
            "oidc_client_id": CLIENT_ID,
            "oidc_client_secret": SecretStr(secret),
            "oidc_role_map": {"Records Auditors": "auditor", "AIIncidents.Admin": "admin"},
            "oidc_label": "Sign in with City of Example",
        }
    )


@pytest.fixture
async def make_site(aiohttp_server, settings: Settings):  # type: ignore[no-untyped-def]
    """Start the service for a provider's issuer; each site has its own client and cookies."""
    clients: list[aiohttp.ClientSession] = []

    async def make(issuer: str, secret: str = CLIENT_SECRET) -> Site:
        oidc.forget_providers()  # a port, and so an issuer, may have served another provider
        clock = FakeClock(datetime.now(UTC))  # the provider signs with the real time
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        runtime = await build(_sso(settings, issuer, secret), now=clock, base_url=url)
        await aiohttp_server(create_app(runtime, workers=False), port=port)
        # unsafe: keep cookies from an IP address (127.0.0.1), as a browser does
        http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        clients.append(http)
        return Site(url=url, runtime=runtime, clock=clock, http=http)

    yield make
    for http in clients:
        await http.close()


@pytest.fixture
async def site(make_site, oidc_provider: OidcProvider) -> Site:  # type: ignore[no-untyped-def]
    return await make_site(oidc_provider.issuer)  # type: ignore[no-any-return]


def _set_cookies(answer: aiohttp.ClientResponse) -> dict[str, SimpleCookie]:
    found = {}
    for header in answer.headers.getall("Set-Cookie", []):
        cookie: SimpleCookie = SimpleCookie()
        cookie.load(header)
        for name in cookie:
            found[name] = cookie
    return found


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


# --- signing in ---------------------------------------------------------------------------------


async def test_a_person_signs_in_through_the_provider_and_it_is_on_the_record(
    site: Site, oidc_provider: OidcProvider
) -> None:
    start = await site.http.get(
        f"{site.url}/signin/oidc", params={"next": "/me"}, allow_redirects=False
    )
    assert start.status == 303
    authorize = start.headers["Location"]
    assert authorize.startswith(f"{oidc_provider.issuer}/oauth2/authorize?")
    sent = _query(authorize)
    assert sent["response_type"] == "code"
    assert sent["client_id"] == CLIENT_ID
    assert sent["redirect_uri"] == f"{site.url}/signin/oidc/callback"
    assert set(sent["scope"].split()) >= {"openid", "email"}
    assert sent["code_challenge_method"] == "S256" and len(sent["code_challenge"]) == 43
    assert sent["state"] and sent["nonce"] and sent["state"] != sent["nonce"]
    # What the callback checks waits in a cookie the page's script cannot read, for 10 minutes.
    transaction = _set_cookies(start)["incidents_oidc"]["incidents_oidc"]
    assert transaction["httponly"] and transaction["samesite"] == "Lax"
    assert transaction["path"] == "/signin/oidc" and transaction["max-age"] == "600"
    assert sent["state"] not in transaction.value and sent["nonce"] not in transaction.value

    callback = await site.at_provider(authorize, sub="cdpo@city.example")
    assert callback.startswith(f"{site.url}/signin/oidc/callback?")
    back = await site.back(callback)
    assert back.status == 303, await back.text()
    assert back.headers["Location"] == "/me"
    cookies = _set_cookies(back)
    assert "incidents_session" in cookies
    assert cookies["incidents_oidc"]["incidents_oidc"]["max-age"] == "0"  # used up

    me = await site.page("/me")
    assert me.status == 200
    assert "cdpo@city.example" in await me.text()

    entries = await site.entries()
    created = next(e for e in entries if e.action == "account.created")
    assert created.actor == f"single sign-on ({oidc_provider.issuer})"
    signed_in = [e for e in entries if e.action == "signed_in"]
    assert len(signed_in) == 1
    assert signed_in[0].actor == "cdpo@city.example"
    assert signed_in[0].data["method"] == "oidc"
    assert signed_in[0].data["grants"] == []
    async with site.runtime.uows() as uow:
        account = (
            await uow.session.exec(select(Account).where(Account.email == "cdpo@city.example"))
        ).one()
    assert account.name == "Chief Data Privacy Officer"


async def test_the_page_to_go_back_to_is_kept_and_only_ever_on_this_site(site: Site) -> None:
    back = await site.sign_in("cdpo@city.example", next_page="/policies")
    assert back.headers["Location"] == "/policies"
    for elsewhere in ("https://evil.example/", "//evil.example/me", "/\\evil.example"):
        back = await site.sign_in("cdpo@city.example", next_page=elsewhere)
        assert back.status == 303 and back.headers["Location"] == "/me", elsewhere


async def test_a_role_claim_mapped_to_auditor_gives_auditor_powers_for_that_session(
    make_site, oidc_provider: OidcProvider
) -> None:
    for sub, status in [  # each on a fresh site, one database
        ("auditor@city.example", 200),  # roles: ["Staff", "Records Auditors"]
        ("one.role@city.example", 200),  # roles: "Records Auditors", one string
        ("staff@city.example", 403),  # roles: ["Staff"], which the map does not name
        ("cdpo@city.example", 403),  # no roles claim
    ]:
        site = await make_site(oidc_provider.issuer)
        assert (await site.sign_in(sub)).status == 303
        reports = await site.page("/reports")
        assert reports.status == status, sub
        entry = [e for e in await site.entries() if e.action == "signed_in"][-1]
        assert entry.actor == sub and entry.data["grants"] == (
            ["auditor"] if status == 200 else []
        ), sub
        # The grant holds for the session only: the account itself is given nothing.
        async with site.runtime.uows() as uow:
            account = (await uow.session.exec(select(Account).where(Account.email == sub))).one()
        assert account.grants == [], sub


async def test_signing_in_again_as_someone_else_ends_the_first_session(site: Site) -> None:
    await site.sign_in("cdpo@city.example")
    await site.sign_in("staff@city.example")
    me = await (await site.page("/me")).text()
    assert "staff@city.example" in me and "cdpo@city.example" not in me
    actions = [(e.action, e.actor) for e in await site.entries()]
    assert ("signed_out", "cdpo@city.example") in actions


async def test_the_discovery_document_is_read_once_per_process(
    site: Site, oidc_provider: OidcProvider
) -> None:
    discovery = "GET /.well-known/openid-configuration"
    start = len(oidc_provider.requests)
    assert (await site.sign_in("cdpo@city.example")).status == 303
    assert oidc_provider.requests[start:].count(discovery) == 1
    again = len(oidc_provider.requests)
    for _ in range(3):
        assert (await site.sign_in("cdpo@city.example")).status == 303
    asked = oidc_provider.requests[again:]
    assert asked.count(discovery) == 0 and asked.count("GET /jwks") == 0
    assert asked.count("POST /oauth2/token") == 3


async def test_the_client_authenticates_the_way_the_discovery_document_asks(
    site: Site, make_site, oidc_provider: OidcProvider
) -> None:
    # Saying nothing means client_secret_basic; the secret's odd characters are form-encoded.
    assert (await site.sign_in("cdpo@city.example")).status == 303
    assert oidc_provider.token_auth[-1] == "client_secret_basic"
    with start_provider(auth_methods=("private_key_jwt", "client_secret_post")) as post_only:
        other = await make_site(post_only.issuer)
        assert (await other.sign_in("cdpo@city.example")).status == 303
        assert post_only.token_auth == ["client_secret_post"]


# --- refusals -------------------------------------------------------------------------------------


async def test_a_wrong_client_secret_is_shown_as_a_set_up_problem(
    make_site, oidc_provider: OidcProvider
) -> None:
    site = await make_site(oidc_provider.issuer, secret="not the secret")
    refused = await site.sign_in("cdpo@city.example")
    assert refused.status == 502
    text = await refused.text()
    assert "Tell your IT desk" in text and "error=invalid_client" in text
    assert "not the secret" not in text


async def test_a_code_from_another_sign_in_cannot_be_redeemed(site: Site) -> None:
    # PKCE: a code given for one sign-in, slipped into another, fails at the token endpoint,
    # because only the first holds the verifier that matches its challenge.
    stolen = _query(await site.at_provider(await site.begin(), sub="staff@city.example"))
    mine = _query(await site.at_provider(await site.begin(), sub="cdpo@city.example"))
    slipped = f"{site.url}/signin/oidc/callback?code={stolen['code']}&state={mine['state']}"
    refused = await site.back(slipped)
    assert refused.status == 400
    assert "error=invalid_grant" in await refused.text()
    assert not [e for e in await site.entries() if e.action == "signed_in"]


async def test_a_tampered_state_is_refused_and_the_sign_in_must_start_again(site: Site) -> None:
    callback = await site.at_provider(await site.begin(), sub="cdpo@city.example")
    parts = urlsplit(callback)
    query = _query(callback)
    query["state"] = query["state"][:-2] + ("AA" if not query["state"].endswith("AA") else "BB")
    tampered = urlunsplit(parts._replace(query="&".join(f"{k}={v}" for k, v in query.items())))
    refused = await site.back(tampered)
    assert refused.status == 400
    text = await refused.text()
    assert "Start signing in again" in text and "Traceback" not in text
    # The transaction is spent: the genuine answer cannot be used after a tampered one.
    assert (await site.back(callback)).status == 400
    assert (await site.page("/me")).status == 401
    assert not [e for e in await site.entries() if e.action == "signed_in"]


async def test_a_callback_without_a_sign_in_started_in_this_browser_is_refused(
    site: Site, oidc_provider: OidcProvider
) -> None:
    callback = await site.at_provider(await site.begin(), sub="cdpo@city.example")
    # Someone else's browser (no transaction cookie) cannot use this code: login CSRF.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other:
        refused = await other.get(callback, allow_redirects=False)
        assert refused.status == 400
        assert "Start signing in again" in await refused.text()


async def test_a_sign_in_left_for_more_than_ten_minutes_must_start_again(site: Site) -> None:
    callback = await site.at_provider(await site.begin(), sub="cdpo@city.example")
    site.clock.advance(minutes=11)
    refused = await site.back(callback)
    assert refused.status == 400
    assert "longer than 10 minutes" in await refused.text()


async def test_a_person_who_declines_at_the_provider_gets_a_plain_page(site: Site) -> None:
    callback = await site.at_provider(await site.begin(), action="deny")
    assert _query(callback)["error"] == "access_denied"
    refused = await site.back(callback)
    assert refused.status == 403
    text = await refused.text()
    assert "You did not sign in with your organisation" in text
    assert "Traceback" not in text
    assert (await site.page("/me")).status == 401


async def test_an_error_the_provider_sends_is_shown_by_its_code_only(site: Site) -> None:
    await site.begin()
    crafted = (
        f"{site.url}/signin/oidc/callback?error=server_error"
        "&error_description=Call+0800+FAKE+to+restore+your+account"
    )
    refused = await site.back(crafted)
    assert refused.status == 502
    text = await refused.text()
    assert "error=server_error" in text and "0800" not in text


async def test_an_id_token_changed_after_it_was_signed_is_refused(
    site: Site, oidc_provider: OidcProvider
) -> None:
    authorize = await site.begin()
    callback = await site.at_provider(authorize, sub="staff@city.example")
    oidc_provider.tamper_next_id_token(email="cdpo@city.example", roles=["Records Auditors"])
    refused = await site.back(callback)
    assert refused.status == 502
    text = await refused.text()
    assert "cannot use" in text and "signature" in text
    assert (await site.page("/me")).status == 401
    assert not [e for e in await site.entries() if e.action in ("signed_in", "account.created")]


async def test_without_an_email_or_with_one_not_verified_nobody_is_signed_in(site: Site) -> None:
    refused = await site.sign_in("no-email")
    assert refused.status == 403
    assert "did not give this service your email address" in await refused.text()
    refused = await site.sign_in("unverified@city.example")
    assert refused.status == 403
    assert "is not verified" in await refused.text()
    assert (await site.page("/me")).status == 401
    assert not [e for e in await site.entries() if e.action == "signed_in"]


async def test_an_expired_id_token_is_refused(make_site) -> None:  # type: ignore[no-untyped-def]
    with start_provider(token_lifetime=timedelta(minutes=2)) as short:
        site = await make_site(short.issuer)
        callback = await site.at_provider(await site.begin(), sub="cdpo@city.example")
        site.clock.advance(minutes=5)  # past the token's 2 minutes, within the 10 minutes
        refused = await site.back(callback)
        assert refused.status == 502
        assert "expired" in (await refused.text()).lower()


async def test_a_provider_that_does_not_answer_gives_a_plain_page(make_site) -> None:  # type: ignore[no-untyped-def]
    site = await make_site(f"http://127.0.0.1:{_free_port()}")  # nothing listens there
    answer = await site.page("/signin/oidc?next=/me")
    assert answer.status == 503
    text = await answer.text()
    assert "not answering" in text and "Traceback" not in text
    assert "Other ways to sign in" in text


async def test_a_provider_whose_answer_is_unusable_gives_a_plain_page(
    make_site, oidc_provider: OidcProvider
) -> None:
    site = await make_site(f"{oidc_provider.issuer}/no-such-tenant")  # its discovery: 404
    answer = await site.page("/signin/oidc")
    assert answer.status == 502
    text = await answer.text()
    assert "answer we cannot use" in text and "HTTP 404" in text


async def test_without_single_sign_on_configured_both_addresses_answer_404(client) -> None:  # type: ignore[no-untyped-def]
    for path in ("/signin/oidc", "/signin/oidc/callback?code=x&state=y"):
        answer = await client.get(path, allow_redirects=False)
        assert answer.status == 404, path
        assert "Single sign-on is not set up" in await answer.text()
