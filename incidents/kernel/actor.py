"""Who is acting: a person signed in (by an API token today), with the roles granted to them.

What a person may see and do follows from who they are in the record (the reporter, a person a
policy named) and from these grants; `incidents.people.permissions` writes the rules down.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Grant(StrEnum):
    """Roles given to an account rather than by a policy's directory."""

    ADMIN = "admin"  # accounts, roles, settings
    AUDITOR = "auditor"  # reads everything, exports the record


@dataclass(frozen=True)
class Principal:
    email: str  # lower-cased
    grants: frozenset[Grant] = frozenset()

    @property
    def reads_everything(self) -> bool:
        return bool(self.grants & {Grant.ADMIN, Grant.AUDITOR})
