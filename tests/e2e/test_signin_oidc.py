"""Single sign-on in a real browser: `incidents serve` configured for a real OpenID Connect
provider (tests/harness/oidc.py), a person presses the button on /signin, goes through the
provider's page, and comes back signed in. Without JavaScript too: both sides are plain links
and forms.

The provider's page asks for a stylesheet on a CDN; the browser is kept to this machine, so that
request is refused and the page shows unstyled.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.e2e.conftest import Service, running_service
from tests.e2e.test_pages import assert_no_axe_violations
from tests.harness.oidc import CLIENT_ID, CLIENT_SECRET, OidcProvider, oidc_provider

__all__ = ["oidc_provider"]  # the fixture, for pytest to find in this module

LABEL = "Sign in with City of Example"


@pytest.fixture(scope="module")
def sso_service(
    tmp_path_factory: pytest.TempPathFactory, oidc_provider: OidcProvider
) -> Iterator[Service]:
    """`incidents serve` on a free loopback port, with single sign-on through the provider."""
    with running_service(
        tmp_path_factory.mktemp("incidents-sso-home"),
        base_url="{base_url}",  # the redirect_uri the provider sends the browser back to
        oidc_issuer=oidc_provider.issuer,
        oidc_client_id=CLIENT_ID,
        oidc_client_secret=CLIENT_SECRET,
        oidc_role_map=json.dumps({"Records Auditors": "auditor"}),
        oidc_label=LABEL,
    ) as svc:
        yield svc


def _only_this_machine(ctx: Any) -> Any:
    """Refuse every request that would leave the machine (the provider's CDN stylesheet)."""

    def route(r: Any) -> None:
        if urlsplit(r.request.url).hostname in ("127.0.0.1", "localhost"):
            r.continue_()
        else:
            r.abort()

    ctx.route("**/*", route)
    return ctx


def _press_sso_button(page: Any, svc: Service, next_page: str = "/me") -> None:
    page.goto(f"{svc.base_url}/signin?next={next_page}")
    page.get_by_role("link", name=LABEL).click()
    page.wait_for_url(lambda url: not url.startswith(svc.base_url))  # at the provider


def test_sign_in_through_the_provider_without_javascript(
    nojs_context: Any, sso_service: Service
) -> None:
    page = _only_this_machine(nojs_context).new_page()
    _press_sso_button(page, sso_service)
    assert page.get_by_role("heading", name="Authorize Client").is_visible()
    page.get_by_role("button", name="cdpo@city.example").click()  # a predefined person
    page.wait_for_url(f"{sso_service.base_url}/me")
    assert "Signed in as cdpo@city.example" in page.locator("main").inner_text()
    # The header now offers to sign out, not to sign in.
    assert page.get_by_role("button", name="Sign out").is_visible()


def test_a_person_with_the_auditor_role_claim_reads_every_report(
    context: Any, sso_service: Service
) -> None:
    page = _only_this_machine(context).new_page()
    _press_sso_button(page, sso_service, next_page="/reports")
    page.get_by_role("button", name="auditor@city.example").click()
    page.wait_for_url(f"{sso_service.base_url}/reports")
    assert page.get_by_role("heading", level=1).inner_text()
    page.goto(f"{sso_service.base_url}/me")
    assert page.get_by_role("link", name="Every report").is_visible()


def test_a_new_person_typed_at_the_provider_gets_an_account(
    context: Any, sso_service: Service
) -> None:
    page = _only_this_machine(context).new_page()
    _press_sso_button(page, sso_service)
    page.get_by_placeholder("sub").fill("new.person@city.example")
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_url(f"{sso_service.base_url}/me")
    assert "Signed in as new.person@city.example" in page.locator("main").inner_text()


def test_declining_at_the_provider_shows_a_plain_page_with_a_way_back(
    context: Any, sso_service: Service
) -> None:
    page = _only_this_machine(context).new_page()
    _press_sso_button(page, sso_service)
    page.get_by_role("button", name="Deny").click()
    page.wait_for_url(lambda url: url.startswith(f"{sso_service.base_url}/signin/oidc/callback"))
    assert page.get_by_role("heading", level=1).inner_text() == "You are not signed in"
    assert "you chose not to" in page.locator("main").inner_text()
    assert_no_axe_violations(page, "the page after declining at the provider")
    page.get_by_role("link", name=f"Start again: {LABEL}").click()
    page.wait_for_url(lambda url: not url.startswith(sso_service.base_url))  # at the provider


def test_the_sign_in_page_with_single_sign_on_has_no_axe_violations(
    context: Any, sso_service: Service
) -> None:
    page = _only_this_machine(context).new_page()
    page.goto(f"{sso_service.base_url}/signin")
    button = page.get_by_role("link", name=LABEL)
    assert button.is_visible()
    assert button.get_attribute("href") == "/signin/oidc?next=/me"
    assert_no_axe_violations(page, "/signin with single sign-on")
