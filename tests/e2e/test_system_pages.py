"""AI systems in a real browser: a member of staff asks to use a new system on the request form
(and gets its errors summarised), the CIO approves it from the queue, and decides a review on
the system's page with JavaScript off. axe-core checks each page, with and without
an error summary, and each reflows at 320 pixels."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import pyotp
import pytest

from tests.e2e.test_pages import assert_no_axe_violations, assert_reflows, file_report_over_http
from tests.e2e.test_signin_local import choose_password, invite, sign_in

STAFF = "housing.supervisor@city.example"  # not privileged: a password is enough
CIO = "cio@city.example"  # San José's approver of new systems and decider on reviews


def code_key(browser, service, email: str, *role: str, then: Any = None) -> str:  # type: ignore[no-untyped-def]
    """Invite a privileged person, choose a password and set up one-time codes; the key.
    `then(page)` runs on the page while they are still signed in."""
    context = browser.new_context(locale="en-US", timezone_id="America/Los_Angeles")
    try:
        page = context.new_page()
        choose_password(page, service, invite(service, email, *role))
        sign_in(page, email)
        page.get_by_role("heading", name="Set up one-time codes").wait_for()
        key = str(page.locator(".key").inner_text()).replace(" ", "")
        page.get_by_label("Code").fill(fresh_code(key))
        page.get_by_role("button", name="Confirm and sign in").click()
        page.get_by_role("heading", name="Your work").wait_for()
        if then is not None:
            then(page)
        return key
    finally:
        context.close()


USED: dict[str, str] = {}  # the last one-time code used with each key


def fresh_code(key: str) -> str:
    """A code not used yet: the service refuses a code used twice (a replay), so a second
    sign-in within one 30-second step waits for the next step."""
    totp = pyotp.TOTP(key)
    while totp.now() == USED.get(key):
        time.sleep(1)
    USED[key] = totp.now()
    return USED[key]


def signed_in(context, service, email: str, key: str | None = None) -> Any:  # type: ignore[no-untyped-def]
    page = context.new_page()
    page.goto(service.base_url + "/signin")
    sign_in(page, email)
    if key is not None:
        page.get_by_role("heading", name="One-time code").wait_for()
        page.get_by_label("Code").fill(fresh_code(key))
        page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Your work").wait_for()
    return page


@pytest.fixture(scope="module")
def keys(browser, service) -> dict[str, str]:  # type: ignore[no-untyped-def]
    choose = browser.new_context(locale="en-US", timezone_id="America/Los_Angeles")
    try:
        choose_password(choose.new_page(), service, invite(service, STAFF))
    finally:
        choose.close()
    return {CIO: code_key(browser, service, CIO)}


def test_asking_for_and_approving_a_new_system(context, service, keys) -> None:  # type: ignore[no-untyped-def]
    name = f"Tenant Letter Drafter {uuid.uuid4().hex[:6]}"
    page = context.new_page()
    page.goto(service.base_url + "/systems")
    assert_no_axe_violations(page, "the public inventory")
    assert_reflows(page, "the public inventory")

    page = signed_in(context, service, STAFF)
    page.goto(service.base_url + "/approval-requests/new")
    assert_no_axe_violations(page, "the request form")
    with page.expect_navigation() as nav:
        page.get_by_role("button", name="Ask for approval").click()
    assert nav.value is not None and nav.value.status == 400
    assert "Name the AI system" in page.locator(".error-summary").inner_text()
    assert_no_axe_violations(page, "the request form, with errors")
    assert_reflows(page, "the request form, with errors")
    page.get_by_label("Name of the AI system").fill(name)
    page.get_by_label("Department that will use it").fill("Housing")
    page.get_by_label("What it is for").fill("Drafts letters to tenants about repairs.")
    page.get_by_label("Personal information").check()
    with page.expect_navigation() as nav:
        page.get_by_role("button", name="Ask for approval").click()
    assert nav.value is not None and nav.value.status == 201
    assert "is asked to approve or refuse" in page.inner_text("main")
    assert_no_axe_violations(page, "the request sent")

    page = signed_in(context, service, CIO, keys[CIO])
    page.goto(service.base_url + "/reviews")
    section = page.locator("section", has=page.get_by_role("heading", name=re.compile(name)))
    assert section.count() == 1, page.inner_text("main")
    assert_no_axe_violations(page, "the queue, with a request")
    assert_reflows(page, "the queue, with a request")
    with page.expect_navigation():
        section.get_by_role("button", name="Refuse").click()
    assert "Give the reasons" in page.locator(".error-summary").inner_text()
    assert_no_axe_violations(page, "the queue, with a refusal missing its reasons")
    with page.expect_navigation():
        page.locator("section", has=page.get_by_role("heading", name=re.compile(name))).get_by_role(
            "button", name=f"Approve {name}"
        ).click()
    page.goto(service.base_url + "/systems")
    assert name in page.inner_text("main")


def test_the_cio_decides_a_review_without_javascript(  # type: ignore[no-untyped-def]
    context, nojs_context, service, keys
) -> None:
    system = f"Pothole Predictor {uuid.uuid4().hex[:6]}"
    file_report_over_http(
        service.base_url,
        kind="malfunction",
        title="The predictor sent crews to streets with no potholes",
        ai_system=system,
    )
    # axe runs in the page, so it checks the pages with JavaScript on; the decision is then
    # made with it off.
    page = signed_in(context, service, CIO, keys[CIO])
    deadline = time.monotonic() + 20
    while True:
        page.goto(service.base_url + "/reviews")
        row = page.locator("tbody tr", has_text=system)
        if row.count():
            break
        if time.monotonic() > deadline:
            pytest.fail(f"no review of {system} in the queue:\n{service.log_tail()}")
        time.sleep(0.3)
    assert_no_axe_violations(page, "the queue, with a review")
    row.get_by_role("link").click()
    page.get_by_role("heading", level=1, name=system).wait_for()
    path = str(page.url).removeprefix(service.base_url)
    assert_no_axe_violations(page, "a system under review, with the decision form")
    assert_reflows(page, "a system under review, with the decision form")
    with page.expect_navigation() as nav:
        page.get_by_role("button", name="Record the decision").click()
    assert nav.value is not None and nav.value.status == 400
    assert page.locator(".error-summary").is_visible()
    assert_no_axe_violations(page, "the decision form, with errors")

    # The same session with JavaScript off (a second sign-in would wait for a new code).
    nojs_context.add_cookies(context.cookies())
    page = nojs_context.new_page()
    page.goto(service.base_url + path)
    page.get_by_label("Keep it in use").check()
    page.get_by_label("Your reasons").fill("The crews' reports show the model was fine.")
    with page.expect_navigation() as nav:
        page.get_by_role("button", name="Record the decision").click()
    assert nav.value is not None and nav.value.status == 200
    assert "Review decided: Kept in use" in page.inner_text("main")
    assert "The crews' reports show the model was fine." in page.inner_text("main")


def test_the_mail_quarantine_page_has_no_accessibility_violations(  # type: ignore[no-untyped-def]
    browser, service
) -> None:
    def look(page) -> None:  # type: ignore[no-untyped-def]
        page.get_by_role("link", name="Mail in quarantine").click()
        page.get_by_role("heading", level=1, name="Mail in quarantine").wait_for()
        assert_no_axe_violations(page, "the mail quarantine")
        assert_reflows(page, "the mail quarantine")

    code_key(browser, service, "mail.admin@city.example", "--role", "admin", then=look)
