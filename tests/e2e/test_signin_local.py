"""Local accounts in a real browser: an administrator accepts an invitation, sets up one-time
codes and reaches the roles page; a CDPO signs in without JavaScript, finds the report waiting
for them and acknowledges it as themselves. axe-core checks every page on the way."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pyotp

from tests.e2e.test_pages import (
    REFERENCE,
    assert_no_axe_violations,
    assert_reflows,
    file_report_over_http,
)

PASSWORD = "a long and memorable phrase"


def invite(service, email: str, *extra: str) -> str:  # type: ignore[no-untyped-def]
    """`incidents users invite` on the service's own data folder; the link's path."""
    exe = Path(sys.executable).with_name("incidents")
    env = {k: v for k, v in os.environ.items() if not k.startswith("INCIDENTS_")}
    env["INCIDENTS_HOME"] = str(service.home)
    done = subprocess.run(
        [str(exe), "users", "invite", email, *extra],
        cwd=service.home,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return urlsplit(done.stdout.strip().splitlines()[-1]).path


def choose_password(page, service, path: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(service.base_url + path)
    page.get_by_label("New password").fill(PASSWORD)
    page.get_by_label("The same password again").fill(PASSWORD)
    page.get_by_role("button", name="Set the password").click()
    page.get_by_text("Your password is set").wait_for()


def sign_in(page, email: str) -> None:  # type: ignore[no-untyped-def]
    page.get_by_label("Work email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_an_admin_is_invited_sets_up_codes_and_sees_the_roles(context, service) -> None:  # type: ignore[no-untyped-def]
    path = invite(service, "new.admin@city.example", "--role", "admin")
    page = context.new_page()
    page.goto(service.base_url + path)
    assert_no_axe_violations(page, "choosing a password")
    page.get_by_label("New password").fill("short")
    page.get_by_label("The same password again").fill("short")
    page.get_by_role("button", name="Set the password").click()
    assert page.locator(".error-summary").is_visible()
    assert_no_axe_violations(page, "choosing a password, with errors")

    choose_password(page, service, path)
    assert_no_axe_violations(page, "the sign-in page")
    assert_reflows(page, "the sign-in page")
    sign_in(page, "new.admin@city.example")
    page.get_by_role("heading", name="Set up one-time codes").wait_for()
    assert_no_axe_violations(page, "setting up one-time codes")
    assert_reflows(page, "setting up one-time codes")
    key = page.locator(".key").inner_text().replace(" ", "")
    page.get_by_label("Code").fill(pyotp.TOTP(key).now())
    page.get_by_role("button", name="Confirm and sign in").click()
    page.get_by_role("heading", name="Your work").wait_for()
    assert "new.admin@city.example" in page.content()

    page.goto(service.base_url + "/admin/roles")
    page.get_by_role("heading", name="Who may do what").wait_for()
    assert_no_axe_violations(page, "the roles page")
    assert_reflows(page, "the roles page")

    page.get_by_role("button", name="Sign out").click()
    page.get_by_text("You are signed out").wait_for()
    assert page.goto(service.base_url + "/admin/roles").status == 401


def test_a_named_person_signs_in_without_javascript_and_acknowledges(  # type: ignore[no-untyped-def]
    context, nojs_context, service
) -> None:
    confirmation = file_report_over_http(service.base_url, title="Chatbot denied rent relief")
    reference = REFERENCE.search(confirmation)
    assert reference
    path = invite(service, "cdpo@city.example")  # San José's harm rule names the CDPO

    page = nojs_context.new_page()
    choose_password(page, service, path)
    sign_in(page, "cdpo@city.example")
    page.get_by_role("heading", name="Your work").wait_for()
    page.get_by_role("link", name=re.compile(reference.group(0))).first.click()
    page.get_by_role("heading", name=re.compile(reference.group(0))).wait_for()
    page.get_by_role("button", name="Acknowledge as cdpo@city.example").click()
    timeline = page.locator("ol.timeline").inner_text()
    assert "Acknowledged for" in timeline and "by cdpo@city.example" in timeline
    assert "Acknowledged by cdpo@city.example" in page.content()

    # The same pages, with JavaScript (axe runs in the page).
    page = context.new_page()
    page.goto(service.base_url + "/signin")
    sign_in(page, "cdpo@city.example")
    page.get_by_role("heading", name="Your work").wait_for()
    assert_no_axe_violations(page, "your work")
    assert_reflows(page, "your work")
    page.goto(f"{service.base_url}/reports/{reference.group(0)}")
    assert_no_axe_violations(page, "a report with its timeline")
    assert_reflows(page, "a report with its timeline")
