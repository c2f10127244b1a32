"""What a city's counsel reads: notices that say what the rule asks and link to the sentence it
rests on, deadlines that skip public holidays, and one obligation per statutory duty."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from sqlmodel import select

from incidents.obligations import service as obligations
from incidents.obligations.model import Obligation
from incidents.reports import service as reports
from infra.settings import Settings
from tests.support import harm_report, settled


def plain(message) -> str:  # type: ignore[no-untyped-def]
    return message.message.get_body(("plain",)).get_content()


async def test_a_notice_links_to_the_passage_its_rule_rests_on(client, runtime, smtp_server):
    answer = await client.post("/api/v1/reports", json=harm_report())
    assert answer.status == 201
    await smtp_server.wait_for(3)
    text = plain(smtp_server.messages[0])
    assert "San José Policy 1.7.12, Artificial Intelligence, “Prohibited Uses”" in text
    link = re.search(r"Read it in its source: http://incidents\.test(\S+)", text)
    assert link, text
    assert link.group(1) == "/policies/san-jose/source#harm-24h"

    page = await client.get(link.group(1).split("#")[0])
    assert page.status == 200
    html = await page.text()
    # The cited sentence is marked in the policy's own text, under the anchor the link names.
    marked = re.search(r'<mark id="harm-24h">(.*?)</mark>', html, re.S)
    assert marked, html[:2000]
    assert "no later than 24 hours after discovery" in " ".join(marked.group(1).split())
    assert "SCOPE" in html  # the whole source text, not only the passage


async def test_the_source_page_of_a_pack_that_is_not_active_is_not_there(client):
    assert (await client.get("/policies/sacramento/source")).status == 404
    assert (await client.get("/policies/no-such-pack/source")).status == 404


async def test_a_business_day_deadline_skips_memorial_day_and_the_notice_says_so(
    tmp_path, database_url, smtp_server, clock, aiohttp_client
):
    from incidents.web.app import create_app
    from infra.bootstrap import build

    settings = Settings(
        home=tmp_path / "home",
        database_url=database_url,
        smtp_url=smtp_server.url,
        secret_key="a-test-secret",
        clock_tick_seconds=3600,
        policy=["sacramento"],
    )
    clock.set(datetime(2026, 5, 22, 21, 30, tzinfo=UTC))  # Friday 14:30 PDT, before Memorial Day
    rt = await build(settings, now=clock, base_url="http://incidents.test")
    try:
        client = await aiohttp_client(create_app(rt, workers=True))
        body = harm_report(kind="malfunction", discovered_at="2026-05-22T14:00:00-07:00")
        answer = await client.post("/api/v1/reports", json=body)
        assert answer.status == 201, await answer.text()
        obligations = (await answer.json())["obligations"]
        assert {o["due_at_local"] for o in obligations} == {"2026-05-26T17:00:00-07:00"}
        assert all(o["holidays"] == ["Memorial Day, Mon 25 May 2026"] for o in obligations)
        await smtp_server.wait_for(2)
        for message in smtp_server.messages:
            assert "Holidays moved this deadline: Memorial Day, Mon 25 May 2026" in plain(message)
        await settled(rt)
    finally:
        await rt.close()


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """San José with California's breach-notice statute, for every test here."""
    return settings.model_copy(update={"policy": ["san-jose", "ca-breach-notice"]})


async def test_the_attorney_general_sample_is_its_own_obligation_and_says_what_the_law_asks(
    client, runtime, clock, smtp_server
):
    body = harm_report(kind="data_exposure", data_categories=["pii"])
    reference = (await (await client.post("/api/v1/reports", json=body)).json())["reference"]
    await settled(runtime)
    before = len(smtp_server.messages)
    async with runtime.uows() as uow:
        await reports.confirm_acquisition(
            reference,
            confirmed_at=clock(),
            affected_count=600,
            by="ciso@city.example",
            uow=uow,
            now=clock(),
        )
    await smtp_server.wait_for(before + 3)  # legal twice (two duties), and the CDPO
    await settled(runtime)
    async with runtime.uows() as uow:
        rows = await uow.session.exec(select(Obligation).where(Obligation.role == "legal"))
        # (a security case's task for legal, deciding whether notice is owed, is not among them)
        legal = {o.rules[0]: o for o in rows if not obligations.is_case_work(o)}
    assert set(legal) == {
        "ca-breach-notice/notify-residents-30d",
        "ca-breach-notice/attorney-general-sample",
    }
    residents = legal["ca-breach-notice/notify-residents-30d"]
    sample = legal["ca-breach-notice/attorney-general-sample"]
    assert (sample.due_at - residents.due_at).days == 15
    assert residents.action and sample.action and residents.action != sample.action
    assert "Attorney General" in sample.action

    # Acknowledging one duty leaves the other open.

    async with runtime.uows() as uow:
        await obligations.acknowledge(
            residents.id, by="attorney@city.example", uow=uow, now=clock()
        )
    async with runtime.uows() as uow:
        still = await uow.session.get(Obligation, sample.id)
        assert still is not None and still.status == "open"

    # Each notice to counsel carries its own duty's action, word for word.
    to_counsel = [m for m in smtp_server.messages[before:] if "attorney@city.example" in m.rcpt_tos]
    assert len(to_counsel) == 2
    texts = [" ".join(plain(m).split()) for m in to_counsel]
    for duty in (residents, sample):
        wanted = " ".join(duty.action.split())
        assert sum(wanted in t for t in texts) == 1, (wanted, texts)
        assert all("What you must do:" in t for t in texts)
