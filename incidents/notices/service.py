"""What the record of notices says as a whole: what is still waiting for the mail server."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlmodel import select

from incidents.kernel.unit_of_work import UnitOfWork
from incidents.notices.model import Notice, NoticeStatus


@dataclass(frozen=True)
class Waiting:
    """Notices stored and not yet accepted, and those refused for good, for the operators."""

    count: int
    oldest: datetime | None
    refused: int


async def waiting(*, uow: UnitOfWork) -> Waiting:
    count, oldest = (
        await uow.session.exec(
            select(func.count(), func.min(Notice.created_at)).where(
                Notice.status == NoticeStatus.PENDING
            )
        )
    ).one()
    refused = (
        await uow.session.exec(select(func.count()).where(Notice.status == NoticeStatus.FAILED))
    ).one()
    return Waiting(count=count, oldest=oldest, refused=refused)
