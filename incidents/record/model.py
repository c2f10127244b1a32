"""An audit entry: who did what to which subject, when, with what data; chained by SHA-256.

`seq` numbers the entries 1, 2, 3, … without gaps; `prev_hash` is the hash of the entry before
(64 zeros before the first); `hash` is SHA-256 of `prev_hash` followed by the entry's canonical
JSON (`incidents.record.service.canonical`). Editing, deleting or inserting any row by hand breaks
the chain at that row, and `incidents audit verify` names it.

The columns use plain SQLAlchemy types, not the kernel's: this package is below the kernel.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import configure_mappers
from sqlmodel import Field, SQLModel

ACTION_LENGTH, SUBJECT_LENGTH, ACTOR_LENGTH = 120, 200, 320


class AuditEntry(SQLModel, table=True):
    __tablename__ = "audit_entries"

    # Assigned by the writer under a lock (never by the database: a sequence leaves gaps).
    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    # UTC; SQLite keeps no offset, so a time read back without one is UTC.
    at: datetime = Field(sa_type=sa.DateTime(timezone=True), index=True)
    action: str = Field(max_length=ACTION_LENGTH)  # e.g. obligation.acknowledged, token.created
    # What changed: a report's id, an account's id, … (indexed: a report's page shows its own)
    subject: str = Field(max_length=SUBJECT_LENGTH, index=True)
    actor: str = Field(max_length=ACTOR_LENGTH)  # who: an email address, "system", "reporter"
    data: dict[str, Any] = Field(sa_type=sa.JSON)
    event_id: str | None = Field(default=None, max_length=36)  # the event, if it announced one
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


configure_mappers()
