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

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import QueryableAttribute, configure_mappers, defer
from sqlmodel import Field, SQLModel, col, select

from incidents.cases.model import Case, Phase
from incidents.kernel.columns import time_field
from incidents.kernel.errors import Conflict, DomainError, InvalidInput, NotFound
from incidents.kernel.ids import new_id
from incidents.kernel.unit_of_work import UnitOfWork

MAX_BYTES = 10 * 1024 * 1024  # 10 MiB
FILENAME_LENGTH = 255
TYPE_LENGTH = 100
NOTE_LENGTH = 500

# The types kept, in words for messages and forms. Logs are plain text.
TYPES: dict[str, str] = {
    "application/pdf": "PDF",
    "image/png": "PNG image",
    "image/jpeg": "JPEG image",
    "text/plain": "plain text (logs too)",
    "text/csv": "CSV",
    "application/json": "JSON",
    "message/rfc822": "email message (.eml)",
    "application/zip": "ZIP",
}
# Other names browsers and systems give the same types.
_ALIASES = {
    "application/x-zip-compressed": "application/zip",
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
}
# How a file of a binary type starts.
_MAGIC: dict[str, tuple[bytes, ...]] = {
    "application/pdf": (b"%PDF-",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "application/zip": (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08"),
}
_TEXT_BOMS = (b"\xff\xfe", b"\xfe\xff")  # UTF-16 text has NUL bytes of its own
_SNIFF = 8192  # how much of a text file is looked at for binary content
# Names Windows (or a desktop) runs as a program when the file is opened.
_RUNS = frozenset(
    {
        *("exe", "dll", "com", "scr", "pif", "cpl", "msi", "msp", "msc", "lnk", "jar", "app"),
        *("bat", "cmd", "ps1", "psm1", "vbs", "vbe", "js", "jse", "wsf", "wsh", "hta", "reg"),
        *("scf", "sh"),
    }
)
_HIDDEN = {"Cc", "Cf", "Cs", "Zl", "Zp"}  # control and format characters (bidi overrides)


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


def clean_filename(name: str) -> str:
    """The file's own name: no folders, no control or format characters, no leading or
    trailing dots and spaces, at most 255 characters (the extension kept). May be empty."""
    name = unicodedata.normalize("NFC", name)
    name = re.split(r"[\\/]", name)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch) not in _HIDDEN)
    name = name.strip(" .\t")
    if len(name) > FILENAME_LENGTH:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) <= 16:
            name = stem[: FILENAME_LENGTH - len(ext) - 1].rstrip(" .") + "." + ext
        else:
            name = name[:FILENAME_LENGTH].rstrip(" .")
    return name


def normal_type(content_type: str) -> str:
    """'Application/PDF; charset=binary' -> 'application/pdf'."""
    bare = content_type.split(";", 1)[0].strip().lower()
    return _ALIASES.get(bare, bare)


def type_for_name(filename: str) -> str | None:
    """The type a file's extension says, for a browser that sent none of ours."""
    ext = filename.rpartition(".")[2].lower() if "." in filename else ""
    return {
        "pdf": "application/pdf",
        "png": "image/png",
        "jpg": "image/jpeg",
        "jpeg": "image/jpeg",
        "txt": "text/plain",
        "log": "text/plain",
        "csv": "text/csv",
        "json": "application/json",
        "eml": "message/rfc822",
        "zip": "application/zip",
    }.get(ext)


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _size(n: int) -> str:
    return f"{n / (1024 * 1024):.0f} MiB" if n >= 1024 * 1024 else f"{n:,} bytes"


def _check(filename: str, content_type: str, data: bytes, note: str | None) -> dict[str, str]:
    """What is wrong with a file, one message per field ({} when nothing is)."""
    errors: dict[str, str] = {}
    if not filename:
        errors["filename"] = "Give the file's name, e.g. firewall-log.txt."
    else:
        ext = filename.rpartition(".")[2].lower() if "." in filename else ""
        if ext in _RUNS:
            errors["filename"] = (
                f"Files ending .{ext} run as programs when opened, so they are not kept as "
                "evidence. Put the file in a ZIP and add the ZIP."
            )
    known = ", ".join(f"{words} ({t})" for t, words in TYPES.items())
    if content_type not in TYPES:
        errors["content_type"] = (
            f"Files of type {content_type or '(none given)'} are not kept. Use one of: {known}."
        )
    if not data:
        errors["file"] = "The file is empty. Choose the file again."
    elif len(data) > MAX_BYTES:
        errors["file"] = f"The file is larger than {_size(MAX_BYTES)}. Split it, or compress it."
    elif content_type in _MAGIC and not data.startswith(_MAGIC[content_type]):
        errors["file"] = (
            f"The file is not a {TYPES[content_type]}: its contents do not start as one does. "
            "Give its real type, or put it in a ZIP."
        )
    elif content_type in TYPES and content_type not in _MAGIC:
        head = data[:_SNIFF]
        if b"\x00" in head and not head.startswith(_TEXT_BOMS):
            errors["file"] = (
                f"The file is not {TYPES[content_type]}: it holds binary data. Give its real "
                "type, or put it in a ZIP."
            )
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
