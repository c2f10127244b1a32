"""The organisation's directory: the people behind each role, per department where it differs."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from incidents.kernel.vocabulary import Role
from incidents.policy.roster import ON_CALL_ROLES, Roster


class Person(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    email: EmailStr


class AISystem(BaseModel):
    """What the directory knows of an AI system in the inventory."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    public_facing: bool = False
    pilot: bool = False


class Directory(BaseModel):
    """Roles resolve per department first (a department's own supervisor), then citywide.

    A role nobody fills goes to `fallback`, so a gap in the directory delays no notice: the
    fallback people see it and fix the directory.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    organisation: str
    fallback: list[Person] = Field(min_length=1)
    roles: dict[Role, list[Person]] = Field(default_factory=dict)
    departments: dict[str, dict[Role, list[Person]]] = Field(default_factory=dict)
    ai_systems: dict[str, AISystem] = Field(default_factory=dict)
    on_call: Roster | None = None  # who answers security pages, by shift

    def resolve(
        self, role: Role, department: str, at: datetime | None = None
    ) -> tuple[Person, ...]:
        """The people behind a role. The on-call roles are resolved by the roster at `at` (the
        moment of paging); when no shift covers it, or there is no roster, the security team
        answers, and failing that the fallback."""
        if role in ON_CALL_ROLES:
            shift = self.on_call.on_call(role, at) if self.on_call and at else []
            if shift:
                return tuple(Person(name=p.name, email=p.email) for p in shift)
            role = Role.SECURITY_TEAM
        for scope in (self._department(department), self.departments.get("*", {}), self.roles):
            people = scope.get(role)
            if people:
                return tuple(people)
        return tuple(self.fallback)

    def roles_held_by(self, email: str) -> frozenset[Role]:
        """Every role this person holds, citywide or in any department. A signed-in person gets
        these roles' powers (`incidents.people.permissions`)."""
        address = email.strip().casefold()
        scopes = [self.roles, *self.departments.values()]
        held = {
            role
            for scope in scopes
            for role, people in scope.items()
            if any(str(p.email).casefold() == address for p in people)
        }
        # Whoever a shift names is on the security rota, at any hour.
        if self.on_call is not None:
            for shift in self.on_call.shifts:
                if any(str(p.email).casefold() == address for p in shift.primary):
                    held.add(Role.SECURITY_ON_CALL)
                if any(str(p.email).casefold() == address for p in shift.secondary):
                    held.add(Role.SECURITY_BACKUP)
        return frozenset(held)

    def name_of(self, email: str) -> str:
        """The name the directory gives this address, or "" if it names nobody there."""
        address = email.strip().casefold()
        everyone = [*self.fallback, *(p for ps in self.roles.values() for p in ps)]
        everyone += [p for d in self.departments.values() for ps in d.values() for p in ps]
        return next((p.name for p in everyone if str(p.email).casefold() == address), "")

    def system(self, name: str) -> AISystem:
        for known, attrs in self.ai_systems.items():
            if known.casefold() == name.strip().casefold():
                return attrs
        return AISystem()

    def _department(self, department: str) -> dict[Role, list[Person]]:
        for name, roles in self.departments.items():
            if name.casefold() == department.strip().casefold():
                return roles
        return {}
