"""Issue 2's path, as staff and recipients see it: a San José harm report reaches the supervisor,
the CDPO and Employee Relations by email, on a 24-hour clock that reminds and then escalates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

from sqlalchemy import func
from sqlmodel import select

from incidents.kernel.eventlog import ConsumerPosition
from incidents.notices.model import Notice
from incidents.obligations.model import Obligation
from incidents.reports.model import Report
from tests.support import ack_link, harm_report, settled, with_token

THREE = {"parks.supervisor@city.example", "cdpo@city.example", "employee.relations@city.example"}
DISCOVERED = datetime(2026, 11, 24, 16, 0, tzinfo=UTC)  # 08:00 PST


async def test_api_report_creates_three_obligations_due_24_hours_after_discovery(
    client, smtp_server
):
    resp = await client.post("/api/v1/reports", json=harm_report())
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    assert body["reference"].startswith("AI-2026-")
    assert len(body["receipt_code"]) == 14
    roles = {o["role"]: o for o in body["obligations"]}
    assert set(roles) == {"supervisor", "cdpo", "employee_relations"}
    for o in roles.values():
        assert datetime.fromisoformat(o["due_at"]) == DISCOVERED + timedelta(hours=24)
        assert o["due_at_local"] == "2026-11-25T08:00:00-08:00"
        assert o["status"] == "open"
        assert o["rule"] == "san-jose/harm-24h"
        # Cited by the policy's name, not a file name, with the passage a link away.
        assert o["citation"].startswith("San José Policy 1.7.12, Artificial Intelligence")
        assert o["citations"][0]["file"] == "004_cdd0e18fc1bc8463.txt"
        assert o["citations"][0]["link"] == "/policies/san-jose/source#harm-24h"
    assert roles["supervisor"]["recipients"] == ["parks.supervisor@city.example"]

    received = await smtp_server.wait_for(3)
    assert {r for m in received for r in m.rcpt_tos} == THREE
    for m in received:
        assert body["reference"] in m["Subject"]
        text = m.message.get_body(("plain",)).get_content()
        assert "Benefits Chatbot" in text and "Ana Ruiz" in text
        assert "Wednesday 25 November 2026, 8:00 AM PST" in text  # the deadline, local time
        assert "no later than 24 hours after discovery" in text  # the rule's citation
        assert m.message.get_body(("html",)) is not None
        assert m["Message-ID"].startswith("<notice-")


async def test_the_web_form_files_a_report_and_shows_reference_and_receipt(client, smtp_server):
    form = {
        "kind": "harm",
        "title": "Chatbot refused a resident in distress",
        "description": "It told a resident to stop contacting the City.",
        "discovered_at": "2026-11-24T08:00",  # local time, as a browser sends it
        "reporter_name": "Ana Ruiz",
        "reporter_email": "ana.ruiz@city.example",
        "reporter_department": "Parks",
        "ai_system": "Benefits Chatbot",
    }
    resp = await client.post("/report", data=await with_token(client, "/report", form))
    page = await resp.text()
    assert resp.status == 201, page
    assert "Report received" in page
    reference = page.split('<strong class="code">')[1].split("<")[0]
    receipt = page.split('<strong class="code">')[2].split("<")[0]
    assert reference.startswith("AI-2026-")

    received = await smtp_server.wait_for(3)
    assert {r for m in received for r in m.rcpt_tos} == THREE

    # The reporter can come back with the reference and receipt code.
    lookup = await with_token(client, "/status", {"reference": reference, "receipt_code": receipt})
    status = await client.post("/status", data=lookup)
    assert status.status == 200
    assert "Chatbot refused a resident in distress" in await status.text()
    api = await client.get(f"/api/v1/reports/{reference}", params={"receipt_code": receipt})
    assert api.status == 200
    got = await api.json()
    assert datetime.fromisoformat(got["discovered_at"]) == DISCOVERED
    assert len(got["obligations"]) == 3


async def test_without_the_right_receipt_code_a_report_is_not_revealed(client, smtp_server):
    body = await (await client.post("/api/v1/reports", json=harm_report())).json()
    code = body["receipt_code"]
    one_off = code[:-1] + ("Y" if code[-1] == "X" else "X")  # differs in its last character
    for code in ("", "WRONG-CODE-0000", one_off):
        resp = await client.get(
            f"/api/v1/reports/{body['reference']}", params={"receipt_code": code}
        )
        assert resp.status == 404
        text = await resp.text()
        assert "Benefits" not in text and "Ana" not in text
    missing = await client.get("/api/v1/reports/AI-2026-999999", params={"receipt_code": "X"})
    assert missing.status == 404
    # The same answer for a report that does not exist and for a wrong code: nothing to probe.
    assert (await missing.json()) == (await resp.json())


async def test_unacknowledged_obligation_reminds_then_escalates_to_the_cio(
    client, runtime, clock, smtp_server
):
    await client.post("/api/v1/reports", json=harm_report())
    await smtp_server.wait_for(3)
    await settled(runtime)

    clock.set(DISCOVERED + timedelta(hours=12, seconds=1))  # 12 hours before the deadline
    assert await runtime.clocks.sweep() == 3
    reminders = (await smtp_server.wait_for(6))[3:]
    assert all(m["Subject"].startswith("Reminder:") for m in reminders)
    assert {r for m in reminders for r in m.rcpt_tos} == THREE

    clock.set(DISCOVERED + timedelta(hours=22, seconds=1))  # 2 hours before
    assert await runtime.clocks.sweep() == 3
    await smtp_server.wait_for(9)

    clock.set(DISCOVERED + timedelta(hours=24))  # the deadline
    assert await runtime.clocks.sweep() == 3
    messages = await smtp_server.wait_for(10)
    await settled(runtime)
    escalations = [m for m in smtp_server.messages if m["Subject"].startswith("Escalation:")]
    assert len(smtp_server.messages) == 10
    assert len(escalations) == 1  # one notice to the CIO, naming the three who did not answer
    assert escalations[0].rcpt_tos == ["cio@city.example"]
    assert messages[-1] is not None
    async with runtime.uows() as uow:
        obligations = list(await uow.session.exec(select(Obligation)))
    assert sorted(o.status for o in obligations) == ["breached"] * 3 + ["open"]
    cio = next(o for o in obligations if o.role == "cio")
    assert cio.level == 1 and cio.due_at == clock() + timedelta(hours=24)


async def test_acknowledging_stops_that_obligations_reminders_and_escalation(
    client, runtime, clock, smtp_server
):
    await client.post("/api/v1/reports", json=harm_report())
    first = await smtp_server.wait_for(3)
    supervisor_notice = next(m for m in first if m.rcpt_tos == ["parks.supervisor@city.example"])
    link = ack_link(supervisor_notice.message.get_body(("plain",)).get_content())

    # Opening the link (as a mail scanner would) acknowledges nothing.
    page = await client.get(link)
    assert page.status == 200
    assert "I have received this report" in await page.text()
    async with runtime.uows() as uow:
        assert all(o.status == "open" for o in await uow.session.exec(select(Obligation)))

    path, _, query = link.partition("?")
    sent = {k: v[0] for k, v in parse_qs(query).items()}
    assert sent["r"] == "parks.supervisor@city.example"  # the link names its one person
    button = await with_token(client, link, sent)
    done = await client.post(path, data=button)
    assert done.status == 200
    assert "Acknowledged" in await done.text()
    again = await client.post(path, data=button)
    assert again.status == 200  # twice is harmless

    await settled(runtime)
    clock.set(DISCOVERED + timedelta(hours=12, seconds=1))
    await runtime.clocks.sweep()
    await settled(runtime)
    reminded = {r for m in smtp_server.messages[3:] for r in m.rcpt_tos}
    assert reminded == THREE - {"parks.supervisor@city.example"}

    clock.set(DISCOVERED + timedelta(hours=24, minutes=1))
    await runtime.clocks.sweep()
    await settled(runtime)
    escalation = [m for m in smtp_server.messages if m["Subject"].startswith("Escalation:")]
    assert len(escalation) == 1
    text = escalation[0].message.get_body(("plain",)).get_content()
    assert "City Digital Privacy Officer" in text and "Employee Relations" in text
    assert "supervisor" not in text.split("You are the next level")[0]
    assert all("parks.supervisor@city.example" not in m.rcpt_tos for m in smtp_server.messages[3:])
    async with runtime.uows() as uow:
        sup = (
            await uow.session.exec(select(Obligation).where(Obligation.role == "supervisor"))
        ).one()
    assert sup.status == "acknowledged"
    assert sup.acknowledged_by == "parks.supervisor@city.example"
    assert sup.acknowledged_at == datetime(2026, 11, 24, 17, 0, tzinfo=UTC)


async def test_an_acknowledgement_link_with_a_wrong_token_is_refused(client, runtime, smtp_server):
    await client.post("/api/v1/reports", json=harm_report())
    first = await smtp_server.wait_for(3)
    link = ack_link(first[0].message.get_body(("plain",)).get_content())
    path = link.split("?")[0]
    assert (await client.get(path + "?t=forged")).status == 404
    button = await with_token(client, "/report", {"t": "forged", "r": "x@city.example"})
    assert (await client.post(path, data=button)).status == 404
    # A real link, claimed for someone else: refused, so nobody acknowledges as another.
    sent = {k: v[0] for k, v in parse_qs(link.partition("?")[2]).items()}
    other = "cdpo@city.example" if sent["r"] != "cdpo@city.example" else "er@city.example"
    assert (await client.get(path, params={**sent, "r": other})).status == 404
    claimed = await with_token(client, "/report", {**sent, "r": other})
    assert (await client.post(path, data=claimed)).status == 404


async def test_a_report_discovered_more_than_24_hours_ago_starts_breached_and_escalates_at_once(
    client, runtime, smtp_server
):
    resp = await client.post(
        "/api/v1/reports", json=harm_report(discovered_at="2026-11-21T10:00:00-08:00")
    )
    assert resp.status == 201
    obligations = (await resp.json())["obligations"]
    assert {o["status"] for o in obligations} == {"breached"}
    assert all(o["late"] for o in obligations)
    messages = await smtp_server.wait_for(4)
    await settled(runtime)
    assert len(smtp_server.messages) == 4
    assert sum(m.rcpt_tos == ["cio@city.example"] for m in messages) == 1
    notice = next(m for m in messages if m.rcpt_tos == ["cdpo@city.example"])
    assert "ALREADY PASSED" in notice.message.get_body(("plain",)).get_content()


async def test_replaying_the_log_changes_nothing(client, runtime, smtp_server):
    await client.post("/api/v1/reports", json=harm_report())
    await smtp_server.wait_for(3)
    await settled(runtime)
    async with runtime.uows() as uow:
        for pos in await uow.session.exec(select(ConsumerPosition)):
            pos.position = 0  # every consumer reads the whole log again
            uow.session.add(pos)
    await runtime.close()  # restart the consumers so they re-read from the start
    await runtime.start_workers()
    await settled(runtime)
    async with runtime.uows() as uow:
        notices = (await uow.session.exec(select(func.count()).select_from(Notice))).one()
        reports = (await uow.session.exec(select(func.count()).select_from(Report))).one()
    assert (notices, reports) == (3, 1)
    assert len(smtp_server.messages) == 3


async def test_two_people_in_one_role_each_get_a_link_that_acknowledges_as_them_alone(
    settings, clock, aiohttp_client, smtp_server, tmp_path
):
    from incidents.policy.loader import DEMO_DIRECTORY
    from incidents.web.app import create_app
    from infra.bootstrap import build

    shared = tmp_path / "directory.yaml"
    shared.write_text(
        DEMO_DIRECTORY.read_text().replace(
            "cdpo: [{ name: Casey Data (City Digital Privacy Officer), email: cdpo@city.example }]",
            "cdpo: [{ name: Casey Data, email: cdpo@city.example },"
            " { name: Dana Deputy, email: deputy.cdpo@city.example }]",
        )
    )
    rt = await build(
        settings.model_copy(update={"directory": shared}),
        now=clock,
        base_url="http://incidents.test",
    )
    try:
        client = await aiohttp_client(create_app(rt, workers=True))
        await client.post("/api/v1/reports", json=harm_report())
        received = await smtp_server.wait_for(4)  # supervisor, employee relations, two CDPOs
        to_cdpo = {m.rcpt_tos[0]: m for m in received if "cdpo" in m.rcpt_tos[0]}
        assert set(to_cdpo) == {"cdpo@city.example", "deputy.cdpo@city.example"}
        link = ack_link(
            to_cdpo["deputy.cdpo@city.example"].message.get_body(("plain",)).get_content()
        )
        page = await (await client.get(link)).text()
        assert "You are acknowledging as Dana Deputy (deputy.cdpo@city.example)" in page
        assert 'name="who"' not in page  # no choice of whom to be
        path, _, query = link.partition("?")
        sent = {k: v[0] for k, v in parse_qs(query).items()}
        done = await client.post(path, data=await with_token(client, link, sent))
        assert done.status == 200
        async with rt.uows() as uow:
            cdpo = (
                await uow.session.exec(select(Obligation).where(Obligation.role == "cdpo"))
            ).one()
        assert cdpo.acknowledged_by == "deputy.cdpo@city.example"
        await settled(rt)
    finally:
        await rt.close()
