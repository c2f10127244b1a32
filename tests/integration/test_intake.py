"""Reports filed at the same moment are written together (incidents.intake); each filer still
gets their own reference, obligations and notices, and one bad report refuses only itself."""

from __future__ import annotations

import asyncio

from sqlalchemy import func
from sqlmodel import select

from incidents.kernel.errors import InvalidInput
from incidents.obligations.model import Obligation
from incidents.reports import service as services
from incidents.reports.intake import Intake
from incidents.reports.model import Report
from incidents.reports.schemas import parse_report
from tests.support import harm_report, settled


async def test_reports_filed_at_once_each_get_their_own_reference_obligations_and_notices(
    client, runtime, smtp_server
):
    # Each about its own system: three about one would open a sunset review (San José).
    bodies = [
        harm_report(title=f"Chatbot misled resident number {i}", ai_system=f"Chatbot {i}")
        for i in range(30)
    ]
    responses = await asyncio.gather(*(client.post("/api/v1/reports", json=b) for b in bodies))
    assert [r.status for r in responses] == [201] * 30
    filed = [await r.json() for r in responses]
    assert len({f["reference"] for f in filed}) == 30
    assert len({f["receipt_code"] for f in filed}) == 30

    # Each reference, with its receipt code, shows the report that filer sent.
    for body, f in zip(bodies, filed, strict=True):
        got = await client.get(
            f"/api/v1/reports/{f['reference']}", params={"receipt_code": f["receipt_code"]}
        )
        shown = await got.json()
        assert shown["title"] == body["title"]
        assert {o["id"] for o in shown["obligations"]} == {o["id"] for o in f["obligations"]}

    received = await smtp_server.wait_for(90, timeout=30)
    for f in filed:
        about = [m for m in received if f["reference"] in m["Subject"]]
        assert len(about) == 3, f["reference"]
    await settled(runtime)


async def test_a_refused_report_does_not_refuse_those_written_with_it(runtime, monkeypatch):
    batches: list[int] = []
    file_reports = services.file_reports

    async def counted(drafts, **kw):  # type: ignore[no-untyped-def]
        batches.append(len(drafts))
        return await file_reports(drafts, **kw)

    monkeypatch.setattr(services, "file_reports", counted)
    good = [parse_report(harm_report(title=f"Wrong answer {i}")) for i in range(10)]
    bad = parse_report(harm_report(discovered_at="2026-11-26T08:00:00-08:00"))  # the future

    results = await asyncio.gather(
        *(runtime.intake.file(r, channel="api") for r in [*good[:5], bad, *good[5:]]),
        return_exceptions=True,
    )

    assert batches[0] == 11  # all eleven went into one write, which the bad one failed
    refused = results[5]
    assert isinstance(refused, InvalidInput)
    assert "future" in refused.errors["discovered_at"]
    accepted = [r for i, r in enumerate(results) if i != 5]
    assert all(isinstance(r, services.Filed) for r in accepted)
    assert [r.report.title for r in accepted] == [g.title for g in good]  # type: ignore[union-attr]
    async with runtime.uows() as uow:
        reports = (await uow.session.exec(select(func.count()).select_from(Report))).one()
        obligations = (await uow.session.exec(select(func.count()).select_from(Obligation))).one()
    assert (reports, obligations) == (10, 30)


async def test_closing_finishes_the_reports_being_written(runtime):
    pending = [
        asyncio.create_task(runtime.intake.file(parse_report(harm_report()), channel="api"))
        for _ in range(5)
    ]
    await asyncio.sleep(0)  # the filers have handed them over
    await runtime.intake.close()
    assert all(t.done() and not t.exception() for t in pending)
    async with runtime.uows() as uow:
        assert (await uow.session.exec(select(func.count()).select_from(Report))).one() == 5


async def test_a_report_filed_right_after_another_is_written(runtime):
    # One writer, so the second report can only be written if the first writer, which has just
    # answered, is not taken for busy.
    intake = Intake(runtime.uows, runtime.policy, runtime.now, writers=1)
    first = await intake.file(parse_report(harm_report()), channel="api")
    second = await asyncio.wait_for(intake.file(parse_report(harm_report()), channel="api"), 5)
    assert first.report.reference != second.report.reference
