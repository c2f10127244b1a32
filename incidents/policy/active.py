"""The policy a deployment runs: its packs, the directory behind their roles, its holidays."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from incidents.policy.directory import Directory
from incidents.policy.schema import Pack


@dataclass(frozen=True)
class PolicySet:
    packs: tuple[Pack, ...]
    directory: Directory
    holidays: frozenset[date] = frozenset()
