"""Policy packs (data files, one per policy) and the pure engine: report in, obligations out."""

from incidents.policy.active import PolicySet
from incidents.policy.directory import Directory, Person
from incidents.policy.engine import Plan, PlannedObligation, ReportFacts, describe, plan_for
from incidents.policy.loader import PolicyError, load_directory, load_packs
from incidents.policy.schema import Citation, Pack, Rule

__all__ = [
    "Citation",
    "Directory",
    "Pack",
    "Person",
    "Plan",
    "PlannedObligation",
    "PolicyError",
    "PolicySet",
    "ReportFacts",
    "Rule",
    "load_directory",
    "load_packs",
    "plan_for",
    "describe",
]
