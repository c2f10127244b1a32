"""The pages in a real browser: axe-core finds no WCAG problems on any of them, and the report form
works with JavaScript off and the keyboard alone.

Reports are filed against the real service started by `service` (conftest.py); its mail is written
to files, from which the acknowledgement link is taken as a recipient would.
"""

from __future__ import annotations

import email
import email.policy
import re
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

REFERENCE = re.compile(r"\bAI-2026-\d+\b")
RECEIPT = re.compile(r"\b[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}\b")
SCREENSHOTS = Path("/tmp")

VALID = {
    "kind": "harm",
    "title": "Chatbot gave residents wrong eligibility answers",
    "description": "The Benefits Chatbot told three residents they were not eligible.\n"
    "They were eligible; one missed a deadline.",
    "reporter_name": "Dana Reyes",
    "reporter_email": "dana.reyes@city.example",
    "reporter_department": "Parks",
    "ai_system": "Benefits Chatbot",
}


# --- helpers -------------------------------------------------------------------------------------


def assert_no_axe_violations(page: Any, what: str) -> None:
    """Run axe-core (all rules: WCAG 2.0/2.1 A and AA, and best practices) on the page."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    violations = results.response["violations"]
    if not violations:
        return
    lines = [f"axe found {len(violations)} kind(s) of problem on {what} ({page.url}):"]
    for v in violations:
        tags = ", ".join(t for t in v["tags"] if t.startswith("wcag") or t == "best-practice")
        lines.append(f"\n- {v['id']} [{v['impact']}] {v['help']} ({tags})\n  {v['helpUrl']}")
        for node in v["nodes"][:10]:
            lines.append(f"    at {' '.join(map(str, node['target']))}")
            lines.append(f"       {node['html'][:200]}")
            summary = (node.get("failureSummary") or "").replace("\n", "\n       ")
            if summary:
                lines.append(f"       {summary}")
    pytest.fail("\n".join(lines), pytrace=False)


def assert_reflows(page: Any, what: str) -> None:
    """WCAG 1.4.10: at 320 CSS pixels wide the page needs no sideways scrolling (a wide table
    may scroll inside its own box)."""
    size = page.viewport_size
    page.set_viewport_size({"width": 320, "height": 640})
    try:
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 320, f"{what} is {width} px wide at a 320 px viewport"
    finally:
        page.set_viewport_size(size)


def past_local_time(page: Any, hours: int = 2) -> datetime:
    """A moment before now in the organisation's zone, from the form's own `max` (its 'now')."""
    now = datetime.strptime(page.get_attribute("#discovered_at", "max"), "%Y-%m-%dT%H:%M")
    return now - timedelta(hours=hours)


def focused(page: Any) -> str:
    return str(
        page.evaluate(
            "(() => { const e = document.activeElement;"
            " return e ? (e.id || e.tagName.toLowerCase() + (e.type ? ':' + e.type : '')) : '' })()"
        )
    )


def tab_to(page: Any, target: str, limit: int = 60) -> None:
    """Press Tab until `target` (an id, or 'button:submit') has focus, as a keyboard user does."""
    seen = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        now = focused(page)
        if now == target:
            return
        seen.append(now)
    pytest.fail(f"Tab never reached {target!r}; focus went through {seen}")


def file_report_over_http(base_url: str, **changes: str) -> str:
    """File a valid report with a plain form post (no browser); returns the confirmation page."""
    fields = {**VALID, **changes}
    # Two days ago is in the past in every zone, whatever the organisation's zone is.
    two_days_ago = datetime.now(UTC) - timedelta(days=2)
    fields.setdefault("discovered_at", two_days_ago.strftime("%Y-%m-%dT%H:%M"))
    # As a browser does: the form page first (its token, and the cookie that goes with it).
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    with opener.open(f"{base_url}/report", timeout=10) as r:
        token = re.search(r'name="csrf" value="([^"]+)"', r.read().decode())
    assert token, "the report form has no token"
    body = urllib.parse.urlencode({**fields, "csrf": token.group(1)}).encode()
    with opener.open(f"{base_url}/report", data=body, timeout=10) as r:
        assert r.status == 201
        return r.read().decode()


def ack_link_for(mail_dir: Path, reference: str, timeout: float = 15) -> str:
    """The acknowledgement link from the plain-text part of a message about `reference`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in sorted(mail_dir.glob("*.eml")) if mail_dir.exists() else []:
            msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if f"[{reference}]" not in str(msg["Subject"]):
                continue
            body = msg.get_body(preferencelist=("plain",))
            assert body is not None, f"{path.name} has no plain-text part"
            found = re.search(r"https?://\S+/ack/\S+\?t=\S+", body.get_content())
            assert found, f"{path.name} has no acknowledgement link:\n{body.get_content()}"
            return found.group(0)
        time.sleep(0.2)
    pytest.fail(f"no mail about {reference} in {mail_dir} within {timeout} s")


# --- axe on every page ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/", "/report", "/status", "/policies", "/policies/san-jose/source"]
)
def test_page_has_no_accessibility_violations(context, service, path: str) -> None:
    page = context.new_page()
    response = page.goto(service.base_url + path)
    assert response is not None and response.status == 200, f"GET {path}: {response.status}"
    assert_no_axe_violations(page, path)
    assert_reflows(page, path)


def test_form_with_errors_has_no_accessibility_violations(context, service) -> None:
    page = context.new_page()
    page.goto(service.base_url + "/report")
    with page.expect_navigation() as nav:
        page.get_by_role("button", name="Send the report").click()
    assert nav.value is not None and nav.value.status == 400
    assert page.locator(".error-summary").is_visible()
    page.screenshot(path=str(SCREENSHOTS / "incidents-e2e-form-errors.png"), full_page=True)
    assert_no_axe_violations(page, "the report form with errors")
    assert_reflows(page, "the report form with errors")


def test_confirmation_and_status_pages_have_no_accessibility_violations(context, service) -> None:
    page = context.new_page()
    page.goto(service.base_url + "/report")
    page.check("#kind")  # the first choice is harm
    for name in ("title", "description", "ai_system", "reporter_name", "reporter_email"):
        page.fill(f"#{name}", VALID[name])
    page.fill("#reporter_department", VALID["reporter_department"])
    page.fill("#discovered_at", past_local_time(page).strftime("%Y-%m-%dT%H:%M"))
    with page.expect_navigation() as nav:
        page.get_by_role("button", name="Send the report").click()
    assert nav.value is not None and nav.value.status == 201, page.content()[:3000]
    page.screenshot(path=str(SCREENSHOTS / "incidents-e2e-confirmation.png"), full_page=True)
    assert_no_axe_violations(page, "the confirmation page")
    assert_reflows(page, "the confirmation page")
    text = page.locator("main").inner_text()
    reference = REFERENCE.search(text)
    code = RECEIPT.search(text)
    assert reference and code, text

    # The reporter looks the report up again.
    page.goto(service.base_url + "/status")
    page.fill("#reference", reference.group(0))
    page.fill("#receipt_code", code.group(0))
    with page.expect_navigation() as nav:
        page.get_by_role("button", name="Show the status").click()
    assert nav.value is not None and nav.value.status == 200
    assert reference.group(0) in page.locator("h1").inner_text()
    assert_no_axe_violations(page, "a report's status")

    # A wrong code: the form again, with its error.
    page.goto(service.base_url + "/status")
    page.fill("#reference", reference.group(0))
    page.fill("#receipt_code", "AAAA-BBBB-CCCC")
    with page.expect_navigation() as nav:
        page.get_by_role("button", name="Show the status").click()
    assert nav.value is not None and nav.value.status == 404
    assert_no_axe_violations(page, "the status form with an error")


def test_acknowledgement_and_mail_pages_have_no_accessibility_violations(context, service) -> None:
    filed = file_report_over_http(service.base_url, title="Ack page check")
    reference = REFERENCE.search(filed)
    assert reference, filed
    link = ack_link_for(service.mail_dir, reference.group(0))

    page = context.new_page()
    response = page.goto(link)
    assert response is not None and response.status == 200, link
    assert reference.group(0) in page.locator("h1").inner_text()
    assert_no_axe_violations(page, "an acknowledgement page")
    assert_reflows(page, "an acknowledgement page")

    with page.expect_navigation() as nav:
        page.get_by_role("button", name="I have received this report").click()
    assert nav.value is not None and nav.value.status == 200
    assert "Acknowledged" in page.locator("h1").inner_text()
    assert_no_axe_violations(page, "the acknowledged page")

    response = page.goto(service.base_url + "/mail")
    assert response is not None and response.status == 200
    assert page.locator("table a").count() > 0, "the mail list shows no message"
    assert_no_axe_violations(page, "/mail")
    assert_reflows(page, "/mail")
    page.locator("table a").first.click()
    page.wait_for_load_state()
    assert "/mail/" in page.url
    assert_no_axe_violations(page, "one outgoing message")


def test_missing_page_has_no_accessibility_violations(context, service) -> None:
    page = context.new_page()
    response = page.goto(service.base_url + "/no-such-page")
    assert response is not None and response.status == 404
    assert_no_axe_violations(page, "the not-found page")


# --- without JavaScript, with the keyboard only ---------------------------------------------------


def test_report_with_keyboard_only_and_javascript_off(nojs_context, service) -> None:
    page = nojs_context.new_page()
    page.goto(service.base_url + "/report")
    when = past_local_time(page)

    tab_to(page, "kind")  # into the group: the first choice, harm
    page.keyboard.press("Space")
    tab_to(page, "title")
    page.keyboard.type(VALID["title"])
    tab_to(page, "description")
    page.keyboard.type(VALID["description"])
    tab_to(page, "discovered_at")
    # Chromium's en-US datetime-local: month, day, year, hour, minute, then A or P.
    page.keyboard.type(when.strftime("%m%d%Y%I%M") + when.strftime("%p")[0])
    tab_to(page, "ai_system")
    page.keyboard.type(VALID["ai_system"])
    tab_to(page, "data_categories")  # the first box: personal information
    page.keyboard.press("Space")
    tab_to(page, "reporter_name")
    page.keyboard.type(VALID["reporter_name"])
    tab_to(page, "reporter_email")
    page.keyboard.type(VALID["reporter_email"])
    tab_to(page, "reporter_department")
    page.keyboard.type(VALID["reporter_department"])

    assert page.is_checked("#kind")
    assert page.is_checked("#data_categories")
    assert page.input_value("#discovered_at") == when.strftime("%Y-%m-%dT%H:%M")

    tab_to(page, "button:submit")
    with page.expect_navigation() as nav:
        page.keyboard.press("Enter")
    assert nav.value is not None and nav.value.status == 201, page.content()[:3000]
    assert page.title().startswith("Report received")
    panel = page.locator(".panel").inner_text()
    assert REFERENCE.search(panel), panel
    assert RECEIPT.search(panel), panel
    assert page.get_by_role("table").count() == 1  # who is being told


def test_errors_without_javascript_are_linked_and_keep_what_was_typed(
    nojs_context, service
) -> None:
    page = nojs_context.new_page()
    page.goto(service.base_url + "/report")

    # Some fields typed, the rest left empty.
    tab_to(page, "title")
    page.keyboard.type("Half a report")
    tab_to(page, "data_categories-phi")
    page.keyboard.press("Space")
    tab_to(page, "reporter_name")
    page.keyboard.type("Dana Reyes")
    tab_to(page, "button:submit")
    with page.expect_navigation() as nav:
        page.keyboard.press("Enter")
    assert nav.value is not None and nav.value.status == 400

    assert page.title().startswith("Error:")
    summary = page.locator(".error-summary")
    assert summary.is_visible()
    assert summary.get_attribute("role") == "alert"
    # Without script, the summary takes focus itself (autofocus), so it is read out first.
    assert "error-summary" in (page.evaluate("document.activeElement.className") or "")

    links = summary.locator("a")
    targets = [str(links.nth(i).get_attribute("href")) for i in range(links.count())]
    assert {"#kind", "#description", "#discovered_at", "#ai_system"} <= set(targets), targets
    assert "#title" not in targets and "#reporter_name" not in targets
    assert all(t.startswith("#") for t in targets), targets
    # The summary lists the problems in the order of the form.
    order = page.evaluate("Array.from(document.querySelectorAll('form [id]')).map(e => e.id)")
    assert targets == sorted(targets, key=lambda t: order.index(t[1:])), targets

    for i, href in enumerate(targets):
        field_id = href[1:]
        field = page.locator(f"#{field_id}")
        assert field.count() == 1, f"summary link {href} points at no field"
        described_by = (field.get_attribute("aria-describedby") or "").split()
        assert f"{field_id}-error" in described_by, (field_id, described_by)
        assert field.get_attribute("aria-invalid") == "true", field_id
        message = page.locator(f"#{field_id}-error").inner_text().replace("Error:", "").strip()
        assert message and message in links.nth(i).inner_text(), (href, message)
        # The link, followed with the keyboard, puts focus in the field.
        links.nth(i).focus()
        page.keyboard.press("Enter")
        assert focused(page) == field_id, f"Enter on {href} left focus on {focused(page)!r}"

    # What was typed is still there.
    assert page.input_value("#title") == "Half a report"
    assert page.input_value("#reporter_name") == "Dana Reyes"
    assert page.is_checked("#data_categories-phi")
    assert not page.is_checked("#data_categories")
