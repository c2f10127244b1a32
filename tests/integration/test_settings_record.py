"""A setting changed between restarts goes on the record, with its old and new value, and a
secret only as set or unset."""

from __future__ import annotations

from sqlmodel import select

from incidents.record.model import AuditEntry
from infra.bootstrap import build
from tests.support import cli


async def entries(runtime) -> list[AuditEntry]:  # type: ignore[no-untyped-def]
    async with runtime.uows() as uow:
        query = select(AuditEntry).where(AuditEntry.action == "settings.changed")
        return list(await uow.session.exec(query))


async def test_a_changed_setting_is_recorded_once_with_who_started_the_service(
    settings, clock
) -> None:  # type: ignore[no-untyped-def]
    settings = settings.model_copy(
        update={"smtp_url": type(settings.smtp_url)("smtp://mailer:hunter22@127.0.0.1:2525")}
    )
    first = await build(settings, now=clock)
    try:
        await first.record_settings(by="started by ops on web-1")
        await first.record_settings(by="started by ops on web-2")  # the same: nothing new
        [entry] = await entries(first)
    finally:
        await first.close()
    assert entry.actor == "started by ops on web-1"
    assert entry.data["settings"]["session_idle_minutes"] == "30.0"
    assert "hunter22" not in str(entry.data) and "a-test-secret" not in str(entry.data)
    assert entry.data["settings"]["secret_key"] == "set"

    changed = settings.model_copy(update={"session_idle_minutes": 15.0})
    second = await build(changed, now=clock)
    try:
        await second.record_settings(by="started by ops on web-1")
        latest = (await entries(second))[-1]
    finally:
        await second.close()
    assert latest.data["changed"] == {"session_idle_minutes": {"from": "30.0", "to": "15.0"}}
    assert cli(settings, "audit", "verify").returncode == 0
