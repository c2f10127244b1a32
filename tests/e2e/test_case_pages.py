"""Security cases in a real browser: a security report opens a case (San José's pack, which the
default service runs), the CISO signs in with a password and a one-time code, finds the case in
the queue, and works a task and a phase change with JavaScript off. axe-core checks the queue
and the case page (with and without an error summary), and both reflow at 320 pixels."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import pyotp
import pytest

from tests.e2e.test_pages import (
    REFERENCE,
    assert_no_axe_violations,
    assert_reflows,
    file_report_over_http,
)
from tests.e2e.test_signin_local import choose_password, invite, sign_in

CISO = "ciso@city.example"  # privileged: signing in takes a one-time code too


@pytest.fixture(scope="module")
def ciso_key(browser, service) -> str:  # type: ignore[no-untyped-def]
    """Invite the CISO, choose a password and set up one-time codes; the codes' key."""
    context = browser.new_context(locale="en-US", timezone_id="America/Los_Angeles")
    try:
        page = context.new_page()
        choose_password(page, service, invite(service, CISO))
        sign_in(page, CISO)
        page.get_by_role("heading", name="Set up one-time codes").wait_for()
        key = str(page.locator(".key").inner_text()).replace(" ", "")
        page.get_by_label("Code").fill(pyotp.TOTP(key).now())
        page.get_by_role("button", name="Confirm and sign in").click()
        page.get_by_role("heading", name="Your work").wait_for()
        return key
    finally:
        context.close()


@pytest.fixture(scope="module")
def security_report(service) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """A security report, for an AI system named only here (to find its case in the queue)."""
    system = f"Permit Review Assistant {uuid.uuid4().hex[:6]}"
    confirmation = file_report_over_http(
        service.base_url,
        kind="security",
        title="Prompt injection made the permit assistant reveal its service key",
        ai_system=system,
    )
    reference = REFERENCE.search(confirmation)
    assert reference, confirmation
    return {"reference": reference.group(0), "system": system}


def signed_in_as_ciso(context, service, key: str) -> Any:  # type: ignore[no-untyped-def]
    page = context.new_page()
    page.goto(service.base_url + "/signin")
    sign_in(page, CISO)
    page.get_by_role("heading", name="One-time code").wait_for()
    page.get_by_label("Code").fill(pyotp.TOTP(key).now())
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Your work").wait_for()
    return page


def open_the_case(page, service, system: str, timeout: float = 20) -> str:  # type: ignore[no-untyped-def]
    """Wait for the case to reach the queue (the consumer opens it), and open it; its path."""
    deadline = time.monotonic() + timeout
    while True:
        response = page.goto(service.base_url + "/cases")
        assert response is not None and response.status == 200
        row = page.locator("tbody tr", has_text=system)
        if row.count():
            break
        if time.monotonic() > deadline:
            log = service.log_tail()
            pytest.fail(f"no case for {system} in the queue within {timeout} s:\n{log}")
        time.sleep(0.3)
    row.get_by_role("link").click()
    page.get_by_role("heading", level=1, name=re.compile(r"SEC-\d{4}-\d{6}")).wait_for()
    return str(page.url).removeprefix(service.base_url)


def test_the_queue_and_a_case_have_no_accessibility_violations(  # type: ignore[no-untyped-def]
    context, service, ciso_key, security_report
) -> None:
    page = signed_in_as_ciso(context, service, ciso_key)
    path = open_the_case(page, service, security_report["system"])
    assert security_report["reference"] in page.locator("#reports + ul").inner_text()
    assert_no_axe_violations(page, "a security case")
    assert_reflows(page, "a security case")

    page.goto(service.base_url + "/cases")
    assert_no_axe_violations(page, "the security queue")
    assert_reflows(page, "the security queue")
    page.get_by_label("Severity").select_option("critical")
    with page.expect_navigation():
        page.get_by_role("button", name="Show cases").click()
    assert "severity=critical" in page.url
    assert_no_axe_violations(page, "the security queue, filtered")

    # A phase change the plan refuses: the case page again, with the reason summarised.
    page.goto(service.base_url + path)
    page.get_by_label("Move the case to").select_option(label="Closed")
    with page.expect_navigation() as nav:
        page.get_by_role("button", name="Change the phase").click()
    assert nav.value is not None and nav.value.status == 409
    summary = page.locator(".error-summary")
    assert summary.is_visible() and "give a reason" in summary.inner_text()
    assert_no_axe_violations(page, "a security case, with a refused phase change")
    assert_reflows(page, "a security case, with a refused phase change")


def test_a_task_and_a_phase_change_without_javascript(  # type: ignore[no-untyped-def]
    nojs_context, service, ciso_key, security_report
) -> None:
    page = signed_in_as_ciso(nojs_context, service, ciso_key)
    path = open_the_case(page, service, security_report["system"])

    # Take the case, then mark its first open task done.
    take = page.get_by_role("button", name="Acknowledge and take this case")
    if take.count():
        with page.expect_navigation():
            take.click()
    assert f"by {CISO}" in page.locator("#facts + dl").inner_text()
    buttons = page.get_by_role("button", name=re.compile(r"^Mark done"))
    before = buttons.count()
    assert before >= 1, "the case has no open task"
    title = buttons.first.inner_text().removeprefix("Mark done").strip(": \n")
    with page.expect_navigation() as nav:
        buttons.first.click()
    assert nav.value is not None and nav.value.status == 200  # after the 303
    assert page.url.endswith(f"{path}#tasks")
    assert page.get_by_role("button", name=re.compile(r"^Mark done")).count() == before - 1
    done = page.locator(".case-item", has=page.get_by_role("heading", name=title, exact=True))
    assert f"Done by {CISO}" in done.inner_text()

    # The next phase needs no reason.
    assert "Detect and analyse" in page.locator("#phase + p").inner_text()
    page.get_by_label("Move the case to").select_option(label="Contain")
    with page.expect_navigation() as nav:
        page.get_by_role("button", name="Change the phase").click()
    assert nav.value is not None and nav.value.status == 200
    assert "Now: Contain" in page.locator("#phase + p").inner_text()
    timeline = page.locator("ol.timeline").inner_text()
    assert "Phase moved from detect and analyse to contain" in timeline
    assert f"Task done: {title}, by {CISO}" in timeline
