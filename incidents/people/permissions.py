"""Who may do what, written once as data.

Every web page and API endpoint declares one `Permission` (`incidents.web.access`); the matrix
below says which audiences hold it, and `/admin/roles` shows the same matrix to people. What a
person holds depends on who they are: anyone at all, anyone signed in, the policy roles the
directory gives them, and the grants (`admin`, `auditor`) on their account.

Route permissions say whether a person may use a page at all. Which report a person may see is
decided again, per report, by the use case (`incidents.reports.service`): a signed-in person may
open the report page, but only for reports they filed, reports a policy named them for, or any
report if they are an auditor; any other answers 404, as if there were no such report.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from incidents.kernel.actor import Grant, Principal
from incidents.kernel.vocabulary import Role


class Permission(StrEnum):
    FILE_REPORT = "file a report"
    LOOK_UP_WITH_RECEIPT = "see one report with its receipt code"
    READ_POLICIES = "read the policies"
    ACKNOWLEDGE_BY_LINK = "acknowledge with the link in a notice (as its one recipient)"
    SIGN_IN = "sign in, sign out, accept an invitation, reset a password"
    SERVICE_HEALTH = "check the service's health"
    READ_API_DESCRIPTION = "read the API's description (OpenAPI)"
    # Only while no mail server is set (trying the service out): mail goes to files, shown here.
    READ_DEMO_MAIL = "read the outgoing mail kept in files (only when no mail server is set)"
    READ_OWN = "see their own reports and the obligations addressed to them"
    ACKNOWLEDGE_OWN = "acknowledge their own obligations"
    READ_SECURITY_CASES = "see security cases"
    WORK_SECURITY_CASES = "work security cases"
    DECIDE_AI_SYSTEMS = (
        "decide on AI systems (halt, exception, phase-out) and approve new ones, "
        "where a policy names them"
    )
    READ_EVERYTHING = "read every report and obligation"
    EXPORT_RECORD = "export the record"
    SEE_ROLES = "see who holds which role"
    MANAGE_ACCOUNTS = "manage accounts, roles and settings"
    MANAGE_MAIL = "look at mail in quarantine and release it"


class Audience(StrEnum):
    ANYONE = "anyone (no sign-in)"
    SIGNED_IN = "anyone signed in"
    SECURITY = "security roles"
    DECIDERS = "CIO and approvers"
    AUDITOR = "auditor"
    ADMIN = "admin"


# The policy roles that work security cases (the cybersecurity incident response plan's people),
# and those that decide on AI systems or approve new ones.
SECURITY_ROLES: frozenset[Role] = frozenset(
    {
        Role.CISO,
        Role.ISO,
        Role.SECURITY_TEAM,
        Role.IT_DEPARTMENT,
        Role.SECURITY_ON_CALL,
        Role.SECURITY_BACKUP,
    }
)
# Every role a pack names to decide on a system or approve a new one is here: a test checks.
DECIDING_ROLES: frozenset[Role] = frozenset(
    {
        Role.CIO,
        Role.IT_DIRECTOR,
        Role.IT_DEPARTMENT,
        Role.CITY_MANAGER,
        Role.CHIEF_OF_POLICE,
    }
)

_ANYONE = frozenset(
    {
        Permission.FILE_REPORT,
        Permission.LOOK_UP_WITH_RECEIPT,
        Permission.READ_POLICIES,
        Permission.ACKNOWLEDGE_BY_LINK,
        Permission.SIGN_IN,
        Permission.SERVICE_HEALTH,
        Permission.READ_API_DESCRIPTION,
        Permission.READ_DEMO_MAIL,
    }
)
_SIGNED_IN = frozenset({Permission.READ_OWN, Permission.ACKNOWLEDGE_OWN})

# Each audience's permissions, on top of everything the audiences above it hold: a signed-in
# person can do what anyone can, a security officer what any signed-in person can, and so on.
MATRIX: dict[Audience, frozenset[Permission]] = {
    Audience.ANYONE: _ANYONE,
    Audience.SIGNED_IN: _ANYONE | _SIGNED_IN,
    Audience.SECURITY: _ANYONE
    | _SIGNED_IN
    | {Permission.READ_SECURITY_CASES, Permission.WORK_SECURITY_CASES},
    Audience.DECIDERS: _ANYONE | _SIGNED_IN | {Permission.DECIDE_AI_SYSTEMS},
    Audience.AUDITOR: _ANYONE
    | _SIGNED_IN
    | {
        Permission.READ_EVERYTHING,
        Permission.EXPORT_RECORD,
        Permission.SEE_ROLES,
        Permission.READ_SECURITY_CASES,  # read-only: auditors do not work cases
    },
    Audience.ADMIN: _ANYONE
    | _SIGNED_IN
    | {Permission.MANAGE_ACCOUNTS, Permission.MANAGE_MAIL, Permission.SEE_ROLES},
}

# Refused with 404 rather than 403: to anyone else, a security case does not exist.
HIDDEN: frozenset[Permission] = frozenset(
    {Permission.READ_SECURITY_CASES, Permission.WORK_SECURITY_CASES}
)

# Roles that must use a second factor on a local account: those that see or change much.
PRIVILEGED_GRANTS: frozenset[Grant] = frozenset({Grant.ADMIN, Grant.AUDITOR})


def audiences(principal: Principal | None) -> frozenset[Audience]:
    """The audiences this person belongs to; `None` is someone not signed in."""
    held = {Audience.ANYONE}
    if principal is None:
        return frozenset(held)
    held.add(Audience.SIGNED_IN)
    if principal.roles & SECURITY_ROLES:
        held.add(Audience.SECURITY)
    if principal.roles & DECIDING_ROLES:
        held.add(Audience.DECIDERS)
    if Grant.AUDITOR in principal.grants:
        held.add(Audience.AUDITOR)
    if Grant.ADMIN in principal.grants:
        held.add(Audience.ADMIN)
    return frozenset(held)


def allows(principal: Principal | None, permission: Permission) -> bool:
    return any(permission in MATRIX[a] for a in audiences(principal))


def privileged(principal: Principal) -> bool:
    """Whether a local account's sign-in must take a one-time code as well as the password."""
    return bool(
        principal.grants & PRIVILEGED_GRANTS or principal.roles & (SECURITY_ROLES | DECIDING_ROLES)
    )


@dataclass(frozen=True)
class MatrixRow:
    permission: Permission
    holders: tuple[Audience, ...]


def matrix_rows() -> list[MatrixRow]:
    """The matrix by permission, for `/admin/roles` and the docs."""
    return [MatrixRow(p, tuple(a for a in Audience if p in MATRIX[a])) for p in Permission]
