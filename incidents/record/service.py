"""Append to the record, check that it holds, and read a window of it out.

How an entry's hash is made, so that anyone holding an export with personal data can check it:

    hash = sha256(prev_hash + canonical).hexdigest()

where `prev_hash` is the previous entry's hash as 64 lowercase hex characters ("0" * 64 before
the first entry), and `canonical` is the UTF-8 JSON of the object with the keys `action`,
`actor`, `at`, `data`, `event_id`, `seq`, `subject`, sorted, with no spaces (`","` and `":"`),
non-ASCII characters as they are; `at` is the time in UTC as `YYYY-MM-DDTHH:MM:SS.ffffffZ`.

Entries are appended in the same transaction as the change they record (the unit of work calls
`append` just before it commits). Two transactions must never chain onto the same entry: on
PostgreSQL `append` holds an advisory lock from reading the last entry until the commit; SQLite
has one writer at a time, and `append` takes the write lock before it reads.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from incidents.record.model import AuditEntry

GENESIS = "0" * 64  # the prev_hash of the first entry
# pg_advisory_xact_lock key (7321001: embedded log, 7321002: outbox relay, 7321003: migrate).
CHAIN_LOCK = 7321004


@dataclass(frozen=True)
class Draft:
    """An entry before it has its place in the chain."""

    at: datetime
    action: str
    subject: str
    actor: str
    data: Mapping[str, Any]  # JSON-ready: strings, numbers, booleans, None, lists, objects
    event_id: str | None = None


def utc_text(at: datetime) -> str:
    """A stored time as hashed: UTC, microseconds, `Z`. A time without offset is UTC (SQLite)."""
    aware = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(
    *,
    seq: int,
    at: datetime,
    action: str,
    subject: str,
    actor: str,
    data: Mapping[str, Any],
    event_id: str | None,
) -> bytes:
    """The bytes an entry's hash covers (with its predecessor's hash in front)."""
    fields = {
        "seq": seq,
        "at": utc_text(at),
        "action": action,
        "subject": subject,
        "actor": actor,
        "data": data,
        "event_id": event_id,
    }
    text = json.dumps(
        fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return text.encode()


def entry_hash(prev_hash: str, **fields: Any) -> str:
    return hashlib.sha256(prev_hash.encode("ascii") + canonical(**fields)).hexdigest()


def _fields(entry: AuditEntry) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "at": entry.at,
        "action": entry.action,
        "subject": entry.subject,
        "actor": entry.actor,
        "data": entry.data,
        "event_id": entry.event_id,
    }


async def append(session: AsyncSession, drafts: Sequence[Draft], *, locked: bool = False) -> None:
    """Chain `drafts` onto the record, in order, in the session's transaction.

    Call it last before committing: it takes a lock that every writer of the record waits for,
    held until this transaction ends. `locked`: the transaction already keeps other writers out
    (on PostgreSQL it holds CHAIN_LOCK; on SQLite it has written, and holds the one write lock).
    """
    if not drafts:
        return
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql" and not locked:
        await session.exec(select(func.pg_advisory_xact_lock(CHAIN_LOCK)))
    elif dialect == "sqlite" and not locked:
        # Take the write lock before reading the last entry: a transaction that has not written
        # yet holds none, and another process could append between our read and our insert.
        # An update that matches no row takes it and changes nothing.
        await session.exec(
            update(AuditEntry).where(col(AuditEntry.seq) == -1).values(seq=AuditEntry.seq)
        )
    last = (
        await session.exec(
            select(AuditEntry.seq, AuditEntry.hash).order_by(col(AuditEntry.seq).desc()).limit(1)
        )
    ).first()
    seq, prev = (last[0], last[1]) if last is not None else (0, GENESIS)
    rows = []
    for draft in drafts:
        if draft.at.tzinfo is None:
            raise ValueError("naive datetime refused: an entry's time must carry an offset")
        seq += 1
        at = draft.at.astimezone(UTC)
        fields = {
            "seq": seq,
            "at": at,
            "action": draft.action,
            "subject": draft.subject,
            "actor": draft.actor,
            "data": dict(draft.data),
            "event_id": draft.event_id,
        }
        digest = entry_hash(prev, **fields)
        rows.append({**fields, "prev_hash": prev, "hash": digest})
        prev = digest
    await session.exec(insert(AuditEntry.__table__), params=rows)  # type: ignore[attr-defined]


async def _walk(
    session: AsyncSession,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    chunk: int = 1000,
) -> AsyncIterator[AuditEntry]:
    """Entries in chain order, a chunk at a time (any number of them, in little memory)."""
    after: int | None = None
    while True:
        query = select(AuditEntry).order_by(col(AuditEntry.seq)).limit(chunk)
        if after is not None:
            query = query.where(col(AuditEntry.seq) > after)
        if since is not None:
            query = query.where(col(AuditEntry.at) >= since.astimezone(UTC))
        if until is not None:
            query = query.where(col(AuditEntry.at) < until.astimezone(UTC))
        rows = list(await session.exec(query))
        for row in rows:
            yield row
        if len(rows) < chunk:
            return
        after = rows[-1].seq  # rows read are not kept: the session holds them weakly


def _when(entry: AuditEntry) -> str:
    return f"{utc_text(entry.at)[:19].replace('T', ' ')} UTC, {entry.action}"


@dataclass(frozen=True)
class Break:
    """The first entry at which the chain does not hold."""

    seq: int
    when: str | None  # its time and action; None when the entry is missing altogether
    reason: str
    through: int | None = None  # the last of several entries missing in a row

    def __str__(self) -> str:
        which = f"entries {self.seq} to {self.through}" if self.through else f"entry {self.seq}"
        return which + (f" ({self.when})" if self.when else "") + f" {self.reason}"


@dataclass(frozen=True)
class Verdict:
    entries: int  # how many hold: entries 1 to this one
    head_hash: str  # the last of those's hash (GENESIS if none)
    broken: Break | None  # where the chain stops holding; None if it holds to the end


async def verify(
    session: AsyncSession, *, anchors: Mapping[int, str] | None = None, chunk: int = 1000
) -> Verdict:
    """Walk the chain from the first entry, recomputing each hash; stop at the first entry that
    does not hold: altered, missing, out of place, or not chained to the one before.

    The chain alone cannot show that entries were cut off its end, or that someone rewrote all of
    it from some entry on. `anchors` ({seq: hash} noted earlier and kept elsewhere, e.g. the head
    a previous `verify` printed) catch both: each must still be there, unchanged.
    """
    anchors = {seq: digest.lower() for seq, digest in (anchors or {}).items()}
    prev, last = GENESIS, 0
    before: AuditEntry | None = None
    found: Break | None = None
    async for entry in _walk(session, chunk=chunk):
        expected = last + 1
        if entry.seq < expected:
            found = Break(entry.seq, _when(entry), "is out of place: entries count from 1")
        elif entry.seq > expected:
            several = entry.seq > expected + 1
            after = f"entry {before.seq} ({_when(before)})" if before else "the start"
            found = Break(
                expected,
                None,
                f"{'are' if several else 'is'} missing: entry {entry.seq} ({_when(entry)}) "
                f"follows {after}",
                through=entry.seq - 1 if several else None,
            )
        elif entry.prev_hash != prev:
            found = Break(
                entry.seq,
                _when(entry),
                f"is not chained to entry {last}: its prev_hash is not that entry's hash",
            )
        elif entry_hash(prev, **_fields(entry)) != entry.hash:
            found = Break(
                entry.seq,
                _when(entry),
                "does not match its hash: it was changed, or written outside the service",
            )
        if found is not None:
            return Verdict(last, prev, found)
        if entry.seq in anchors and anchors[entry.seq] != entry.hash:
            found = Break(
                entry.seq,
                _when(entry),
                "is not the entry noted as the anchor: the record was rewritten from there or "
                "before",
            )
            return Verdict(last, prev, found)
        prev, last, before = entry.hash, entry.seq, entry
    beyond = [seq for seq in anchors if seq > last]
    if beyond:
        found = Break(
            min(beyond),
            None,
            f"is gone: the record now ends at entry {last}; entries were cut off its end",
        )
    return Verdict(last, prev, found)


async def count(session: AsyncSession, *, since: datetime, until: datetime) -> int:
    """How many entries fall in [since, until)."""
    return (
        await session.exec(
            select(func.count())
            .select_from(AuditEntry)
            .where(
                col(AuditEntry.at) >= since.astimezone(UTC),
                col(AuditEntry.at) < until.astimezone(UTC),
            )
        )
    ).one()


REDACTED = "[redacted]"
_EMAIL = re.compile(r"[^\s@<>()\[\]{},;:\"']+@[^\s@<>()\[\]{},;:\"']+")
_WORD = re.compile(r"\w[\w'’-]*")


class Redactor:
    """Takes given personal data (names and email addresses) out of entries, wherever it
    appears in a string: as the whole string, or inside one ("confirmed by Ana Ruiz")."""

    def __init__(self, personal: Iterable[str]) -> None:
        self._emails: set[str] = set()
        self._names: set[tuple[str, ...]] = set()
        for item in personal:
            text = item.strip().lower()
            if "@" in text:
                self._emails.add(text)
            elif words := tuple(_WORD.findall(text)):
                self._names.add(words)
        self._longest = max((len(n) for n in self._names), default=0)

    def _email(self, match: re.Match[str]) -> str:
        found = match.group(0)
        address = found.rstrip(".")  # the end of a sentence is not part of the address
        if address.lower() in self._emails:
            return REDACTED + found[len(address) :]
        return found

    def text(self, value: str) -> str:
        out = _EMAIL.sub(self._email, value)
        if not self._names:
            return out
        words = list(_WORD.finditer(out))
        spans: list[tuple[int, int]] = []
        i = 0
        while i < len(words):
            for n in range(min(self._longest, len(words) - i), 0, -1):
                if tuple(w.group(0).lower() for w in words[i : i + n]) in self._names:
                    spans.append((words[i].start(), words[i + n - 1].end()))
                    i += n
                    break
            else:
                i += 1
        for start, end in reversed(spans):
            out = out[:start] + REDACTED + out[end:]
        return out

    def value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        return value


def exported(entry: AuditEntry, redactor: Redactor | None) -> dict[str, Any]:
    """An entry as exported: every field, times in UTC; with `redactor`, the personal data it
    knows taken out of `actor` and `data` (and `redacted` true when anything was)."""
    actor, data = entry.actor, entry.data
    if redactor is not None:
        actor, data = redactor.text(actor), redactor.value(data)
    return {
        "seq": entry.seq,
        "at": utc_text(entry.at),
        "action": entry.action,
        "subject": entry.subject,
        "actor": actor,
        "data": data,
        "event_id": entry.event_id,
        "prev_hash": entry.prev_hash,
        "hash": entry.hash,
        "redacted": (actor, data) != (entry.actor, entry.data),
    }


async def window(
    session: AsyncSession, *, since: datetime, until: datetime, chunk: int = 1000
) -> AsyncIterator[AuditEntry]:
    """The entries of [since, until), in chain order."""
    async for entry in _walk(session, since=since, until=until, chunk=chunk):
        yield entry
