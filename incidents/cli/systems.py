"""`incidents systems`: the inventory of AI systems, imported from a spreadsheet and listed.

An imported system is approved by the administrator who imports it: it is in the inventory the
public `/systems` page shows. A system first met in a report is not, until it is imported (or
otherwise approved).
"""

from __future__ import annotations

import asyncio
import csv
import io
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from incidents.cli.common import fail, with_runtime
from incidents.cli.people import ADMIN
from incidents.kernel.errors import DomainError
from incidents.systems import service as systems

if TYPE_CHECKING:
    from infra.bootstrap import Runtime

systems_app = typer.Typer(
    help="The inventory of AI systems: import it from a CSV file, list it.",
    no_args_is_help=True,
)

COLUMNS = ("name", "department", "vendor", "purpose", "public_facing", "pilot")
_TRUE = {"true", "yes", "1"}
_FALSE = {"false", "no", "0"}
# The longest value each text column keeps (the inventory's columns).
_LENGTHS = {"name": 200, "department": 200, "vendor": 200, "purpose": 2000}


@dataclass(frozen=True)
class Row:
    number: int  # as a spreadsheet numbers it: the header is row 1
    name: str
    department: str
    vendor: str
    purpose: str
    public_facing: bool
    pilot: bool


def _flag(value: str, column: str) -> tuple[bool | None, str]:
    text = value.strip().lower()
    if text in _TRUE:
        return True, ""
    if text in _FALSE:
        return False, ""
    shown = f"{value.strip()!r}" if value.strip() else "nothing"
    return None, f"{column} is {shown}; give true or false (yes/no, 1/0 also do)"


def checked(path: Path) -> tuple[list[Row], list[str]]:
    """Every row of the file, and what to fix in each bad one ("row N: ..."); a file that
    cannot be read at all stops the command."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM, as spreadsheets write, is dropped
    except FileNotFoundError:
        fail(f"{path}: no such file")
    except UnicodeDecodeError:
        fail(f"{path}: not UTF-8 text; save the spreadsheet as CSV UTF-8")
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip().lower() for h in reader.fieldnames or []]
    missing = [c for c in COLUMNS if c not in header]
    unknown = [h for h in header if h not in COLUMNS]
    if missing or unknown:
        faults = []
        if missing:
            faults.append(f"missing column(s) {', '.join(missing)}")
        if unknown:
            faults.append(f"unknown column(s) {', '.join(unknown)}")
        fail(
            f"{path}: the first row must name the columns {','.join(COLUMNS)} ({'; '.join(faults)})"
        )
    reader.fieldnames = header
    rows: list[Row] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    try:
        records = list(reader)
    except csv.Error as exc:
        fail(f"{path}: not a CSV file the import can read ({exc})")
    for number, record in enumerate(records, start=2):
        if None in record or any(record.get(c) is None for c in COLUMNS):
            problems.append(f"row {number}: give exactly {len(COLUMNS)} values, one per column")
            continue
        values = {c: str(record[c]).strip() for c in COLUMNS}
        if not any(values.values()):
            continue  # a blank line at the end of a spreadsheet
        wrong: list[str] = []
        if not values["name"]:
            wrong.append("the name is empty; give the system's name")
        else:
            key = values["name"].lower()
            if key in seen:
                wrong.append(f"{values['name']!r} is also on row {seen[key]}; list it once")
            seen.setdefault(key, number)
        for column, limit in _LENGTHS.items():
            if len(values[column]) > limit:
                wrong.append(f"{column} is longer than {limit} characters; shorten it")
        public_facing, why_public = _flag(values["public_facing"], "public_facing")
        pilot, why_pilot = _flag(values["pilot"], "pilot")
        wrong += [w for w in (why_public, why_pilot) if w]
        if wrong:
            problems.append(f"row {number}: {'; '.join(wrong)}")
            continue
        assert public_facing is not None and pilot is not None
        rows.append(
            Row(
                number=number,
                name=values["name"],
                department=values["department"],
                vendor=values["vendor"],
                purpose=values["purpose"],
                public_facing=public_facing,
                pilot=pilot,
            )
        )
    return rows, problems


@systems_app.command("import")
def systems_import(
    file: Path = typer.Argument(
        ...,
        help="a CSV file with the columns name,department,vendor,purpose,public_facing,pilot "
        "(public_facing and pilot: true/false, yes/no or 1/0)",
    ),
) -> None:
    """Add the systems of a CSV file to the inventory, approved by you (or update those of the
    same name). Every row is checked first: if any is wrong, each is named (rows numbered as a
    spreadsheet shows them, the header being row 1) and nothing is imported."""
    rows, problems = checked(file)
    if problems:
        for problem in problems:
            typer.secho(problem, fg=typer.colors.RED, err=True)
        fail(
            f"{file}: nothing imported; fix the {len(problems)} row(s) above and run the "
            "import again"
        )
    if not rows:
        fail(f"{file}: no systems in it; list one per row under the header")

    async def work(rt: Runtime) -> int:
        added = 0
        async with rt.uows() as uow:  # all the rows, or none of them
            now = rt.now()
            with typer.progressbar(
                rows,
                label="importing",
                file=sys.stderr,
                show_pos=True,
                hidden=not sys.stderr.isatty(),
            ) as progress:
                for row in progress:
                    if await systems.by_name(row.name, uow=uow) is None:
                        added += 1
                    found = await systems.register(
                        row.name,
                        uow=uow,
                        now=now,
                        department=row.department,
                        vendor=row.vendor,
                        purpose=row.purpose,
                        public_facing=row.public_facing,
                        pilot=row.pilot,
                        approved_by=ADMIN,
                    )
                    if found.next_review_at is None:  # where a pack asks for periodic audits
                        await systems.schedule_audit(found, uow=uow, policy=rt.policy, now=now)
        return added

    try:
        added = asyncio.run(with_runtime(work))
    except DomainError as exc:
        fail(f"{file}: nothing imported: {exc}")
    typer.echo(f"imported {len(rows)} systems ({added} new, {len(rows) - added} updated)")


_STATUS = {
    "active": "active",
    "unregistered": "unregistered (met in a report, not approved)",
    "under_review": "under review",
    "halted": "halted",
    "excepted": "in use by exception",
    "phasing_out": "phasing out",
    "retired": "retired",
}


@systems_app.command("list")
def systems_list() -> None:
    """Every system: its name, status and department (unregistered ones too: met in a report,
    not approved, and not on the public inventory)."""

    async def work(rt: Runtime) -> list[tuple[str, str, str]]:
        async with rt.uows() as uow:
            return [
                (s.name, _STATUS.get(s.status.value, s.status.value), s.department or "-")
                for s in await systems.inventory(uow=uow)
            ]

    found = asyncio.run(with_runtime(work))
    if not found:
        typer.echo("no AI systems")
        return
    width = max(len(name) for name, _, _ in found)
    status_width = max(len(status) for _, status, _ in found)
    for name, status, department in found:
        typer.echo(f"{name:<{width}}  {status:<{status_width}}  {department}".rstrip())
