"""The domain's errors. The web layer turns these into 400/403/404/409 answers and form
messages."""

from __future__ import annotations


class DomainError(Exception):
    """Something a user asked for cannot be done; the message says why in plain words."""


class InvalidInput(DomainError):
    """Input that cannot be accepted, with one message per field saying what to fix."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


class NotFound(DomainError):
    """No such thing, or the caller may not know it exists (a wrong receipt code looks the same)."""


class Conflict(DomainError):
    """The request cannot be done in the thing's current state, e.g. holding a clock already
    held; the web answers 409."""


class Forbidden(DomainError):
    """The caller may see the thing but not do this to it, e.g. the CIO granting an exception
    that only the City Manager may grant; the web answers 403."""
