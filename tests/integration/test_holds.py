"""Holding an obligation's clock: a law-enforcement agency may ask the City to delay a breach
notice (Wis. Stat. § 134.98 (3)(b)), so the 45-day clock stops while held and its deadline moves
on by the time held when released."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlmodel import col, select

from incidents.kernel.errors import Conflict, InvalidInput, NotFound
from incidents.kernel.eventlog import EventRow
from incidents.notices.model import Notice, NoticePurpose
from incidents.obligations import service as obligations
from incidents.obligations.clocks import fire_due_clocks
from incidents.obligations.events import ObligationBreached, ObligationReleased, ReminderDue
from incidents.obligations.model import ClockRow, ClockStatus, Obligation, ObligationStatus
from incidents.record.model import AuditEntry
from incidents.reports import service as reports
from infra.settings import Settings
from tests.support import cli, harm_report, settled

RESIDENTS = "wi-134-98/notify-individuals-45d"
POLICE = "Milwaukee Police Department asked in writing to delay notice (case 26-104233)."
OFFICER = "attorney@city.example"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"policy": ["wisconsin-city", "wi-134-98"]})


async def statutory_clock(client, runtime, clock) -> tuple[Obligation, datetime]:  # type: ignore[no-untyped-def]
    """File a data exposure, confirm the acquisition (the 45-day clock starts), and return the
    City Attorney's obligation to notify individuals, with the moment of confirmation."""
    body = harm_report(kind="data_exposure", data_categories=["pii"])
    reference = (await (await client.post("/api/v1/reports", json=body)).json())["reference"]
    await settled(runtime)
    confirmed = clock.advance(days=1)
    async with runtime.uows() as uow:
        await reports.confirm_acquisition(
            reference,
            confirmed_at=confirmed,
            affected_count=12,
            by="ciso@city.example",
            uow=uow,
            now=confirmed,
        )
    await settled(runtime)
    found = [o for o in await everything(runtime, Obligation) if o.rules[0] == RESIDENTS]
    legal = next(o for o in found if o.role == "legal")
    assert legal.due_at == confirmed + timedelta(days=45)
    return legal, confirmed


async def everything(runtime, model: type[Any]) -> list[Any]:  # type: ignore[no-untyped-def]
    async with runtime.uows() as uow:
        return list(await uow.session.exec(select(model)))


async def reread(runtime, obligation_id: str) -> tuple[Obligation, list[ClockRow]]:  # type: ignore[no-untyped-def]
    async with runtime.uows() as uow:
        found = await uow.session.get(Obligation, obligation_id)
        assert found is not None
        clocks = await uow.session.exec(
            select(ClockRow).where(ClockRow.obligation_id == obligation_id)
        )
        return found, sorted(clocks, key=lambda c: c.due_at)


async def fire(runtime, clock) -> int:  # type: ignore[no-untyped-def]
    async with runtime.uows() as uow:
        fired = await fire_due_clocks(uow=uow, now=clock())
    await settled(runtime)
    return fired


async def hold(runtime, clock, obligation_id: str, reason: str = POLICE) -> Obligation:  # type: ignore[no-untyped-def]
    async with runtime.uows() as uow:
        return await obligations.hold(
            obligation_id, reason=reason, by=OFFICER, uow=uow, now=clock()
        )


async def release(runtime, clock, obligation_id: str) -> Obligation:  # type: ignore[no-untyped-def]
    async with runtime.uows() as uow:
        return await obligations.release(obligation_id, by=OFFICER, uow=uow, now=clock())


async def events_about(runtime, obligation_id: str, *types: type[Any]) -> list[EventRow]:  # type: ignore[no-untyped-def]
    async with runtime.uows() as uow:
        rows = await uow.session.exec(
            select(EventRow)
            .where(col(EventRow.type).in_([t.type_name() for t in types]))
            .order_by(col(EventRow.seq))
        )
        return [r for r in rows if r.data.get("obligation_id") == obligation_id]


async def test_a_ten_day_hold_moves_the_45_day_deadline_by_ten_days(client, runtime, clock):
    legal, confirmed = await statutory_clock(client, runtime, clock)
    _, before = await reread(runtime, legal.id)
    assert [c.status for c in before] == [ClockStatus.PENDING] * 4  # three reminders, a deadline

    clock.advance(days=3)
    held = await hold(runtime, clock, legal.id)
    assert held.held_at == clock() and held.held_by == OFFICER and held.hold_reason == POLICE
    _, clocks = await reread(runtime, legal.id)
    assert [c.status for c in clocks] == [ClockStatus.HELD] * 4

    clock.advance(days=10)
    released = await release(runtime, clock, legal.id)
    assert released.due_at == confirmed + timedelta(days=55)

    stored, clocks = await reread(runtime, legal.id)
    assert stored.due_at == confirmed + timedelta(days=55)
    assert stored.held_seconds == timedelta(days=10).total_seconds()
    assert (stored.held_at, stored.hold_reason, stored.held_by) == (None, None, None)
    assert stored.status == ObligationStatus.OPEN
    assert [c.status for c in clocks] == [ClockStatus.PENDING] * 4
    assert [c.due_at for c in clocks] == [c.due_at + timedelta(days=10) for c in before]
    assert clocks[-1].due_at == stored.due_at  # the deadline clock

    [announced] = await events_about(runtime, legal.id, ObligationReleased)
    assert announced.data["held_seconds"] == timedelta(days=10).total_seconds()
    assert datetime.fromisoformat(announced.data["due_at"]) == stored.due_at
    assert announced.data["by"] == OFFICER

    # A second hold adds to the time held so far.
    await hold(runtime, clock, legal.id)
    clock.advance(hours=6)
    await release(runtime, clock, legal.id)
    stored, _ = await reread(runtime, legal.id)
    assert stored.held_seconds == timedelta(days=10, hours=6).total_seconds()
    assert stored.due_at == confirmed + timedelta(days=55, hours=6)


async def test_while_held_the_old_deadline_passes_without_reminder_or_breach(
    client, runtime, clock
):
    legal, confirmed = await statutory_clock(client, runtime, clock)
    clock.advance(hours=2)
    await hold(runtime, clock, legal.id)
    reminders_before = await reminder_notices(runtime, legal.id)

    clock.set(confirmed + timedelta(days=46))  # a day past the deadline the hold stopped
    await fire(runtime, clock)  # other obligations of the report fire; the held one must not
    stored, clocks = await reread(runtime, legal.id)
    assert stored.status == ObligationStatus.OPEN and stored.breached_at is None
    assert [c.status for c in clocks] == [ClockStatus.HELD] * 4
    assert await events_about(runtime, legal.id, ReminderDue, ObligationBreached) == []
    assert await reminder_notices(runtime, legal.id) == reminders_before == 0

    # Released, its clocks run again from where they stopped: held 46 days less 2 hours.
    released = await release(runtime, clock, legal.id)
    assert released.due_at == confirmed + timedelta(days=91, hours=-2)
    await fire(runtime, clock)  # nothing of it is due yet: its clocks moved on too
    assert await events_about(runtime, legal.id, ReminderDue, ObligationBreached) == []
    clock.set(released.due_at - timedelta(days=2) + timedelta(minutes=1))
    await fire(runtime, clock)
    fired = await events_about(runtime, legal.id, ReminderDue, ObligationBreached)
    assert [e.type for e in fired] == [ReminderDue.type_name()] * 3  # 14, 7 and 2 days before
    clock.set(released.due_at + timedelta(minutes=1))
    await fire(runtime, clock)
    stored, _ = await reread(runtime, legal.id)
    assert stored.status == ObligationStatus.BREACHED


async def reminder_notices(runtime, obligation_id: str) -> int:  # type: ignore[no-untyped-def]
    return sum(
        n.obligation_id == obligation_id and n.purpose == NoticePurpose.REMINDER
        for n in await everything(runtime, Notice)
    )


async def test_a_hold_is_refused_when_it_cannot_be_done(client, runtime, clock):
    legal, _ = await statutory_clock(client, runtime, clock)

    with pytest.raises(Conflict, match="not on hold"):
        await release(runtime, clock, legal.id)
    for blank in ("", "   \n"):
        with pytest.raises(InvalidInput) as refused:
            await hold(runtime, clock, legal.id, reason=blank)
        assert set(refused.value.errors) == {"reason"}
    with pytest.raises(InvalidInput, match="500 characters"):
        await hold(runtime, clock, legal.id, reason="x" * 501)
    with pytest.raises(NotFound):
        await hold(runtime, clock, "no-such-obligation")
    with pytest.raises(NotFound):
        await release(runtime, clock, "no-such-obligation")
    stored, _ = await reread(runtime, legal.id)
    assert stored.held_at is None  # nothing refused left a trace

    await hold(runtime, clock, legal.id, reason="x" * 500)
    with pytest.raises(Conflict, match="already on hold"):
        await hold(runtime, clock, legal.id)
    stored, _ = await reread(runtime, legal.id)
    assert stored.hold_reason == "x" * 500  # the first hold stands


async def test_acknowledging_a_held_obligation_ends_the_hold_and_stops_its_clocks(
    client, runtime, clock
):
    legal, confirmed = await statutory_clock(client, runtime, clock)
    await hold(runtime, clock, legal.id)
    clock.advance(days=4)
    async with runtime.uows() as uow:
        await obligations.acknowledge(legal.id, by=OFFICER, uow=uow, now=clock())
    stored, clocks = await reread(runtime, legal.id)
    assert stored.status == ObligationStatus.ACKNOWLEDGED
    assert [c.status for c in clocks] == [ClockStatus.CANCELLED] * 4
    assert stored.held_at is None and stored.held_seconds == timedelta(days=4).total_seconds()
    assert stored.due_at == confirmed + timedelta(days=49)

    with pytest.raises(Conflict, match="acknowledged"):
        await hold(runtime, clock, legal.id)
    with pytest.raises(Conflict, match="not on hold"):
        await release(runtime, clock, legal.id)
    clock.set(confirmed + timedelta(days=60))
    await fire(runtime, clock)
    assert await events_about(runtime, legal.id, ReminderDue, ObligationBreached) == []


async def test_hold_and_release_are_on_the_record_with_who_did_them(
    client, runtime, clock, settings
):
    legal, _ = await statutory_clock(client, runtime, clock)
    await hold(runtime, clock, legal.id)
    clock.advance(days=10)
    await release(runtime, clock, legal.id)
    await settled(runtime)

    async with runtime.uows() as uow:
        entries = list(
            await uow.session.exec(
                select(AuditEntry)
                .where(col(AuditEntry.action).in_(["obligation.held", "obligation.released"]))
                .order_by(col(AuditEntry.seq))
            )
        )
    assert [(e.action, e.actor, e.subject) for e in entries] == [
        ("obligation.held", OFFICER, legal.report_id),
        ("obligation.released", OFFICER, legal.report_id),
    ]
    held, released = entries
    assert held.data["reason"] == POLICE and held.data["obligation_id"] == legal.id
    assert released.data["held_seconds"] == timedelta(days=10).total_seconds()
    assert held.event_id and released.event_id  # each announced an event too

    verified = cli(settings, "audit", "verify")
    assert verified.returncode == 0, verified.stderr
