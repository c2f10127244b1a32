"""Signing people in: local passwords with one-time codes, single sign-on, and sessions.

- **Local accounts**, for cities without single sign-on: an administrator invites a person
  (`incidents users invite`), the link lets them choose a password (kept as an argon2id hash),
  and a forgotten password is reset by a link sent to their email. Both links work once and
  expire. After `MAX_FAILURES` wrong passwords in a row an account is locked for `LOCKOUT`.
- **One-time codes** (TOTP, RFC 6238) are required of privileged people on local accounts
  (`permissions.privileged`): admins, auditors, security roles and the CIO. Someone privileged
  who has none sets them up before their first sign-in completes.
- **Single sign-on** (`incidents.web.oidc`) signs in whoever the organisation's identity
  provider vouches for; the roles its claims map to hold for that session only.
- **Sessions** end at sign-out, after `Timeouts.idle` without use, and after `Timeouts.absolute`
  whatever happens. Only the SHA-256 of a session's secret is stored.

Every sign-in, failure, lockout, sign-out, invitation and password change is on the record.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import select

from incidents.kernel.actor import Grant
from incidents.kernel.errors import InvalidInput, NotFound
from incidents.kernel.unit_of_work import UnitOfWork
from incidents.people import permissions
from incidents.people.model import (
    Account,
    AccountLink,
    LinkPurpose,
    Method,
    SignInSession,
    Stage,
)
from incidents.people.service import account, principal_of
from incidents.policy.directory import Directory

# argon2-cffi's defaults are RFC 9106's second recommended profile (argon2id, 64 MiB, t=3).
_HASHER = PasswordHasher()
MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
INVITATION_LIFETIME = timedelta(days=7)
RESET_LIFETIME = timedelta(hours=1)
MIN_PASSWORD = 12
ISSUER = "AI Incidents"  # the name an authenticator app shows beside the code


@dataclass(frozen=True)
class Timeouts:
    idle: timedelta = timedelta(minutes=30)
    absolute: timedelta = timedelta(hours=12)


class SignInFailed(InvalidInput):
    """Wrong email, password or code, or a locked account; the message never says which of
    email and password was wrong."""

    def __init__(self, message: str) -> None:
        super().__init__({"sign_in": message})
        self.message = message


EXPIRED = "This sign-in has expired. Start again with your email and password."
WRONG = "That email and password do not match an account. Check both and try again."


def sha(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


# --- sessions ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Started:
    secret: str  # for the cookie; only its SHA-256 is stored
    session: SignInSession


def _start(
    found: Account,
    *,
    method: Method,
    stage: Stage,
    uow: UnitOfWork,
    now: datetime,
    grants: frozenset[Grant] = frozenset(),
) -> Started:
    secret = secrets.token_urlsafe(32)
    session = SignInSession(
        id=sha(secret),
        account_id=found.id,
        method=method,
        stage=stage,
        grants=sorted(grants),
        created_at=now,
        last_seen_at=now,
    )
    uow.session.add(session)
    if stage is Stage.SIGNED_IN:
        _signed_in(found, session, uow=uow, now=now)
    return Started(secret=secret, session=session)


def _signed_in(found: Account, session: SignInSession, *, uow: UnitOfWork, now: datetime) -> None:
    found.failed_sign_ins = 0
    found.locked_until = None
    found.last_sign_in_at = now
    uow.session.add(found)
    uow.record(
        "signed_in",
        subject=found.id,
        actor=found.email,
        at=now,
        data={"method": session.method.value, "grants": list(session.grants)},
    )


@dataclass(frozen=True)
class Current:
    """A live session and the account behind it."""

    session: SignInSession
    account: Account


async def current(
    secret: str, *, uow: UnitOfWork, now: datetime, timeouts: Timeouts
) -> Current | None:
    """The live session a cookie's secret belongs to; None once it ended or timed out."""
    row = (
        await uow.session.exec(
            select(SignInSession, Account).where(
                SignInSession.id == sha(secret), SignInSession.account_id == Account.id
            )
        )
    ).one_or_none()
    if row is None:
        return None
    session, owner = row
    if session.ended_at is not None:
        return None
    if now - session.last_seen_at > timeouts.idle or now - session.created_at > timeouts.absolute:
        session.ended_at = now
        uow.session.add(session)
        return None
    # Written at most once a minute: a page view need not cost a write.
    if now - session.last_seen_at > timedelta(minutes=1):
        session.last_seen_at = now
        uow.session.add(session)
    return Current(session=session, account=owner)


async def sign_out(secret: str, *, uow: UnitOfWork, now: datetime) -> None:
    session = await uow.session.get(SignInSession, sha(secret))
    if session is not None and session.ended_at is None:
        session.ended_at = now
        uow.session.add(session)
        owner = await uow.session.get(Account, session.account_id)
        uow.record(
            "signed_out",
            subject=session.account_id,
            actor=owner.email if owner else "system",
            at=now,
        )


# --- local passwords ----------------------------------------------------------------------------


async def _by_email(email: str, uow: UnitOfWork) -> Account | None:
    address = email.strip().lower()
    query = select(Account).where(Account.email == address)
    return (await uow.session.exec(query)).one_or_none()


async def with_password(
    email: str, password: str, *, uow: UnitOfWork, now: datetime, directory: Directory
) -> Started | SignInFailed:
    """Check a local account's password. The session it starts is signed in, or waits for a
    one-time code (`Stage.CODE`), or for codes to be set up (`Stage.ENROL`).

    A refusal is returned, not raised, so that the unit of work commits what it counted: the
    failure on the record, and the lockout after MAX_FAILURES in a row.
    """
    found = await _by_email(email, uow)
    if found is None or found.password_hash is None:
        _HASHER.hash(password)  # the same time as a real check: no hint that nobody is there
        return SignInFailed(WRONG)
    if found.locked_until is not None and found.locked_until > now:
        return SignInFailed(_locked_message(found.locked_until, now))
    try:
        _HASHER.verify(found.password_hash, password)
    except (VerificationError, InvalidHashError):
        _failed(found, uow=uow, now=now)
        return SignInFailed(
            _locked_message(found.locked_until, now) if found.locked_until else WRONG
        )
    if _HASHER.check_needs_rehash(found.password_hash):
        found.password_hash = _HASHER.hash(password)
    needs_code = permissions.privileged(principal_of(found, directory))
    if found.totp_secret is not None:
        stage = Stage.CODE
    elif needs_code:
        stage = Stage.ENROL
    else:
        stage = Stage.SIGNED_IN
    started = _start(found, method=Method.PASSWORD, stage=stage, uow=uow, now=now)
    if stage is Stage.ENROL:
        started.session.totp_pending = pyotp.random_base32()
    return started


def _failed(found: Account, *, uow: UnitOfWork, now: datetime) -> None:
    found.failed_sign_ins += 1
    data: dict[str, object] = {"failures_in_a_row": found.failed_sign_ins}
    if found.failed_sign_ins >= MAX_FAILURES:
        found.locked_until = now + LOCKOUT
        found.failed_sign_ins = 0
        data["locked_until"] = found.locked_until.isoformat()
    uow.session.add(found)
    uow.record("sign_in.failed", subject=found.id, actor=found.email, at=now, data=data)


def _locked_message(until: datetime, now: datetime) -> str:
    minutes = max(1, round((until - now).total_seconds() / 60))
    return (
        "This account is locked after too many wrong passwords. "
        f"Try again in {minutes} minute{'s' if minutes != 1 else ''}, or reset your password."
    )


async def with_code(
    secret: str, code: str, *, uow: UnitOfWork, now: datetime, timeouts: Timeouts
) -> Current | SignInFailed:
    """The one-time code that completes a sign-in waiting for it (or confirms codes being set
    up). A wrong code counts as a failed sign-in; like a wrong password, it is returned."""
    live = await current(secret, uow=uow, now=now, timeouts=timeouts)
    if live is None or live.session.stage is Stage.SIGNED_IN:
        return SignInFailed(EXPIRED)
    session, found = live.session, live.account
    key = found.totp_secret if session.stage is Stage.CODE else session.totp_pending
    assert key is not None
    # valid_window=1: a code from the 30 seconds before or after is taken (clocks drift).
    if not pyotp.TOTP(key).verify(code.replace(" ", ""), for_time=now, valid_window=1):
        _failed(found, uow=uow, now=now)
        if found.locked_until is not None and found.locked_until > now:
            session.ended_at = now
            uow.session.add(session)
            return SignInFailed(_locked_message(found.locked_until, now))
        return SignInFailed("That code is not right. Type the 6 digits your app shows now.")
    if session.stage is Stage.ENROL:
        found.totp_secret = key
        session.totp_pending = None
        uow.record("one_time_codes.set_up", subject=found.id, actor=found.email, at=now)
    session.stage = Stage.SIGNED_IN
    _signed_in(found, session, uow=uow, now=now)
    return live


def enrolment_uri(found: Account, session: SignInSession) -> str:
    """The otpauth:// address an authenticator app takes (typed in, or from a QR code)."""
    assert session.totp_pending is not None
    return pyotp.TOTP(session.totp_pending).provisioning_uri(name=found.email, issuer_name=ISSUER)


# --- single sign-on -------------------------------------------------------------------------------


async def with_identity_provider(
    email: str,
    *,
    name: str,
    grants: frozenset[Grant],
    issuer: str,
    uow: UnitOfWork,
    now: datetime,
) -> Started:
    """Sign in someone the organisation's identity provider vouches for. Their account is made
    on first sign-in; `grants` (from the provider's group or role claims) hold for this session."""
    found = await account(email, uow=uow, now=now, by=f"single sign-on ({issuer})")
    if name and not found.name:
        found.name = name[:200]
    return _start(found, method=Method.OIDC, stage=Stage.SIGNED_IN, uow=uow, now=now, grants=grants)


# --- invitations and resets -------------------------------------------------------------------


@dataclass(frozen=True)
class Link:
    code: str  # goes in the link; only its SHA-256 is stored
    link: AccountLink
    account: Account


async def invite(
    email: str,
    *,
    uow: UnitOfWork,
    now: datetime,
    by: str,
    grant: Grant | None = None,
    name: str = "",
) -> Link:
    """A link that lets this person choose a password; their account is made if needed."""
    found = await account(email, uow=uow, now=now, grant=grant, by=by)
    if name:
        found.name = name.strip()[:200]
    made = _link(found, LinkPurpose.INVITATION, INVITATION_LIFETIME, uow=uow, now=now)
    uow.record(
        "invitation.sent",
        subject=found.id,
        actor=by,
        at=now,
        data={"email": found.email, "expires_at": made.link.expires_at.isoformat()},
    )
    return made


async def reset_link(email: str, *, uow: UnitOfWork, now: datetime) -> Link | None:
    """A password-reset link for a local account, or None when the email has none (the page
    says the same either way, so it tells nobody who has an account)."""
    found = await _by_email(email, uow)
    if found is None or found.password_hash is None:
        return None
    made = _link(found, LinkPurpose.RESET, RESET_LIFETIME, uow=uow, now=now)
    uow.record("password_reset.requested", subject=found.id, actor=found.email, at=now)
    return made


def _link(
    found: Account, purpose: LinkPurpose, lifetime: timedelta, *, uow: UnitOfWork, now: datetime
) -> Link:
    code = secrets.token_urlsafe(32)
    link = AccountLink(
        id=sha(code),
        account_id=found.id,
        purpose=purpose,
        created_at=now,
        expires_at=now + lifetime,
    )
    uow.session.add(link)
    return Link(code=code, link=link, account=found)


async def open_link(code: str, *, uow: UnitOfWork, now: datetime) -> Link:
    """The unused, unexpired link with this code; NotFound otherwise, saying what to do."""
    link = await uow.session.get(AccountLink, sha(code))
    if link is None or link.used_at is not None or link.expires_at <= now:
        raise NotFound(
            "This link has expired or was already used. Ask your administrator for a new "
            "invitation, or ask for a new password-reset link."
        )
    found = await uow.session.get(Account, link.account_id)
    assert found is not None
    return Link(code=code, link=link, account=found)


def check_password(password: str, confirm: str, email: str) -> None:
    errors = {}
    if len(password) < MIN_PASSWORD:
        errors["password"] = f"Use at least {MIN_PASSWORD} characters; a short phrase is easiest."
    elif password.strip().lower() == email.strip().lower():
        errors["password"] = "Choose a password that is not your email address."
    if password != confirm:
        errors["confirm"] = "The two passwords are not the same. Type the same one twice."
    if errors:
        raise InvalidInput(errors)


async def set_password(
    code: str, password: str, confirm: str, *, uow: UnitOfWork, now: datetime
) -> Account:
    """Use an invitation or reset link: the password is set, the link is spent, and every
    session of the account ends (someone who had the old password is signed out)."""
    used = await open_link(code, uow=uow, now=now)
    check_password(password, confirm, used.account.email)
    found = used.account
    found.password_hash = _HASHER.hash(password)
    found.failed_sign_ins = 0
    found.locked_until = None
    used.link.used_at = now
    uow.session.add_all([found, used.link])
    live = await uow.session.exec(select(SignInSession).where(SignInSession.account_id == found.id))
    for session in live:
        if session.ended_at is None:
            session.ended_at = now
            uow.session.add(session)
    uow.record(
        "password.set",
        subject=found.id,
        actor=found.email,
        at=now,
        data={"by": used.link.purpose.value},
    )
    return found
