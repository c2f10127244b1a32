"""Statutory breach-notice clocks open when acquisition of personal information is confirmed,
counted from that confirmation, not from the report (Wis. Stat. § 134.98)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from incidents.kernel.errors import NotFound
from incidents.obligations.model import Obligation
from incidents.reports import service as services
from infra.settings import Settings
from tests.support import harm_report, settled


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"policy": ["wisconsin-city", "wi-134-98"]})


async def statutory(runtime) -> dict[tuple[str, str], Obligation]:
    """The statutory obligations by role and rule: one role may owe two different duties."""
    async with runtime.uows() as uow:
        rows = await uow.session.exec(select(Obligation))
        return {
            (o.role, o.rules[0]): o
            for o in rows
            if any(r.startswith("wi-134-98/") for r in o.rules)
        }


@pytest.mark.parametrize("affected", [1200, 12])
async def test_confirming_acquisition_opens_the_45_day_clocks(
    client, runtime, clock, smtp_server, affected
):
    body = harm_report(kind="data_exposure", data_categories=["pii"])
    reference = (await (await client.post("/api/v1/reports", json=body)).json())["reference"]
    await settled(runtime)
    assert await statutory(runtime) == {}  # the report alone starts no statutory clock
    before = len(smtp_server.messages)

    clock.advance(days=3)  # the case confirms the acquisition three days later
    confirmed = clock()
    async with runtime.uows() as uow:
        await services.confirm_acquisition(
            reference,
            confirmed_at=confirmed,
            affected_count=affected,
            by="ciso@city.example",
            uow=uow,
            now=clock(),
        )
    await smtp_server.wait_for(before + (3 if affected >= 1000 else 2))
    await settled(runtime)
    opened = await statutory(runtime)
    residents = "wi-134-98/notify-individuals-45d"
    agencies = "wi-134-98/consumer-reporting-agencies"
    expected = {("legal", residents), ("data_privacy_officer", residents)}
    if affected >= 1000:
        # A separate duty: its own obligation, acknowledged on its own, not folded into the
        # notice to individuals.
        expected.add(("legal", agencies))
    assert set(opened) == expected
    for o in opened.values():
        assert o.due_at == confirmed + timedelta(days=45)
        assert o.action, f"{o.rules[0]} must say what the statute asks"
    notices = smtp_server.messages[before:]
    assert {r for m in notices for r in m.rcpt_tos} == {
        "attorney@city.example",
        "privacy@city.example",
    }


async def test_confirming_an_unknown_report_says_so(runtime, clock):
    async with runtime.uows() as uow:
        with pytest.raises(NotFound, match="AI-2026-000404"):
            await services.confirm_acquisition(
                "AI-2026-000404",
                confirmed_at=clock(),
                affected_count=None,
                by="ciso@city.example",
                uow=uow,
                now=clock(),
            )
