"""Approval requests, periodic audits, reviews opened by hand and exceptions only the City
Manager grants, against the running service: a department asks, the approver the pack names is
told and decides; approval puts the system in the inventory and its audit on a clock; the audit
falling due opens a review; a report about a system nobody approved says so."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.support import bearer, harm_report, settled, sign_in_as, with_token

ASK = {
    "name": "Patrol Transcriber",
    "department": "Police",
    "vendor": "Acme Speech",
    "purpose": "Transcribes body-camera audio into draft reports.",
    "data_categories": ["cji", "pii"],
    "pilot": True,
    "fact_sheet": {"training_data": "Public court recordings", "bias_testing": "None yet"},
}


def told(smtp_server, email: str, words: str) -> bool:  # type: ignore[no-untyped-def]
    return any(
        words in m.message.get_body(("plain",)).get_content()
        for m in smtp_server.messages
        if email in m.rcpt_tos
    )


async def system_named(client, headers, name: str) -> dict | None:  # type: ignore[no-untyped-def]
    listed = await (await client.get("/api/v1/systems", headers=headers)).json()
    return next((s for s in listed["systems"] if s["name"] == name), None)


class TestMilwaukeePolice:
    @pytest.fixture
    def settings(self, settings):  # type: ignore[no-untyped-def]
        return settings.model_copy(update={"policy": ["wisconsin-city", "milwaukee-pd"]})

    async def asked(self, client, runtime) -> dict:  # type: ignore[no-untyped-def]
        officer = await bearer(runtime, "police.supervisor@city.example")
        answer = await client.post("/api/v1/approval-requests", json=ASK, headers=officer)
        assert answer.status == 201, await answer.text()
        await settled(runtime)
        return await answer.json()

    async def test_the_chief_approves_and_the_audit_falls_due_a_year_later(
        self, client, runtime, clock, smtp_server
    ):
        request = await self.asked(client, runtime)
        assert request["status"] == "pending" and request["approver_role"] == "chief_of_police"
        assert told(smtp_server, "police.chief@city.example", "Approve or refuse")
        chief = await bearer(runtime, "police.chief@city.example")
        assert await system_named(client, chief, ASK["name"]) is None  # not before approval

        path = f"/api/v1/approval-requests/{request['id']}/decision"
        cio = await bearer(runtime, "cio@city.example")
        assert (await client.post(path, json={"decision": "approve"}, headers=cio)).status in (
            403,
            404,
        )
        approved = await client.post(path, json={"decision": "approve"}, headers=chief)
        assert approved.status == 200, await approved.text()
        await settled(runtime)
        system = await system_named(client, chief, ASK["name"])
        assert system is not None and system["status"] == "active"
        assert system["approval_rule"] == "milwaukee-pd/approval"
        assert system["fact_sheet"]["bias_testing"] == "None yet"
        assert system["next_review_at"] is not None
        assert told(smtp_server, "police.chief@city.example", "Periodic audit of Patrol")
        public = await (await client.get("/systems")).text()
        assert ASK["name"] in public

        clock.advance(days=366)
        await runtime.clocks.sweep()
        await settled(runtime)
        system = await system_named(client, chief, ASK["name"])
        assert system is not None and system["status"] == "under_review"
        [review] = system["reviews"]
        assert review["opened_by"] == "audit:milwaukee-pd"

        kept = await client.post(
            f"/api/v1/reviews/{review['id']}/decision",
            json={"decision": "continue", "reasons": "The audit found no biased outcomes."},
            headers=chief,
        )
        assert kept.status == 200, await kept.text()
        after = await kept.json()
        assert after["status"] == "active"
        assert after["next_review_at"] > system["next_review_at"]  # the next audit is set

    async def test_refusing_needs_reasons_and_keeps_the_system_out(
        self, client, runtime, smtp_server
    ):
        request = await self.asked(client, runtime)
        chief = await bearer(runtime, "police.chief@city.example")
        path = f"/api/v1/approval-requests/{request['id']}/decision"
        bare = await client.post(path, json={"decision": "refuse"}, headers=chief)
        assert bare.status == 400 and "reasons" in (await bare.json())["fields"]
        refused = await client.post(
            path,
            json={"decision": "refuse", "reasons": "CJI may not leave the CJIS boundary."},
            headers=chief,
        )
        assert refused.status == 200 and (await refused.json())["status"] == "refused"
        await settled(runtime)
        assert await system_named(client, chief, ASK["name"]) is None
        assert told(smtp_server, "police.chief@city.example", "CJI may not leave")
        again = await client.post(path, json={"decision": "approve"}, headers=chief)
        assert again.status == 409

    async def test_a_bad_request_names_each_field_to_fix(self, client, runtime):
        officer = await bearer(runtime, "police.supervisor@city.example")
        answer = await client.post(
            "/api/v1/approval-requests",
            json={"name": "", "department": "Police", "data_categories": ["gossip"]},
            headers=officer,
        )
        assert answer.status == 400
        assert set((await answer.json())["fields"]) == {"name", "purpose", "data_categories"}

    async def test_the_form_asks_and_the_queue_approves_without_javascript(self, client, runtime):
        await sign_in_as(client, runtime, "police.supervisor@city.example")
        fields = await with_token(
            client,
            "/approval-requests/new",
            {
                "name": "Records Redactor",
                "department": "Police",
                "purpose": "Redacts names from released records.",
                "data_categories": "pii",
                "fact-intended_use": "Redaction before release",
            },
        )
        sent = await client.post("/approval-requests/new", data=fields)
        assert sent.status == 201, (await sent.text())[:2000]
        assert "The Chief of Police is asked" in await sent.text()
        await settled(runtime)

        await sign_in_as(client, runtime, "police.chief@city.example")
        queue = await (await client.get("/reviews")).text()
        assert "Records Redactor, for Police" in queue
        request_id = queue.split('action="/approval-requests/')[1].split("/")[0]
        fields = await with_token(client, "/reviews", {"decision": "refuse", "reasons": ""})
        refused = await client.post(f"/approval-requests/{request_id}/decision", data=fields)
        assert refused.status == 400 and "Give the reasons" in await refused.text()
        fields = await with_token(client, "/reviews", {"decision": "approve", "reasons": ""})
        done = await client.post(
            f"/approval-requests/{request_id}/decision", data=fields, allow_redirects=False
        )
        assert done.status == 303
        chief = await bearer(runtime, "police.chief@city.example")
        system = await system_named(client, chief, "Records Redactor")
        assert system is not None and system["status"] == "active"
        assert system["fact_sheet"] == {"intended_use": "Redaction before release"}


class TestRedondoBeach:
    @pytest.fixture
    def settings(self, settings):  # type: ignore[no-untyped-def]
        return settings.model_copy(update={"policy": ["redondo-beach"]})

    async def test_only_the_city_manager_grants_an_exception(self, client, runtime, clock):
        pilot = harm_report(kind="security", ai_system="Permit Assistant")
        assert (await client.post("/api/v1/reports", json=pilot)).status == 201
        await settled(runtime)
        director = await bearer(runtime, "it.director@city.example")
        system = await system_named(client, director, "Permit Assistant")
        assert system is not None and system["status"] == "halted"
        path = f"/api/v1/reviews/{system['reviews'][0]['id']}/decision"
        until = (clock() + timedelta(days=30)).date().isoformat()
        exception = {
            "decision": "exception",
            "conditions": "Staff check each permit",
            "expires_on": until,
        }
        refused = await client.post(path, json=exception, headers=director)
        assert refused.status == 403
        assert "City Manager" in (await refused.json())["error"]
        manager = await bearer(runtime, "city.manager@city.example")
        granted = await client.post(path, json=exception, headers=manager)
        assert granted.status == 200, await granted.text()
        assert (await granted.json())["status"] == "excepted"


class TestSanJose:
    @pytest.fixture
    def settings(self, settings):  # type: ignore[no-untyped-def]
        return settings.model_copy(update={"policy": ["san-jose"]})

    async def test_the_cio_opens_a_review_by_hand(self, client, runtime, smtp_server):
        await client.post("/api/v1/reports", json=harm_report())
        await settled(runtime)
        cio = await bearer(runtime, "cio@city.example")
        system = await system_named(client, cio, "Benefits Chatbot")
        assert system is not None
        path = f"/api/v1/systems/{system['id']}/reviews"
        staff = await bearer(runtime, "parks.supervisor@city.example")
        assert (await client.post(path, json={"reason": "x"}, headers=staff)).status == 403
        empty = await client.post(path, json={"reason": " "}, headers=cio)
        assert empty.status == 400 and "reason" in (await empty.json())["fields"]
        opened = await client.post(
            path, json={"reason": "Residents complain of wrong answers"}, headers=cio
        )
        assert opened.status == 201, await opened.text()
        body = await opened.json()
        assert body["status"] == "under_review"
        assert body["reviews"][0]["opened_by"] == "by hand: cio@city.example"
        await settled(runtime)
        assert told(smtp_server, "cio@city.example", "Residents complain of wrong answers")

    async def test_a_report_about_a_system_nobody_approved_says_so(
        self, client, runtime, smtp_server
    ):
        shadow = harm_report(ai_system="Shadow GPT", title="Staff pasted case notes into it")
        assert (await client.post("/api/v1/reports", json=shadow)).status == 201
        await settled(runtime)
        assert told(smtp_server, "cdpo@city.example", "Shadow GPT (NOT APPROVED")
        approved = harm_report(title="Chatbot misled a resident")
        assert (await client.post("/api/v1/reports", json=approved)).status == 201
        await settled(runtime)
        texts = [
            m.message.get_body(("plain",)).get_content()
            for m in smtp_server.messages
            if "Chatbot misled" in m.message.get_body(("plain",)).get_content()
        ]
        assert texts and not any("NOT APPROVED" in t for t in texts)
