"""The record no one can quietly edit: every change is an entry, hash-chained to the one before
and written in the same transaction as the change. `incidents audit verify` names the first
entry edited, deleted or inserted by hand; concurrent writers never fork the chain; `incidents
audit export` writes a window of it, reporters' names and addresses redacted by default."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import subprocess
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

from sqlalchemy import delete, insert, update
from sqlmodel import col, select

from incidents.kernel.eventlog import EventRow
from incidents.kernel.unit_of_work import UnitOfWorkFactory
from incidents.obligations import service as obligations
from incidents.record import service as record
from incidents.record.model import AuditEntry
from incidents.reports import service as reports
from infra.db import make_engine, make_sessions
from tests.support import ack_link, cli, harm_report, settled, with_token

TABLE = AuditEntry.__table__  # type: ignore[attr-defined]
DEADLINE = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)  # 24 hours after harm_report's discovery


async def entries(runtime) -> list[AuditEntry]:  # type: ignore[no-untyped-def]
    async with runtime.uows() as uow:
        return list(await uow.session.exec(select(AuditEntry).order_by(col(AuditEntry.seq))))


HASHED = ("seq", "at", "action", "subject", "actor", "data", "event_id")


def rehash(values: dict[str, Any]) -> str:
    """An entry's hash, computed from its values the documented way."""
    return record.entry_hash(values["prev_hash"], **{k: values[k] for k in HASHED})


def row(entry: AuditEntry) -> dict[str, Any]:
    return {c.name: getattr(entry, c.name) for c in TABLE.columns}


def utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)  # SQLite: naive


def assert_one_chain(rows: list[AuditEntry]) -> None:
    """Numbered 1, 2, 3, … without gaps, each chained to the one before, each hash right."""
    assert [r.seq for r in rows] == list(range(1, len(rows) + 1))
    prev = record.GENESIS
    for r in rows:
        assert r.prev_hash == prev, f"entry {r.seq} does not follow entry {r.seq - 1}"
        assert rehash(row(r)) == r.hash, f"entry {r.seq} does not match its hash"
        prev = r.hash


async def file_reports(client, n: int) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    # Each about its own system: three about one would open a sunset review (San José).
    bodies = [
        harm_report(title=f"Chatbot misled resident number {i}", ai_system=f"Chatbot {i}")
        for i in range(n)
    ]
    answers = await asyncio.gather(*(client.post("/api/v1/reports", json=b) for b in bodies))
    assert [a.status for a in answers] == [201] * n
    return [await a.json() for a in answers]


async def test_verify_holds_on_a_fresh_database_and_after_a_busy_run(
    client, runtime, settings, clock, smtp_server
):
    fresh = cli(settings, "audit", "verify")
    assert fresh.returncode == 0, fresh.stderr
    assert "the record holds: 0 entries" in fresh.stdout

    filed = await file_reports(client, 30)
    await smtp_server.wait_for(90, timeout=30)
    await settled(runtime)
    # One supervisor acknowledges through the link in their email, as a person does.
    notice = next(m for m in smtp_server.messages if filed[0]["reference"] in m["Subject"])
    link = ack_link(notice.message.get_body(("plain",)).get_content())
    path, _, query = link.partition("?")
    button = await with_token(client, link, {k: v[0] for k, v in parse_qs(query).items()})
    assert (await client.post(path, data=button)).status == 200
    async with runtime.uows() as uow:
        await reports.confirm_acquisition(
            filed[1]["reference"],
            confirmed_at=clock(),
            affected_count=12,
            by="cdpo@city.example",
            uow=uow,
            now=clock(),
        )
    # The deadline passes for the rest: reminders fire late, obligations breach, and the router
    # escalates each report to the CIO.
    clock.set(DEADLINE + timedelta(minutes=1))
    await runtime.clocks.sweep()
    await settled(runtime, timeout=30)

    rows = await entries(runtime)
    assert_one_chain(rows)
    actions = {r.action for r in rows}
    assert {
        "incident.reported",
        "incident.personal_information_acquired",
        "obligation.opened",
        "obligation.acknowledged",
        "obligation.reminder_due",
        "obligation.breached",
    } <= actions
    actors = {(r.action, r.actor) for r in rows}
    assert ("incident.reported", "reporter") in actors  # not the reporter's address
    assert ("obligation.acknowledged", button["r"]) in actors  # the person the link names
    assert ("incident.personal_information_acquired", "cdpo@city.example") in actors
    assert ("obligation.breached", "system") in actors
    assert sum(r.action == "incident.reported" for r in rows) == 30
    # Each entry of an event names it; both were written in one transaction.
    async with runtime.uows() as uow:
        events = set(await uow.session.exec(select(EventRow.id)))
    assert {r.event_id for r in rows if r.action != "notice.sent"} == events

    held = cli(settings, "audit", "verify")
    assert held.returncode == 0, held.stderr
    assert f"the record holds: {len(rows)} entries" in held.stdout
    head = f"{rows[-1].seq}:{rows[-1].hash}"
    assert head in held.stdout
    anchored = cli(settings, "audit", "verify", "--anchor", head)
    assert anchored.returncode == 0, anchored.stderr


def named(found: subprocess.CompletedProcess[str], entry: AuditEntry) -> None:
    """`verify` failed, naming this entry: its seq, time and action."""
    assert found.returncode == 1, (found.stdout, found.stderr)
    when = f"{utc(entry.at):%Y-%m-%d %H:%M:%S} UTC, {entry.action}"
    assert f"entry {entry.seq} ({when})" in found.stderr, found.stderr


async def holds(runtime) -> bool:  # type: ignore[no-untyped-def]
    async with runtime.uows() as uow:
        return (await record.verify(uow.session)).broken is None


async def test_verify_names_the_first_entry_edited_deleted_inserted_or_swapped(
    client, runtime, settings
):
    await file_reports(client, 3)
    await settled(runtime)
    rows = await entries(runtime)
    assert len(rows) == 21  # each report: filed, three obligations opened, three notices sent
    by_seq = {r.seq: r for r in rows}
    seq = TABLE.c.seq

    async def sql(*statements: Any) -> None:
        async with runtime.engine.begin() as conn:
            for statement in statements:
                await conn.execute(statement)

    # One entry's data changed (who was named, say).
    await sql(update(TABLE).where(seq == 5).values(data={**by_seq[5].data, "role": "nobody"}))
    named(cli(settings, "audit", "verify"), by_seq[5])
    await sql(update(TABLE).where(seq == 5).values(data=by_seq[5].data))
    assert await holds(runtime)

    # Who did it, changed, and its hash recomputed to match: the next entry no longer follows.
    forged = {**row(by_seq[6]), "actor": "someone.else@city.example"}
    forged["hash"] = rehash(forged)
    await sql(update(TABLE).where(seq == 6).values(actor=forged["actor"], hash=forged["hash"]))
    named(cli(settings, "audit", "verify"), by_seq[7])
    await sql(update(TABLE).where(seq == 6).values(actor=by_seq[6].actor, hash=by_seq[6].hash))
    assert await holds(runtime)

    # One entry deleted.
    await sql(delete(TABLE).where(seq == 7))
    gone = cli(settings, "audit", "verify")
    assert gone.returncode == 1
    assert "entry 7 is missing: entry 8 (" in gone.stderr, gone.stderr
    await sql(insert(TABLE).values(row(by_seq[7])))
    assert await holds(runtime)

    # Two hashes swapped.
    await sql(
        update(TABLE).where(seq == 3).values(hash=by_seq[9].hash),
        update(TABLE).where(seq == 9).values(hash=by_seq[3].hash),
    )
    named(cli(settings, "audit", "verify"), by_seq[3])
    await sql(
        update(TABLE).where(seq == 3).values(hash=by_seq[3].hash),
        update(TABLE).where(seq == 9).values(hash=by_seq[9].hash),
    )
    assert await holds(runtime)

    # An entry inserted at the end, chained to the last one.
    extra = {**row(by_seq[21]), "seq": 22, "prev_hash": by_seq[21].hash, "hash": "0" * 64}
    extra["event_id"] = None
    await sql(insert(TABLE).values(extra))
    named(cli(settings, "audit", "verify"), AuditEntry(**extra))
    await sql(delete(TABLE).where(seq == 22))

    # Entries cut off the end leave a chain that holds: an anchor noted earlier shows it.
    await sql(delete(TABLE).where(seq >= 11))
    assert cli(settings, "audit", "verify").returncode == 0
    cut = cli(settings, "audit", "verify", "--anchor", f"12:{by_seq[12].hash}")
    assert cut.returncode == 1
    assert "entry 12 is gone: the record now ends at entry 10" in cut.stderr, cut.stderr


async def test_concurrent_writers_never_fork_the_chain(client, runtime, database_url):
    # A second set of connections stands for another instance (another process) writing too.
    other_engine = make_engine(database_url)
    other = UnitOfWorkFactory(make_sessions(other_engine))

    async def change(uows: UnitOfWorkFactory, n: int) -> None:
        async with uows() as uow:
            uow.record(
                "test.changed",
                subject=f"thing-{n}",
                actor="admin@city.example",
                at=runtime.now(),
                data={"n": n},
            )

    try:
        await asyncio.gather(
            file_reports(client, 30),
            *(change(other, n) for n in range(40)),
            *(change(runtime.uows, n) for n in range(40, 80)),
        )
    finally:
        await other_engine.dispose()
    await settled(runtime)

    rows = await entries(runtime)
    assert_one_chain(rows)  # seq gapless, every prev_hash its predecessor's hash
    assert len({r.prev_hash for r in rows}) == len(rows)  # no two chained onto one entry
    assert sorted(r.data["n"] for r in rows if r.action == "test.changed") == list(range(80))
    assert sum(r.action == "incident.reported" for r in rows) == 30
    async with runtime.uows() as uow:
        assert (await record.verify(uow.session)).broken is None


async def test_export_writes_jsonl_and_csv_with_reporters_redacted(
    client, runtime, settings, clock, tmp_path
):
    [filed] = await file_reports(client, 1)
    await settled(runtime)
    cdpo = next(o["id"] for o in filed["obligations"] if o["role"] == "cdpo")
    async with runtime.uows() as uow:
        await obligations.acknowledge(cdpo, by="cdpo@city.example", uow=uow, now=clock())
    async with runtime.uows() as uow:  # the reporter herself confirms what was taken
        await reports.confirm_acquisition(
            filed["reference"],
            confirmed_at=clock(),
            affected_count=3,
            by="Ana Ruiz (Parks)",
            uow=uow,
            now=clock(),
        )
    async with runtime.uows() as uow:  # as the people service records a token it makes
        uow.record(
            "token.created",
            subject="token-1",
            actor="admin@city.example",
            at=clock(),
            data={"for": "Ana.Ruiz@city.example", "name": "phone"},
        )
    clock.advance(days=3)
    async with runtime.uows() as uow:  # outside the window
        uow.record("token.revoked", subject="token-1", actor="admin@city.example", at=clock())
    await settled(runtime)
    rows = [r for r in await entries(runtime) if utc(r.at) < datetime(2026, 11, 25, tzinfo=UTC)]

    window = ("--from", "2026-11-24", "--to", "2026-11-24")
    out = tmp_path / "record.jsonl"
    done = cli(settings, "audit", "export", *window, "--format", "jsonl", "--output", str(out))
    assert done.returncode == 0, done.stderr
    content = out.read_text()
    lines = [json.loads(line) for line in content.splitlines()]
    assert [x["seq"] for x in lines] == [r.seq for r in rows]  # in order, the window only
    assert "token.revoked" not in content
    assert "ana.ruiz@city.example" not in content.lower() and "Ana Ruiz" not in content
    assert "cdpo@city.example" in content  # staff acting in office are on the public record
    confirmed = next(x for x in lines if x["action"] == "incident.personal_information_acquired")
    assert confirmed["actor"] == confirmed["data"]["by"] == "[redacted] (Parks)"
    assert confirmed["redacted"] is True
    token = next(x for x in lines if x["action"] == "token.created")
    assert token["data"] == {"for": "[redacted]", "name": "phone"}

    sheet = cli(settings, "audit", "export", *window, "--format", "csv")
    assert sheet.returncode == 0, sheet.stderr
    table = list(csv.DictReader(io.StringIO(sheet.stdout)))
    assert [int(r["seq"]) for r in table] == [r.seq for r in rows]
    assert set(table[0]) == {
        "seq",
        "at",
        "action",
        "subject",
        "actor",
        "data",
        "event_id",
        "prev_hash",
        "hash",
        "redacted",
    }
    assert "ana.ruiz@city.example" not in sheet.stdout.lower() and "Ana Ruiz" not in sheet.stdout

    # For counsel: everything, and each line checks against its hash.
    full = cli(settings, "audit", "export", *window, "--include-personal-data")
    assert full.returncode == 0, full.stderr
    assert "Ana.Ruiz@city.example" in full.stdout and "Ana Ruiz (Parks)" in full.stdout
    prev = record.GENESIS
    for line in map(json.loads, full.stdout.splitlines()):
        assert line["prev_hash"] == prev
        assert rehash({**line, "at": datetime.fromisoformat(line["at"])}) == line["hash"]
        prev = line["hash"]
