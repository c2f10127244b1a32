"""Sunset reviews against the running service: a pattern of reports opens one review and the CIO
is told; only the CIO decides; a phase-out plan must address what the policy asks, its
milestones are clocks, and the system retires when they are done; an exception's expiry opens
the review again; a pilot's halt is immediate; the public page lists approved systems only."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from incidents.obligations.model import Obligation
from incidents.policy.reviews import MILESTONE
from tests.support import bearer, harm_report, settled

PLAN = {
    "data_ownership": "The City owns the conversation logs and the fine-tuning data.",
    "data_access": "Logs are exported to the records system and kept for 7 years.",
    "portability": "The vendor hands over the prompts, the model card and the training data.",
    "impact_services": "Benefits enquiries go back to the phone line, with two more staff.",
    "impact_users": "Caseworkers are trained on the manual process in one session.",
    "impact_residents": "Residents are told on the website and by mail, in five languages.",
}


async def only_system(client, headers, name: str) -> dict:  # type: ignore[no-untyped-def]
    listed = await (await client.get("/api/v1/systems", headers=headers)).json()
    return next(s for s in listed["systems"] if s["name"] == name)


class TestSanJose:
    async def reviewed(self, client, runtime) -> tuple[dict, dict[str, str]]:  # type: ignore[no-untyped-def]
        for i in range(3):
            body = harm_report(title=f"Chatbot harmed residents, case {i}")
            assert (await client.post("/api/v1/reports", json=body)).status == 201
            await settled(runtime)
        cio = await bearer(runtime, "cio@city.example")
        return await only_system(client, cio, "Benefits Chatbot"), cio

    async def test_three_harm_reports_open_one_review_and_tell_the_cio(
        self, client, runtime, smtp_server
    ):
        system, _ = await self.reviewed(client, runtime)
        assert system["status"] == "under_review"
        [review] = system["reviews"]
        assert review["status"] == "open" and review["opened_by"] == "threshold:san-jose"
        told = [m for m in smtp_server.messages if "cio@city.example" in m.rcpt_tos]
        assert any(
            "Decide on Benefits Chatbot" in m.message.get_body(("plain",)).get_content()
            for m in told
        )

    async def test_only_the_cio_decides_and_a_plan_must_be_complete(self, client, runtime, clock):
        system, cio = await self.reviewed(client, runtime)
        review = system["reviews"][0]["id"]
        path = f"/api/v1/reviews/{review}/decision"
        cdpo = await bearer(runtime, "cdpo@city.example")
        refused = await client.post(path, json={"decision": "halt"}, headers=cdpo)
        assert refused.status in (403, 404)  # the CDPO is not the decider

        due = (clock() + timedelta(days=20)).date().isoformat()
        milestones = [
            {"title": "Export the logs", "due_on": due, "owner_role": "it_department"},
            {"title": "Switch off the chatbot", "due_on": due, "owner_role": "cio"},
        ]
        partial = {k: v for k, v in PLAN.items() if k != "portability"}
        refused = await client.post(
            path,
            json={"decision": "phase_out", "plan": {**partial, "milestones": milestones}},
            headers=cio,
        )
        assert refused.status == 422
        assert set((await refused.json())["fields"]) == {"portability"}

        approved = await client.post(
            path,
            json={"decision": "phase_out", "plan": {**PLAN, "milestones": milestones}},
            headers=cio,
        )
        assert approved.status == 200, await approved.text()
        assert (await approved.json())["status"] == "phasing_out"
        await settled(runtime)

        # The milestones are clocks: a reminder the day before, and each owner acknowledges.
        clock.advance(days=19, hours=12)
        assert await runtime.clocks.sweep() >= 2
        await settled(runtime)
        async with runtime.uows() as uow:
            rows = list(await uow.session.exec(select(Obligation)))
            steps = [o for o in rows if (o.duty or "").startswith(MILESTONE) and o.level == 0]
        assert len(steps) == 2
        for step in steps:
            owner = step.recipients[0]["email"]
            done = await client.post(
                f"/api/v1/obligations/{step.id}/acknowledge",
                headers=await bearer(runtime, owner),
            )
            assert done.status == 200, await done.text()
        await settled(runtime)
        assert (await only_system(client, cio, "Benefits Chatbot"))["status"] == "retired"

    async def test_an_exceptions_expiry_opens_the_review_again(self, client, runtime, clock):
        system, cio = await self.reviewed(client, runtime)
        review = system["reviews"][0]["id"]
        until = (clock() + timedelta(days=10)).date().isoformat()
        granted = await client.post(
            f"/api/v1/reviews/{review}/decision",
            json={
                "decision": "exception",
                "conditions": "Human review of every answer",
                "expires_on": until,
            },
            headers=cio,
        )
        assert granted.status == 200 and (await granted.json())["status"] == "excepted"
        clock.advance(days=11)
        await runtime.clocks.sweep()
        await settled(runtime)
        system = await only_system(client, cio, "Benefits Chatbot")
        assert system["status"] == "under_review"
        assert [r["opened_by"] for r in system["reviews"]][-1] == "exception lapsed"
        assert [r["status"] for r in system["reviews"]] == ["decided", "open"]

    async def test_the_public_page_lists_approved_systems_only(self, client, runtime):
        body = harm_report(ai_system="A tool nobody approved")
        await client.post("/api/v1/reports", json=body)
        await settled(runtime)
        page = await (await client.get("/systems")).text()
        assert "Benefits Chatbot" in page
        assert "A tool nobody approved" not in page
        ciso = await bearer(runtime, "ciso@city.example")
        unknown = await only_system(client, ciso, "A tool nobody approved")
        assert unknown["status"] == "unregistered" and unknown["approved_by"] is None


class TestRedondoBeach:
    @pytest.fixture
    def settings(self, settings):  # type: ignore[no-untyped-def]
        return settings.model_copy(update={"policy": ["redondo-beach"]})

    async def test_a_pilots_halt_is_immediate(self, client, runtime):
        body = harm_report(kind="security", ai_system="Permit Assistant")
        assert (await client.post("/api/v1/reports", json=body)).status == 201
        await settled(runtime)
        cio = await bearer(runtime, "cio@city.example")
        system = await only_system(client, cio, "Permit Assistant")
        assert system["status"] == "halted"
        assert system["reviews"][0]["opened_by"] == "rule:redondo-beach/pilot-halt"


async def test_a_report_may_name_its_system_by_id(client, runtime):
    await client.post("/api/v1/reports", json=harm_report())
    await settled(runtime)
    cio = await bearer(runtime, "cio@city.example")
    system = await only_system(client, cio, "Benefits Chatbot")
    body = harm_report(ai_system_id=system["id"])
    del body["ai_system"]
    filed = await client.post("/api/v1/reports", json=body)
    assert filed.status == 201, await filed.text()
    await settled(runtime)
    shown = await (
        await client.get(
            f"/api/v1/reports/{(await filed.json())['reference']}",
            params={"receipt_code": (await filed.json())["receipt_code"]},
        )
    ).json()
    assert shown["ai_system"] == "Benefits Chatbot" and shown["ai_system_id"] == system["id"]
    wrong = harm_report(ai_system_id="00000000-0000-0000-0000-000000000000")
    refused = await client.post("/api/v1/reports", json=wrong)
    assert refused.status == 400 and "ai_system_id" in (await refused.json())["fields"]
