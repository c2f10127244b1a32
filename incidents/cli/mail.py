"""`incidents mail quarantine`: the messages that came in and were not filed, kept whole with
why, for a person to look at and release."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import typer

from incidents.cli.common import fail, with_runtime
from incidents.cli.people import ADMIN
from incidents.intake import service as mail
from incidents.intake.model import InboundMail
from incidents.kernel.errors import DomainError

if TYPE_CHECKING:
    from infra.bootstrap import Runtime

mail_app = typer.Typer(help="Mail that comes in: reports by email.", no_args_is_help=True)
quarantine_app = typer.Typer(
    help="Messages kept but not filed (unreadable or refused): list, show, release.",
    no_args_is_help=True,
)
mail_app.add_typer(quarantine_app, name="quarantine")


@quarantine_app.command("list")
def quarantine_list() -> None:
    """One line per quarantined message: its id, when, from whom, the subject, and why."""

    async def work(rt: Runtime) -> list[InboundMail]:
        async with rt.uows() as uow:
            return await mail.quarantined(uow=uow)

    kept = asyncio.run(with_runtime(work))
    if not kept:
        typer.echo("No message is in quarantine.")
    for m in kept:
        typer.echo(
            f"{m.id[:12]}  {m.received_at:%Y-%m-%d %H:%M}  {m.sender or '(no sender)'}  "
            f"{m.subject or '(no subject)'}  -- {m.reason}"
        )


@quarantine_app.command("show")
def quarantine_show(
    mail_id: str = typer.Argument(help="the id, or its first characters, from `list`"),
) -> None:
    """Print the message as it came in, after why it was quarantined."""

    async def work(rt: Runtime) -> InboundMail:
        async with rt.uows() as uow:
            return await mail.by_id(mail_id, uow=uow)

    try:
        kept = asyncio.run(with_runtime(work))
    except DomainError as exc:
        fail(str(exc))
    typer.echo(f"Id: {kept.id}\nOutcome: {kept.outcome.value}\nWhy: {kept.reason}\n")
    typer.echo(kept.raw.decode("utf-8", errors="replace"))


@quarantine_app.command("release")
def quarantine_release(
    mail_id: str = typer.Argument(help="the id, or its first characters, from `list`"),
) -> None:
    """File a quarantined message as a report, whatever refused it."""

    async def work(rt: Runtime) -> InboundMail:
        rules = await rt.mail_rules()
        async with rt.uows() as uow:
            return await mail.release(
                mail_id, ADMIN, uow=uow, policy=rt.policy, rules=rules, now=rt.now()
            )

    try:
        kept = asyncio.run(with_runtime(work))
    except DomainError as exc:
        fail(str(exc))
    typer.echo(f"released {kept.id[:12]}: filed as a report")
