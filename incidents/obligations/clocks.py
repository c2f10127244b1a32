"""Firing the clocks that fell due: reminders, and breaches at deadlines.

Clocks are rows (`ClockRow`), swept by the clock keeper (`infra.clocks`), which the composition
root hands this function to. A restart loses none: the first sweep fires, marked late, every
clock that fell due meanwhile.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import col, select

from incidents.kernel.ids import stable_id
from incidents.kernel.unit_of_work import UnitOfWork
from incidents.obligations.events import ObligationBreached, ReminderDue
from incidents.obligations.model import (
    ClockKind,
    ClockRow,
    ClockStatus,
    Obligation,
    ObligationStatus,
    subject_of,
)

# A clock that fires this long after its time (the service was down) is marked late.
LATE_AFTER = timedelta(seconds=60)


async def fire_due_clocks(*, uow: UnitOfWork, now: datetime, limit: int = 500) -> int:
    """Fire every clock due by `now` (up to `limit`); returns how many fired.

    Each firing's event id derives from the clock's id, so a firing repeated after a crash is
    recognised downstream. On PostgreSQL, SKIP LOCKED lets several instances sweep at once
    without firing a clock twice.
    """
    due = await uow.session.exec(
        select(ClockRow)
        .where(ClockRow.status == ClockStatus.PENDING, col(ClockRow.due_at) <= now)
        .order_by(col(ClockRow.due_at))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    fired = 0
    for clock in due:
        clock.status, clock.fired_at = ClockStatus.FIRED, now
        uow.session.add(clock)
        obligation = await uow.session.get(Obligation, clock.obligation_id)
        if obligation is None or obligation.status != ObligationStatus.OPEN:
            continue
        late = now - clock.due_at > LATE_AFTER
        event_id = stable_id("clock", clock.id)
        if clock.kind == ClockKind.REMINDER:
            uow.emit(
                ReminderDue(
                    obligation_id=obligation.id, clock_id=clock.id, due_at=clock.due_at, late=late
                ),
                subject=subject_of(obligation),
                time=now,
                id=event_id,
            )
        else:
            obligation.status, obligation.breached_at = ObligationStatus.BREACHED, now
            uow.session.add(obligation)
            uow.emit(
                ObligationBreached(obligation_id=obligation.id, due_at=clock.due_at, late=late),
                subject=subject_of(obligation),
                time=now,
                id=event_id,
            )
        fired += 1
    return fired
