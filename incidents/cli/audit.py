"""`incidents audit`: check that the record holds, and export a window of it."""

from __future__ import annotations

import asyncio
import csv
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import typer
from sqlmodel import select

from incidents.cli.common import fail, with_runtime
from incidents.record import service as record
from incidents.reports.model import Report

if TYPE_CHECKING:
    from infra.bootstrap import Runtime

audit_app = typer.Typer(
    help="The record: every change, hash-chained to the one before. Verify it, export it.",
    no_args_is_help=True,
)

BROKEN = 1  # `verify`'s exit status when the chain does not hold (2: could not check)


def _anchor(text: str) -> tuple[int, str]:
    seq, sep, digest = text.partition(":")
    if not sep or not seq.strip().isdigit() or len(digest.strip()) != 64:
        fail(f"--anchor {text!r}: give SEQ:HASH, as `incidents audit verify` prints the head")
    return int(seq), digest.strip()


@audit_app.command("verify")
def audit_verify(
    anchor: list[str] = typer.Option(
        [],
        help="SEQ:HASH of an entry noted earlier and kept elsewhere (the head a previous verify "
        "printed); fails if it is gone or changed, which the chain alone cannot show. Repeatable.",
    ),
) -> None:
    """Check the record: every entry's hash, from the first.

    Exits 0 and prints the number of entries if the chain holds; exits 1 naming the first entry
    that does not (edited, deleted or inserted by hand): its number, time and action."""
    anchors = dict(_anchor(a) for a in anchor)

    async def work(rt: Runtime) -> record.Verdict:
        async with rt.uows() as uow:
            return await record.verify(uow.session, anchors=anchors)

    verdict = asyncio.run(with_runtime(work))
    if verdict.broken is not None:
        typer.secho(
            f"incidents: the record does not hold: {verdict.broken}. The {verdict.entries} "
            "entries before it hold.",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(code=BROKEN)
    typer.echo(f"the record holds: {verdict.entries} entries, each chained to the one before")
    if verdict.entries:
        typer.echo(
            f"head: {verdict.entries}:{verdict.head_hash}  (keep it elsewhere; "
            "`--anchor` it later to show nothing was cut off or rewritten)"
        )


class Format(StrEnum):
    JSONL = "jsonl"
    CSV = "csv"


COLUMNS = [
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
]


def _moment(text: str, option: str, *, end: bool) -> datetime:
    """A day (UTC; as the end of a window, the whole day is in it) or a time with its offset."""
    try:
        if len(text.strip()) == 10:
            day = date.fromisoformat(text.strip())
            return datetime.combine(day + timedelta(days=1 if end else 0), time(), UTC)
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        fail(f"{option} {text!r}: give a day (2026-11-24) or a time (2026-11-24T09:00:00-08:00)")
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@contextmanager
def _opened(output: Path | None) -> Iterator[TextIO]:
    if output is None:
        yield sys.stdout
        return
    try:
        with output.open("w", encoding="utf-8", newline="") as file:
            yield file
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror}")


@audit_app.command("export")
def audit_export(
    since: str = typer.Option(
        ..., "--from", help="first day (UTC), e.g. 2026-11-01, or a time with its offset"
    ),
    until: str = typer.Option(
        ..., "--to", help="last day (UTC, all of it), e.g. 2026-11-30, or a time (not included)"
    ),
    fmt: Format = typer.Option(Format.JSONL, "--format", help="jsonl or csv"),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="the file to write; standard output without it"
    ),
    include_personal_data: bool = typer.Option(
        False,
        "--include-personal-data",
        help="keep reporters' names and email addresses (for counsel); without it they read "
        f"{record.REDACTED}",
    ),
) -> None:
    """Write the record's entries of a window, in order: a public-records export.

    Reporters' names and email addresses are redacted unless --include-personal-data. Each
    entry keeps its hash and prev_hash: an export with personal data can be checked against the
    chain (incidents/record/service.py says how a hash is made)."""
    start, end = _moment(since, "--from", end=False), _moment(until, "--to", end=True)
    if end <= start:
        fail("--to must be after --from")

    async def work(rt: Runtime) -> int:
        async with rt.uows() as uow:
            redactor = None
            if not include_personal_data:
                people = await uow.session.exec(
                    select(Report.reporter_name, Report.reporter_email).distinct()
                )
                redactor = record.Redactor(item for row in people for item in row)
            total = await record.count(uow.session, since=start, until=end)
            written = 0
            with (
                _opened(output) as file,
                typer.progressbar(
                    length=total,
                    label="exporting",
                    file=sys.stderr,
                    show_pos=True,
                    # on a terminal, and not over entries written to it
                    hidden=output is None or not sys.stderr.isatty(),
                    update_min_steps=max(1, total // 500),
                ) as progress,
            ):
                table = csv.DictWriter(file, COLUMNS) if fmt == Format.CSV else None
                if table is not None:
                    table.writeheader()
                async for entry in record.window(uow.session, since=start, until=end):
                    row = record.exported(entry, redactor)
                    if table is not None:
                        table.writerow({**row, "data": json.dumps(row["data"], sort_keys=True)})
                    else:
                        file.write(json.dumps(row, ensure_ascii=False) + "\n")
                    written += 1
                    progress.update(1)
            return written

    written = asyncio.run(with_runtime(work))
    if output is not None:
        personal = "with" if include_personal_data else "without"
        typer.echo(
            f"wrote {written} entries, from {start:%Y-%m-%d %H:%M} until {end:%Y-%m-%d %H:%M} "
            f"UTC, to {output}, {personal} reporters' personal data",
            err=True,
        )
