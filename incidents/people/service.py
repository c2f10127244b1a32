"""Use cases of people: add an account or grant it a role, make and revoke API tokens, and
tell who a token belongs to."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select

from incidents.kernel.actor import Grant, Principal
from incidents.kernel.errors import InvalidInput, NotFound
from incidents.kernel.ids import new_id
from incidents.kernel.unit_of_work import UnitOfWork
from incidents.people.model import Account, ApiToken
from incidents.policy.directory import Directory

TOKEN_PREFIX = "inc_"  # so a token pasted somewhere it should not be is easy to recognise


@dataclass(frozen=True)
class NewToken:
    token: ApiToken
    secret: str  # shown once, never stored


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.strip().encode()).hexdigest()


def normal_email(email: str) -> str:
    normal = email.strip().lower()
    if "@" not in normal or len(normal) > 320 or not normal.isprintable() or " " in normal:
        raise InvalidInput({"email": "Give an email address such as name@city.gov."})
    return normal


async def account(
    email: str,
    *,
    uow: UnitOfWork,
    now: datetime,
    grant: Grant | None = None,
    by: str = "system",
) -> Account:
    """The account for this email, made if there is none; with `grant`, that role added. Both
    go on the record, with `by` as the actor."""
    address = normal_email(email)
    found = (await uow.session.exec(select(Account).where(Account.email == address))).one_or_none()
    if found is None:
        found = Account(id=new_id(), email=address, grants=[], created_at=now)
        uow.record("account.created", subject=found.id, actor=by, at=now, data={"email": address})
    if grant is not None and grant.value not in found.grants:
        found.grants = sorted({*found.grants, grant.value})
        uow.record("role.granted", subject=found.id, actor=by, at=now, data={"role": grant.value})
    uow.session.add(found)
    await uow.session.flush()
    return found


async def accounts(*, uow: UnitOfWork) -> list[Account]:
    return list(await uow.session.exec(select(Account).order_by(col(Account.email))))


async def create_token(
    email: str, name: str, *, uow: UnitOfWork, now: datetime, by: str = "system"
) -> NewToken:
    """A new token for this person (their account is made if needed); its secret is returned
    once."""
    if not name.strip() or len(name) > 200:
        raise InvalidInput({"name": "Name the token (what uses it), in 1 to 200 characters."})
    owner = await account(email, uow=uow, now=now, by=by)
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        id=new_id(),
        account_id=owner.id,
        name=name.strip(),
        token_hash=_hash(secret),
        created_at=now,
    )
    uow.session.add(token)
    # The token's id and name go on the record, never its secret.
    uow.record(
        "token.created",
        subject=token.id,
        actor=by,
        at=now,
        data={"for": owner.email, "name": token.name},
    )
    return NewToken(token=token, secret=secret)


async def tokens(*, uow: UnitOfWork) -> list[tuple[ApiToken, Account]]:
    rows = await uow.session.exec(
        select(ApiToken, Account)
        .where(ApiToken.account_id == Account.id)
        .order_by(col(Account.email), col(ApiToken.created_at))
    )
    return [(t, a) for t, a in rows]


async def revoke_token(
    token_id: str, *, uow: UnitOfWork, now: datetime, by: str = "system"
) -> ApiToken:
    token = await uow.session.get(ApiToken, token_id)
    if token is None:
        raise NotFound(f"No token has the id {token_id}; `incidents tokens list` shows them.")
    if token.revoked_at is None:
        token.revoked_at = now
        uow.session.add(token)
        uow.record("token.revoked", subject=token.id, actor=by, at=now)
    return token


def principal_of(
    found: Account, directory: Directory, extra: frozenset[Grant] = frozenset()
) -> Principal:
    """The person an account is: the roles the directory gives their email, and their grants
    (`extra`: those a single sign-on's claims gave for one session)."""
    return Principal(
        email=found.email,
        grants=frozenset(Grant(g) for g in found.grants) | extra,
        roles=directory.roles_held_by(found.email),
        name=found.name or directory.name_of(found.email),
    )


async def principal_for(
    secret: str, *, uow: UnitOfWork, now: datetime, directory: Directory
) -> Principal | None:
    """Who a bearer token acts as, or None if it is unknown or revoked."""
    found = (
        await uow.session.exec(
            select(ApiToken, Account).where(
                ApiToken.token_hash == _hash(secret),
                ApiToken.account_id == Account.id,
                col(ApiToken.revoked_at).is_(None),
            )
        )
    ).one_or_none()
    if found is None:
        return None
    token, owner = found
    token.last_used_at = now
    uow.session.add(token)
    return principal_of(owner, directory)
