"""Whether a report opens (or counts towards) a sunset review of its AI system. Pure, like the
engine: `now` and what is already known of the system are arguments.

A review opens when a rule the report matches says `opens: [sunset_review]`, or when the pack's
threshold is crossed: `count` matching reports about one system within the window, this one
included. A rule the pack lists in `halt_at_once` halts the system as the review opens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from incidents.kernel.vocabulary import Role
from incidents.policy.directory import Directory
from incidents.policy.engine import ReportFacts, matches, pack_applies
from incidents.policy.schema import Citation, Pack

# Obligations of a review, by their duty: "<prefix><review id>[:<n>]".
DECISION = "review-decision:"
EXCEPTION = "review-exception:"
MILESTONE = "review-milestone:"
TOLD = "review-decided:"
AUDIT = "review-audit:"  # "<prefix><system id>": the system's periodic audit falls due
APPROVAL = "approval:"  # "<prefix><request id>": a request to approve a new system
REVIEW_DUTIES = (DECISION, EXCEPTION, MILESTONE, TOLD, AUDIT, APPROVAL)


@dataclass(frozen=True)
class PlannedReview:
    pack: str
    decider: Role
    opened_by: str  # "rule:pack/rule" or "threshold:pack"
    halt: bool  # the system is halted as the review opens
    reason: str  # in plain words
    citations: tuple[Citation, ...]


@dataclass(frozen=True)
class Counting:
    """A report that counts towards a pack's threshold without crossing it yet."""

    pack: str
    counted: int  # matching reports within the window, this one included
    count: int  # the threshold


def review_for(
    report: ReportFacts,
    packs: Sequence[Pack],
    directory: Directory,
    now: datetime,
    *,
    recent_kinds: Sequence[str] = (),
) -> tuple[PlannedReview | None, list[Counting]]:
    """The review `report` opens, if any, and the thresholds it counts towards.

    `recent_kinds`: the kinds of the other reports about the same system, each already within
    the longest window a pack uses (the caller queries them; this stays pure)."""
    counting: list[Counting] = []
    for pack in packs:
        plan = pack.sunset
        if plan is None or not pack_applies(pack, report):
            continue
        for rule in pack.rules:
            if (
                "sunset_review" in rule.opens
                and rule.trigger == "report"
                and matches(rule.when, report, directory)
            ):
                return (
                    PlannedReview(
                        pack=pack.id,
                        decider=plan.decider,
                        opened_by=f"rule:{pack.id}/{rule.id}",
                        halt=rule.id in plan.halt_at_once,
                        reason=rule.title,
                        citations=(rule.citation, plan.citation),
                    ),
                    counting,
                )
        threshold = plan.threshold
        if threshold is None or report.kind not in threshold.kinds:
            continue
        kinds = {k.value for k in threshold.kinds}
        counted = 1 + sum(1 for k in recent_kinds if k in kinds)
        if counted >= threshold.count:
            reason = (
                f"{counted} reports of {', '.join(sorted(kinds))} about this system within "
                f"the pack's window: a pattern of harm or failure"
            )
            return (
                PlannedReview(
                    pack=pack.id,
                    decider=plan.decider,
                    opened_by=f"threshold:{pack.id}",
                    halt=False,
                    reason=reason,
                    citations=(threshold.citation, plan.citation),
                ),
                counting,
            )
        counting.append(Counting(pack=pack.id, counted=counted, count=threshold.count))
    return None, counting
