"""The AI system pages against the running service: the CIO finds an open review in the queue,
decides it with the form on the system's page (a plan that misses what the policy asks comes
back with an error summary), and the page shows the decision. Nobody else gets the form."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlmodel import select

from incidents.reports import service as reports
from incidents.systems import service as systems
from incidents.systems.model import Review, ReviewStatus
from infra.bootstrap import Runtime
from tests.support import harm_report, settled, sign_in_as, with_token

Client = TestClient[Any, Any]


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    return settings.model_copy(update={"policy": ["san-jose"]})


async def open_review(client: Client, runtime: Runtime) -> Review:
    """File a malfunction report about the Benefits Chatbot: under san-jose's sunset-halt rule
    it opens a review for the CIO (made by hand here if the review consumer is not wired)."""
    filed = await client.post("/api/v1/reports", json=harm_report(kind="malfunction"))
    assert filed.status == 201, await filed.text()
    await settled(runtime)
    reference = str((await filed.json())["reference"])
    async with runtime.uows() as uow:
        found = (await uow.session.exec(select(Review))).first()
        if found is None:
            report = await reports.by_reference(reference, uow=uow)
            system = await systems.by_name("Benefits Chatbot", uow=uow)
            assert system is not None
            found = Review(
                id="review-by-hand",
                system_id=system.id,
                pack="san-jose",
                decider_role="cio",
                opened_by="rule:san-jose/sunset-halt",
                opened_at=runtime.now(),
                reason="A system that stops giving a positive outcome is halted",
                report_ids=[report.id],
            )
            uow.session.add(found)
        return found


async def page(client: Client, path: str, status: int = 200) -> str:
    answer = await client.get(path)
    text = await answer.text()
    assert answer.status == status, text[:3000]
    return text


async def decide(
    client: Client, system_page: str, review: Review, fields: dict[str, str]
) -> tuple[int, str, str]:
    data = await with_token(client, system_page, fields)
    answer = await client.post(f"/reviews/{review.id}/decision", data=data, allow_redirects=False)
    return answer.status, answer.headers.get("Location", ""), await answer.text()


def summary(html: str) -> str:
    found = re.search(r'<div class="error-summary".*?</div>', html, re.S)
    assert found, "no error summary on the page"
    return found.group(0)


PLAN = {
    "decision": "phase_out",
    "plan-data_ownership": "The City owns all chat logs.",
    "plan-data_access": "Logs exported to the records system.",
    "plan-portability": "The vendor hands over the model card and the training data.",
    "plan-impact_services": "Residents use the phone line meanwhile.",
    "plan-impact_users": "Benefits staff answer the questions again.",
    "plan-impact_residents": "A notice on the benefits page.",
    "milestone-1-title": "Switch the chatbot off",
    "milestone-1-due": "2027-01-15",
    "milestone-1-owner": "cio",
}


async def test_the_cio_decides_a_review_with_a_phase_out_plan(client, runtime) -> None:  # type: ignore[no-untyped-def]
    review = await open_review(client, runtime)
    path = f"/systems/{review.system_id}"

    await sign_in_as(client, runtime, "cio@city.example")
    queue = await page(client, "/reviews")
    assert "Benefits Chatbot" in queue and f'href="{path}#review-{review.id}"' in queue

    shown = await page(client, path)
    assert "Open review" in shown and "Record the decision" in shown
    assert 'name="plan-data_ownership"' in shown and 'name="milestone-3-owner"' in shown

    # A plan without its sections is refused, on the page, with what was typed kept.
    incomplete = {"decision": "phase_out", "milestone-1-title": "Switch the chatbot off"}
    status, _, html = await decide(client, path, review, incomplete)
    assert status == 422, html[:2000]
    said = summary(html)
    assert "data ownership" in said and 'href="#plan-data_ownership"' in said
    assert 'href="#milestone-1-owner"' not in said  # the sections are named first
    assert 'value="Switch the chatbot off"' in html
    assert 'value="phase_out" checked' in html

    # An exception without conditions: 400, linked to the field.
    status, _, html = await decide(client, path, review, {"decision": "exception"})
    assert status == 400 and 'href="#conditions"' in summary(html)

    # A milestone without an owner.
    status, _, html = await decide(client, path, review, {**PLAN, "milestone-1-owner": ""})
    assert status == 422 and 'href="#milestone-1-owner"' in summary(html)

    status, location, _ = await decide(client, path, review, PLAN)
    assert (status, location) == (303, f"{path}#review-{review.id}")
    shown = await page(client, path)
    assert "Phase-out plan approved" in shown
    assert "Being phased out" in shown
    assert "cio@city.example" in shown
    assert "The City owns all chat logs." in shown and "Switch the chatbot off" in shown
    assert "Record the decision" not in shown
    async with runtime.uows() as uow:
        decided = await systems.review_by_id(review.id, uow=uow)
        assert decided.status is ReviewStatus.DECIDED
        assert decided.plan is not None and decided.plan["milestones"] == [
            {"title": "Switch the chatbot off", "due_on": "2027-01-15", "owner_role": "cio"}
        ]
    assert "No review is waiting" in await page(client, "/reviews")

    # Deciding again: refused, on the page.
    status, _, html = await decide(client, path, review, PLAN)
    assert status in (404, 409)


async def test_an_exception_shows_its_conditions_and_expiry(client, runtime) -> None:  # type: ignore[no-untyped-def]
    review = await open_review(client, runtime)
    path = f"/systems/{review.system_id}"
    await sign_in_as(client, runtime, "cio@city.example")
    fields = {
        "decision": "exception",
        "conditions": "A person checks every answer before it is sent.",
        "expires-on": "2027-03-31",
    }
    status, location, html = await decide(client, path, review, fields)
    assert status == 303, html[:2000]
    shown = await page(client, path)
    assert "Express exception granted" in shown
    assert "A person checks every answer before it is sent." in shown
    assert "31 March 2027" in shown
    assert "In use by express exception" in shown


async def test_only_the_decider_gets_the_form(client, runtime) -> None:  # type: ignore[no-untyped-def]
    review = await open_review(client, runtime)
    path = f"/systems/{review.system_id}"

    # Not signed in: the public list only; the system's page asks to sign in.
    client.session.cookie_jar.clear()
    assert "Benefits Chatbot" in await page(client, "/systems")
    assert (await client.get(path)).status == 401

    # Signed in, not the CIO: the page without the form; the queue and the decision refused.
    await sign_in_as(client, runtime, "ana.ruiz@city.example")
    shown = await page(client, path)
    assert "Open review" in shown and "Record the decision" not in shown
    assert (await client.get("/reviews")).status == 403
    status, _, _ = await decide(client, path, review, PLAN)
    assert status == 403
    async with runtime.uows() as uow:
        assert (await systems.review_by_id(review.id, uow=uow)).status is ReviewStatus.OPEN
