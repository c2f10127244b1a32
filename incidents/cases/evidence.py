"""Evidence on a security case: files kept with the case, each with its SHA-256, who added it
and when.

A file is refused when it is empty, larger than `MAX_BYTES`, of a type not in `TYPES`, or when
its contents do not match the type it is declared as (PDF, PNG, JPEG and ZIP are checked by their
first bytes; text must not be binary), so a renamed executable is not kept. Names that run as
programs when opened (`.exe`, `.bat`, …) are refused too: such a file goes in a ZIP. Adding one
puts an entry on the record (its name, size and hash, never its contents). Reading one back
computes its hash again: a file changed since it was added raises `EvidenceCorrupted`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import QueryableAttribute, configure_mappers, defer
from sqlmodel import Field, SQLModel, col, select

from incidents.cases.model import Case, Phase
from incidents.kernel.columns import time_field
from incidents.kernel.errors import Conflict, DomainError, InvalidInput, NotFound
from incidents.kernel.files import FILENAME_LENGTH as FILENAME_LENGTH
from incidents.kernel.files import MAX_BYTES as MAX_BYTES
from incidents.kernel.files import TYPES as TYPES
from incidents.kernel.files import clean_filename as clean_filename
from incidents.kernel.files import normal_type as normal_type
from incidents.kernel.files import problems
from incidents.kernel.files import sha256_of as sha256_of
from incidents.kernel.files import type_for_name as type_for_name
from incidents.kernel.ids import new_id
from incidents.kernel.unit_of_work import UnitOfWork

TYPE_LENGTH = 100
NOTE_LENGTH = 500


class EvidenceCorrupted(DomainError):
    """A stored file no longer matches the SHA-256 taken when it was added."""


class CaseEvidence(SQLModel, table=True):
    __tablename__ = "case_evidence"

    id: str = Field(primary_key=True, max_length=36)
    case_id: str = Field(foreign_key="security_cases.id", index=True, max_length=36)
    filename: str = Field(max_length=FILENAME_LENGTH)  # no path, no control characters
    content_type: str = Field(max_length=TYPE_LENGTH)  # one of TYPES
    size: int
    sha256: str = Field(max_length=64)  # hex
    data: bytes = Field(sa_type=sa.LargeBinary)
    note: str | None = Field(default=None, max_length=NOTE_LENGTH)
    added_by: str = Field(max_length=320)
    added_at: datetime = time_field()


@dataclass(frozen=True)
class EvidenceSummary:
    """What is known of a file without its contents."""

    id: str
    case_id: str
    filename: str
    content_type: str
    size: int
    sha256: str
    note: str | None
    added_by: str
    added_at: datetime


def summary_of(e: CaseEvidence) -> EvidenceSummary:
    return EvidenceSummary(
        id=e.id,
        case_id=e.case_id,
        filename=e.filename,
        content_type=e.content_type,
        size=e.size,
        sha256=e.sha256,
        note=e.note,
        added_by=e.added_by,
        added_at=e.added_at,
    )


def _check(filename: str, content_type: str, data: bytes, note: str | None) -> dict[str, str]:
    """What is wrong with a file, one message per field ({} when nothing is)."""
    errors = problems(filename, content_type, data)
    if note is not None and len(note) > NOTE_LENGTH:
        errors["note"] = f"Keep the note under {NOTE_LENGTH} characters."
    return errors


async def add(
    case: Case,
    filename: str,
    content_type: str,
    data: bytes,
    note: str | None,
    *,
    by: str,
    uow: UnitOfWork,
    now: datetime,
) -> CaseEvidence:
    """Keep a file as evidence on the case, with its SHA-256; on the record, who added which
    file (name, size and hash). InvalidInput naming the field at fault; Conflict when the case
    is closed."""
    if case.phase is Phase.CLOSED:
        raise Conflict(f"{case.reference} is closed; no more evidence can be added to it.")
    name = clean_filename(filename)
    kind = normal_type(content_type)
    said = (note or "").strip() or None
    errors = _check(name, kind, data, said)
    if errors:
        raise InvalidInput(errors)
    evidence = CaseEvidence(
        id=new_id(),
        case_id=case.id,
        filename=name,
        content_type=kind,
        size=len(data),
        sha256=sha256_of(data),
        data=data,
        note=said,
        added_by=by,
        added_at=now,
    )
    uow.session.add(evidence)
    uow.record(
        "security_case.evidence_added",
        subject=case.id,
        actor=by,
        at=now,
        data={
            "evidence_id": evidence.id,
            "filename": evidence.filename,
            "size": evidence.size,
            "sha256": evidence.sha256,
        },
    )
    return evidence


async def listed(case: Case, *, uow: UnitOfWork) -> list[EvidenceSummary]:
    """The case's evidence, oldest first, without the files' contents."""
    rows = await uow.session.exec(
        select(CaseEvidence)
        .where(CaseEvidence.case_id == case.id)
        # The contents stay in the database; reading them here raises rather than loads.
        .options(defer(cast("QueryableAttribute[Any]", CaseEvidence.data), raiseload=True))
        .order_by(col(CaseEvidence.added_at), col(CaseEvidence.filename), col(CaseEvidence.id))
    )
    return [summary_of(e) for e in rows]


async def fetch(case: Case, evidence_id: str, *, uow: UnitOfWork) -> CaseEvidence:
    """One file of the case, its hash computed again: EvidenceCorrupted if it changed since it
    was added; NotFound if the case has no such file."""
    found = (
        await uow.session.exec(
            select(CaseEvidence).where(
                CaseEvidence.id == evidence_id, CaseEvidence.case_id == case.id
            )
        )
    ).one_or_none()
    if found is None:
        raise NotFound(f"{case.reference} has no evidence with that id.")
    actual = sha256_of(found.data)
    if actual != found.sha256:
        raise EvidenceCorrupted(
            f"The evidence file “{found.filename}” has changed since it was added: its SHA-256 "
            f"was {found.sha256} when added and is {actual} now. Do not rely on this copy; "
            "tell the security team."
        )
    return found


configure_mappers()
