"""Who is acting: a person signed in (by a session or an API token), with the roles they hold.

Roles come from two places: the organisation's directory names the people behind each policy
role (supervisor, CDPO, CIO, CISO, …), and accounts are granted `admin` or `auditor`. What each
role may do is written once, as data, in `incidents.people.permissions`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from incidents.kernel.vocabulary import Role


class Grant(StrEnum):
    """Roles given to an account rather than by a policy's directory."""

    ADMIN = "admin"  # accounts, roles, settings
    AUDITOR = "auditor"  # reads everything, exports the record


@dataclass(frozen=True)
class Principal:
    email: str  # lower-cased
    grants: frozenset[Grant] = frozenset()
    roles: frozenset[Role] = frozenset()  # the policy roles the directory gives this person
    name: str = ""

    @property
    def reads_everything(self) -> bool:
        return Grant.AUDITOR in self.grants
