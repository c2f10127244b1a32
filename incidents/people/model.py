"""Accounts, their sign-in sessions, invitation and reset links, and API tokens.

Secrets are never stored: a token, a session's cookie value and a link's code are kept only as
their SHA-256, and a password only as its argon2id hash.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy.orm import configure_mappers
from sqlmodel import Field, SQLModel

from incidents.kernel.columns import enum_field, json_field, time_field


class Account(SQLModel, table=True):
    __tablename__ = "accounts"

    id: str = Field(primary_key=True, max_length=36)
    email: str = Field(unique=True, max_length=320)  # lower-cased
    grants: list[str] = json_field(default_factory=list)  # admin, auditor
    created_at: datetime = time_field()
    name: str = Field(default="", max_length=200)
    # Local sign-in, for cities without single sign-on; None until an invitation is accepted.
    password_hash: str | None = Field(default=None, max_length=200)
    totp_secret: str | None = Field(default=None, max_length=64)  # base32, once confirmed
    failed_sign_ins: int = 0  # in a row; reset by a successful sign-in
    locked_until: datetime | None = time_field(default=None)
    last_sign_in_at: datetime | None = time_field(default=None)


class Stage(StrEnum):
    """How far a sign-in has got. Only a `SIGNED_IN` session acts as its person."""

    CODE = "code"  # password right; the one-time code is still to come
    ENROL = "enrol"  # password right; a privileged role must set up its one-time codes first
    SIGNED_IN = "signed_in"


class Method(StrEnum):
    PASSWORD = "password"
    OIDC = "oidc"  # the organisation's single sign-on


class SignInSession(SQLModel, table=True):
    """One browser's sign-in. Its cookie holds the secret whose SHA-256 is the id; ending the
    session (sign-out, the timeouts) makes the cookie worthless everywhere at once."""

    __tablename__ = "sign_in_sessions"

    id: str = Field(primary_key=True, max_length=64)
    account_id: str = Field(foreign_key="accounts.id", index=True, max_length=36)
    method: Method = enum_field(Method)
    stage: Stage = enum_field(Stage)
    # Roles the identity provider's claims gave for this sign-in (single sign-on only).
    grants: list[str] = json_field(default_factory=list)
    totp_pending: str | None = Field(default=None, max_length=64)  # a secret being set up
    created_at: datetime = time_field()
    last_seen_at: datetime = time_field()
    ended_at: datetime | None = time_field(default=None)


class LinkPurpose(StrEnum):
    INVITATION = "invitation"
    RESET = "reset"


class AccountLink(SQLModel, table=True):
    """An invitation or password-reset link: good once, until it expires."""

    __tablename__ = "account_links"

    id: str = Field(primary_key=True, max_length=64)  # SHA-256 of the code in the link
    account_id: str = Field(foreign_key="accounts.id", index=True, max_length=36)
    purpose: LinkPurpose = enum_field(LinkPurpose)
    created_at: datetime = time_field()
    expires_at: datetime = time_field()
    used_at: datetime | None = time_field(default=None)


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_tokens"

    id: str = Field(primary_key=True, max_length=36)
    account_id: str = Field(foreign_key="accounts.id", index=True, max_length=36)
    name: str = Field(max_length=200)
    token_hash: str = Field(unique=True, max_length=64)
    created_at: datetime = time_field()
    last_used_at: datetime | None = time_field(default=None)
    revoked_at: datetime | None = time_field(default=None)


configure_mappers()
