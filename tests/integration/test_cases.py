"""Security cases against the running service: a rule opens one, on-call is paged up the
chain until someone acknowledges, phases move only as the plan allows, clocks can be held, and
nobody outside security (and auditors, reading) learns that a case exists."""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import parse_qs

import pytest
from sqlmodel import select

from incidents.cases.model import Case
from incidents.kernel.actor import Grant
from tests.support import ack_link, bearer, harm_report, settled, with_token


async def only_case(client, headers) -> dict:  # type: ignore[no-untyped-def]
    listed = await client.get("/api/v1/cases", headers=headers)
    assert listed.status == 200, await listed.text()
    [case] = (await listed.json())["cases"]
    return case


def exposure(**overrides):  # type: ignore[no-untyped-def]
    return harm_report(kind="data_exposure", data_categories=["pii"], **overrides)


class TestRedondoBeach:
    @pytest.fixture
    def settings(self, settings):  # type: ignore[no-untyped-def]
        return settings.model_copy(update={"policy": ["redondo-beach"]})

    async def test_a_data_exposure_opens_one_case_and_pages_up_the_chain_until_acknowledged(
        self, client, runtime, clock, smtp_server
    ):
        filed = await (await client.post("/api/v1/reports", json=exposure())).json()
        await settled(runtime)
        ciso = await bearer(runtime, "ciso@city.example")
        case = await only_case(client, ciso)
        assert case["reports"] == [filed["reference"]]
        assert case["phase"] == "detect_analyse"
        assert case["severity"] in ("high", "critical")  # personal data raises it
        assert case["acknowledged_by"] is None and case["tasks"]
        # Tuesday 09:00 in the organisation's zone: business hours, the CISO is primary.
        [first] = case["page"]
        assert first["recipients"] == ["ciso@city.example"]
        paged = [m for m in smtp_server.messages if "ciso@city.example" in m.rcpt_tos]
        assert any(case["reference"] in m.message.get_body(("plain",)).get_content() for m in paged)

        # Nobody answers: after the first step's wait, the secondary is paged.
        clock.advance(minutes=16)
        await runtime.clocks.sweep()
        await settled(runtime)
        case = await only_case(client, ciso)
        assert [s["recipients"] for s in case["page"]] == [
            ["ciso@city.example"],
            ["iso@city.example"],
        ]
        assert any("iso@city.example" in m.rcpt_tos for m in smtp_server.messages)

        # The information security officer takes it: the page stops for everyone.
        iso = await bearer(runtime, "iso@city.example")
        taken = await client.post(f"/api/v1/cases/{case['reference']}/acknowledge", headers=iso)
        assert taken.status == 200
        assert (await taken.json())["acknowledged_by"] == "iso@city.example"
        clock.advance(hours=2)
        await runtime.clocks.sweep()
        await settled(runtime)
        case = await only_case(client, ciso)
        assert len(case["page"]) == 2  # no third step
        assert all(s["status"] == "acknowledged" for s in case["page"])

        # Filed twice by the event log's redelivery or not, one report is in one case.
        async with runtime.uows() as uow:
            assert len(list(await uow.session.exec(select(Case)))) == 1

    async def test_the_link_in_the_page_email_takes_the_case_and_stops_the_chain(
        self, client, runtime, clock, smtp_server
    ):
        await client.post("/api/v1/reports", json=exposure())
        await settled(runtime)
        ciso = await bearer(runtime, "ciso@city.example")
        reference = (await only_case(client, ciso))["reference"]
        page = next(
            m
            for m in smtp_server.messages
            if m.rcpt_tos == ["ciso@city.example"]
            and reference in m.message.get_body(("plain",)).get_content()
        )
        link = ack_link(page.message.get_body(("plain",)).get_content())
        path, _, query = link.partition("?")
        button = await with_token(client, link, {k: v[0] for k, v in parse_qs(query).items()})
        assert (await client.post(path, data=button)).status == 200
        await settled(runtime)
        case = await only_case(client, ciso)
        assert case["acknowledged_by"] == "ciso@city.example"
        clock.advance(hours=3)  # past every step's wait
        await runtime.clocks.sweep()
        await settled(runtime)
        assert len((await only_case(client, ciso))["page"]) == 1  # nobody else was paged

    async def test_phases_move_only_as_the_plan_allows(self, client, runtime):
        await client.post("/api/v1/reports", json=exposure())
        await settled(runtime)
        iso = await bearer(runtime, "iso@city.example")
        ref = (await only_case(client, iso))["reference"]
        path = f"/api/v1/cases/{ref}/transitions"

        skip = await client.post(path, json={"to": "recover"}, headers=iso)
        assert skip.status == 409 and "give a reason" in (await skip.json())["error"]
        close = await client.post(path, json={"to": "closed", "reason": "done"}, headers=iso)
        assert close.status == 409 and "required tasks" in (await close.json())["error"]
        bad = await client.post(path, json={"to": "finished"}, headers=iso)
        assert bad.status == 400 and "contain" in (await bad.json())["fields"]["to"]
        step = await client.post(path, json={"to": "contain"}, headers=iso)
        assert step.status == 200 and (await step.json())["phase"] == "contain"

        case = await only_case(client, iso)
        for task in case["tasks"]:
            done = await client.post(
                f"/api/v1/cases/{ref}/tasks/{task['id']}/complete", headers=iso
            )
            assert done.status == 200
        closed = await client.post(
            path, json={"to": "closed", "reason": "contained; lessons written up"}, headers=iso
        )
        assert closed.status == 200, await closed.text()
        assert (await closed.json())["phase"] == "closed"
        again = await client.post(path, json={"to": "recover", "reason": "x"}, headers=iso)
        assert again.status == 409

    async def test_only_security_and_auditors_learn_that_a_case_exists(self, client, runtime):
        filed = await (await client.post("/api/v1/reports", json=exposure())).json()
        await settled(runtime)
        ref = (await only_case(client, await bearer(runtime, "ciso@city.example")))["reference"]
        reporter = await bearer(runtime, "ana.ruiz@city.example")
        assert (await client.get(f"/api/v1/cases/{ref}", headers=reporter)).status == 404
        assert (await client.get("/api/v1/cases", headers=reporter)).status == 404
        shown = await (
            await client.get(f"/api/v1/reports/{filed['reference']}", headers=reporter)
        ).json()
        assert "case" not in shown
        # Nor do the case's page and tasks show among the report's obligations or its timeline.
        assert {o["role"] for o in shown["obligations"]} == {"it_department"}
        code = {"receipt_code": filed["receipt_code"]}
        public = await (
            await client.get(f"/api/v1/reports/{filed['reference']}", params=code)
        ).json()
        assert public["obligations"] == shown["obligations"]
        auditor = await bearer(runtime, "auditor@city.example", Grant.AUDITOR)
        assert (await client.get(f"/api/v1/cases/{ref}", headers=auditor)).status == 200
        acked = await client.post(f"/api/v1/cases/{ref}/acknowledge", headers=auditor)
        assert acked.status == 404  # auditors read; they do not work cases
        seen = await (
            await client.get(
                f"/api/v1/reports/{filed['reference']}",
                headers=await bearer(runtime, "it@city.example"),
            )
        ).json()
        assert seen["case"]["reference"] == ref


class TestSanJose:
    async def test_a_security_report_opens_a_case_under_the_ciso(self, client, runtime):
        await client.post("/api/v1/reports", json=harm_report(kind="security"))
        await settled(runtime)
        case = await only_case(client, await bearer(runtime, "ciso@city.example"))
        assert case["owner_role"] == "ciso"
        assert case["page"][0]["recipients"] == ["ciso@city.example"]


class TestWisconsin:
    @pytest.fixture
    def settings(self, settings):  # type: ignore[no-untyped-def]
        return settings.model_copy(update={"policy": ["wisconsin-city", "wi-134-98"]})

    async def test_a_hold_on_the_45_day_clock_moves_its_deadline_by_the_time_held(
        self, client, runtime, clock
    ):
        await client.post("/api/v1/reports", json=exposure())
        await settled(runtime)
        iso = await bearer(runtime, "iso@city.example")
        ref = (await only_case(client, iso))["reference"]
        confirmed = await client.post(
            f"/api/v1/cases/{ref}/personal-information",
            json={"residents_affected": 12, "states": ["WI"]},
            headers=iso,
        )
        assert confirmed.status == 200, await confirmed.text()
        await settled(runtime)
        case = await only_case(client, iso)
        [statutory] = [
            c for c in case["clocks"] if c["rule"] == "wi-134-98/notify-individuals-45d"
        ][:1]
        base = f"/api/v1/cases/{ref}/clocks/{statutory['id']}"
        held = await client.post(
            f"{base}/hold", json={"reason": "Police asked us to delay notice"}, headers=iso
        )
        assert held.status == 200, await held.text()
        clock.advance(days=10)
        released = await client.post(f"{base}/release", headers=iso)
        assert released.status == 200
        moved = next(c for c in (await released.json())["clocks"] if c["id"] == statutory["id"])
        moved_by = datetime.fromisoformat(moved["due_at"]) - datetime.fromisoformat(
            statutory["due_at"]
        )
        assert moved_by == timedelta(days=10)
        assert "held" not in moved
