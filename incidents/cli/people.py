"""`incidents users` and `incidents tokens`: accounts, their granted roles, and API tokens."""

from __future__ import annotations

import asyncio
import getpass
from typing import TYPE_CHECKING

import typer

from incidents.cli.common import fail, with_runtime
from incidents.kernel.actor import Grant
from incidents.kernel.errors import DomainError
from incidents.people import service as people
from incidents.people import signin

if TYPE_CHECKING:
    from infra.bootstrap import Runtime

# Who acted, on the record: the administrator at this machine's command line.
ADMIN = f"command line ({getpass.getuser()})"

users_app = typer.Typer(help="Accounts and the roles granted to them.", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens for scripts and integrations.", no_args_is_help=True)


@users_app.command("add")
def users_add(
    email: str = typer.Argument(..., help="the person's email address"),
    role: Grant = typer.Option(None, help="grant a role: admin or auditor"),
) -> None:
    """Add an account (safe to run twice), optionally granting it a role. Policy roles
    (supervisor, CISO, …) come from the directory, not from here."""

    async def work(rt: Runtime) -> list[str]:
        async with rt.uows() as uow:
            added = await people.account(email, uow=uow, now=rt.now(), grant=role, by=ADMIN)
            return list(added.grants)

    try:
        grants = asyncio.run(with_runtime(work))
    except DomainError as exc:
        fail(str(exc))
    typer.echo(f"{email.strip().lower()}: {', '.join(grants) or 'no granted roles'}")


@users_app.command("invite")
def users_invite(
    email: str = typer.Argument(..., help="the person's email address"),
    role: Grant = typer.Option(None, help="grant a role: admin or auditor"),
    name: str = typer.Option("", help="their name, as pages show it"),
) -> None:
    """Invite someone to sign in with a password (for cities without single sign-on). Prints
    a link, alone on the last line, that lets them choose one; it works once, for 7 days.
    Admins and auditors also set up one-time codes at their first sign-in."""

    async def work(rt: Runtime) -> tuple[str, bool]:
        async with rt.uows() as uow:
            made = await signin.invite(
                email, uow=uow, now=rt.now(), by=ADMIN, grant=role, name=name
            )
        return f"{rt.base_url}/account/password/{made.code}", rt.settings.base_url is None

    try:
        link, guessed = asyncio.run(with_runtime(work))
    except DomainError as exc:
        fail(str(exc))
    days = signin.INVITATION_LIFETIME.days
    if guessed:
        typer.echo(
            "INCIDENTS_BASE_URL is not set, so the link assumes the service is at "
            f"{link.split('/account/')[0]}; if it runs elsewhere, open the same path there "
            "(and set INCIDENTS_BASE_URL to the address people use).",
            err=True,
        )
    typer.echo(
        f"invitation for {email.strip().lower()}; send them this link (it works once, "
        f"for {days} days):"
    )
    typer.echo(link)


@users_app.command("list")
def users_list() -> None:
    """Every account and its granted roles."""

    async def work(rt: Runtime) -> list[str]:
        async with rt.uows() as uow:
            return [
                f"{a.email}  {', '.join(a.grants) or '-'}"
                + ("  password" if a.password_hash else "")
                + ("  one-time codes" if a.totp_secret else "")
                + (f"  locked until {a.locked_until:%H:%M} UTC" if a.locked_until else "")
                for a in await people.accounts(uow=uow)
            ]

    for line in asyncio.run(with_runtime(work)):
        typer.echo(line)


@tokens_app.command("create")
def tokens_create(
    email: str = typer.Argument(..., help="whom the token acts as (an account is made if none)"),
    name: str = typer.Option(..., help="what uses it, e.g. 'monitoring script'"),
) -> None:
    """Make a token; it is printed once, alone on the last line, and only its hash is kept."""

    async def work(rt: Runtime) -> people.NewToken:
        async with rt.uows() as uow:
            return await people.create_token(email, name, uow=uow, now=rt.now(), by=ADMIN)

    try:
        made = asyncio.run(with_runtime(work))
    except DomainError as exc:
        fail(str(exc))
    typer.echo(
        f"token {made.token.id} for {email.strip().lower()} ({made.token.name}); "
        "keep it secret, it is not shown again:"
    )
    typer.echo(made.secret)


@tokens_app.command("list")
def tokens_list() -> None:
    """Every token: its id, whose it is, its name, and whether it is revoked."""

    async def work(rt: Runtime) -> list[str]:
        async with rt.uows() as uow:
            return [
                f"{t.id}  {a.email}  {t.name}  "
                + (f"revoked {t.revoked_at:%Y-%m-%d}" if t.revoked_at else "active")
                for t, a in await people.tokens(uow=uow)
            ]

    lines = asyncio.run(with_runtime(work))
    typer.echo("\n".join(lines) if lines else "no tokens")


@tokens_app.command("revoke")
def tokens_revoke(token_id: str = typer.Argument(..., help="the token's id (tokens list)")) -> None:
    """Revoke a token at once; requests that carry it are refused with 401."""

    async def work(rt: Runtime) -> str:
        async with rt.uows() as uow:
            return (await people.revoke_token(token_id, uow=uow, now=rt.now(), by=ADMIN)).id

    try:
        revoked = asyncio.run(with_runtime(work))
    except DomainError as exc:
        fail(str(exc))
    typer.echo(f"token {revoked} revoked")
