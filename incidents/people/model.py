"""Accounts and their API tokens. A token is shown once; only its SHA-256 is kept."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import configure_mappers
from sqlmodel import Field, SQLModel

from incidents.kernel.columns import json_field, time_field


class Account(SQLModel, table=True):
    __tablename__ = "accounts"

    id: str = Field(primary_key=True, max_length=36)
    email: str = Field(unique=True, max_length=320)  # lower-cased
    grants: list[str] = json_field(default_factory=list)  # admin, auditor
    created_at: datetime = time_field()


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
