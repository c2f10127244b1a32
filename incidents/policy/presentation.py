"""One way to show policy to people and programs: the JSON of an obligation, a pack in words,
the security case a report would open, the sunset review it would open or count towards.

The API's `obligations` list and `incidents policy explain --json` both come from
`obligation_json`, so what an administrator previews is exactly what the service stores and sends.
A case's page and tasks are obligations too, shown the same way by `case_json`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from incidents.kernel.vocabulary import CATEGORY_WORDS, KIND_WORDS, Role, role_name
from incidents.policy.cases import PlannedCase
from incidents.policy.directory import Directory, Person
from incidents.policy.engine import PlannedObligation, describe
from incidents.policy.reviews import Counting, PlannedReview
from incidents.policy.schema import (
    Citation,
    Deadline,
    Pack,
    ResponseTask,
    ReviewThreshold,
    Rule,
    SunsetPlan,
    SystemMatch,
    When,
)
from incidents.policy.sources import documents, find_passage, text_of

_FOLLOW_WORDS = {
    "security_case": "a security incident case is opened",
    "sunset_review": "a review of whether to halt or retire the system is opened",
}


def obligation_json(o: PlannedObligation, *, id: str | None, status: str) -> dict[str, Any]:
    """The one JSON shape of an obligation, for the API and for `policy explain --json`."""
    return {
        "id": id,
        "role": o.role.value,
        "recipients": [str(p.email) for p in o.recipients],
        "due_at": o.due_at.astimezone(UTC).isoformat(),
        "due_at_local": o.due_at.astimezone(ZoneInfo(o.timezone)).isoformat(),
        "timezone": o.timezone,
        "status": status,
        "rule": o.rules[0],
        "rules": list(o.rules),
        "citation": str(o.citations[0]),
        "citations": [citation_json(c) for c in o.citations],
        "interpretation": o.interpretation,
        "holidays": list(o.holidays),
        "action": o.action,
        "duty": o.duty or None,
        "late": o.late,
    }


def citation_json(c: Citation) -> dict[str, str]:
    """A citation for programs and pages: the document's title, the section, the quote, and
    the address of the passage on its pack's source page."""
    return {
        "file": c.file,
        "document": c.document or c.file,
        "section": c.section,
        "quote": c.quote,
        "link": c.link,
        "text": str(c),
    }


@dataclass(frozen=True)
class PageStep:
    """One step of a case's on-call page: who is paged, from when, and until when they have to
    acknowledge before the next step is paged."""

    number: int
    roles: tuple[Role, ...]
    recipients: tuple[Person, ...]
    opens_at: datetime
    due_at: datetime


def page_steps(
    page: PlannedObligation, directory: Directory, opened_at: datetime, department: str = ""
) -> list[PageStep]:
    """The page's chain as it would run if nobody acknowledged: the first step at `opened_at`,
    each later step when the one before has waited its time, its people those the directory (and
    its on-call roster) names at that moment."""
    steps = [PageStep(1, (page.role,), page.recipients, opened_at, page.due_at)]
    for level in page.escalation:
        opens = steps[-1].due_at
        people = tuple(
            dict.fromkeys(p for r in level.notify for p in directory.resolve(r, department, opens))
        )
        steps.append(
            PageStep(len(steps) + 1, tuple(level.notify), people, opens, opens + level.within)
        )
    return steps


def response_task(packs: Sequence[Pack], ref: str) -> ResponseTask | None:
    """The response plan's task behind a case's task obligation, by its "pack/task" reference."""
    pack_id, _, task_id = ref.partition("/")
    for pack in packs:
        if pack.id == pack_id and pack.response_plan is not None:
            return next((t for t in pack.response_plan.tasks if t.id == task_id), None)
    return None


def titled(citation: Citation, packs: Sequence[Pack]) -> Citation:
    """A citation with its document's title, where the loader has not already filled it in (as
    for response plans): the title documents.yaml gives, or the citing pack's source title."""
    if citation.document:
        return citation
    known = documents().get(citation.file)
    title = known.title if known is not None else ""
    if not title:
        title = next((p.source_title for p in packs if p.source == citation.file), "")
    return citation.model_copy(update={"document": title}) if title else citation


def case_citations(case: PlannedCase, packs: Sequence[Pack]) -> list[Citation]:
    """What a case rests on: the opening rules' citations and the plans', each passage once."""
    seen: dict[tuple[str, str, str], Citation] = {}
    for c in case.citations:
        seen.setdefault((c.file, c.section, " ".join(c.quote.split())), titled(c, packs))
    return list(seen.values())


def case_json(
    case: PlannedCase | None,
    packs: Sequence[Pack],
    directory: Directory,
    opened_at: datetime,
    department: str = "",
) -> dict[str, Any] | None:
    """The security case a report would open, for `policy explain --json`: None when none."""
    if case is None:
        return None

    def obligation(o: PlannedObligation) -> dict[str, Any]:
        out = obligation_json(o, id=None, status="planned")
        cited = [titled(c, packs) for c in o.citations]
        out["citation"] = str(cited[0])
        out["citations"] = [citation_json(c) for c in cited]
        return out

    zone = ZoneInfo(case.page.timezone)
    page = obligation(case.page)
    page["chain"] = [
        {
            "step": s.number,
            "roles": [r.value for r in s.roles],
            "recipients": [str(p.email) for p in s.recipients],
            "opens_at": s.opens_at.astimezone(UTC).isoformat(),
            "opens_at_local": s.opens_at.astimezone(zone).isoformat(),
            "due_at": s.due_at.astimezone(UTC).isoformat(),
            "due_at_local": s.due_at.astimezone(zone).isoformat(),
        }
        for s in page_steps(case.page, directory, opened_at, department)
    ]
    tasks = []
    for t in case.tasks:
        task = response_task(packs, t.rules[0])
        tasks.append(
            {
                "task": t.rules[0],
                "title": task.title if task else None,
                "required": task.required if task else True,
                **obligation(t),
            }
        )
    return {
        "plans": list(case.plans),
        "owner": case.owner.value,
        "severity": case.severity,
        "because": list(case.because),
        "rules": list(case.rules),
        "citations": [citation_json(c) for c in case_citations(case, packs)],
        "page": page,
        "tasks": tasks,
    }


# `explain` has no database: it counts the report alone, as if nothing else were known.
EARLIER_REPORTS_NOTE = (
    "Earlier reports about the same system within the window count too; explain has no "
    "database, so it counts this report alone."
)

# What a phase-out plan addresses, by its field (SunsetPlan.plan_sections).
_PLAN_SECTION_WORDS = {
    "data_ownership": "ownership of the data",
    "data_access": "future access to the data",
    "portability": "portability of the model, algorithm and data",
    "impact_services": "impact to services",
    "impact_users": "impact to users",
    "impact_residents": "impact to residents",
}


def plan_words(sections: Sequence[str]) -> str:
    """What a phase-out plan addresses, in words: 'ownership of the data, …'."""
    return _and([_PLAN_SECTION_WORDS.get(s, s.replace("_", " ")) for s in sections])


def sunset_plan(packs: Sequence[Pack], pack_id: str) -> tuple[Pack, SunsetPlan] | None:
    """The pack named in a planned review or a count, with its sunset section."""
    for pack in packs:
        if pack.id == pack_id and pack.sunset is not None:
            return pack, pack.sunset
    return None


def window_words(threshold: ReviewThreshold) -> str:
    """The threshold's window in words, e.g. '30 days'."""
    return describe(Deadline(after=threshold.within)).removesuffix(" from discovery")


def decide_words(pack: Pack, plan: SunsetPlan) -> str:
    """By when the decider decides, e.g. 'by the end of 5 business days after discovery (…)'."""
    return _deadline_words(pack, plan.decide_within)


def review_json(
    review: PlannedReview | None,
    counting: Sequence[Counting],
    packs: Sequence[Pack],
    *,
    earlier_counted: bool = True,
) -> dict[str, Any] | None:
    """The sunset review a report would open, and the thresholds it counts towards, for
    `policy explain --json`: None when it does neither. `earlier_counted` False says that the
    counts are of this report alone (explain knows no earlier reports)."""
    if review is None and not counting:
        return None
    opens = None
    if review is not None:
        found = sunset_plan(packs, review.pack)
        opens = {
            "pack": review.pack,
            "decider": review.decider.value,
            "opened_by": review.opened_by,
            "reason": review.reason,
            "halt": review.halt,
            "decide_within": decide_words(*found) if found else None,
            "plan_sections": list(found[1].plan_sections) if found else [],
            "citations": [citation_json(titled(c, packs)) for c in review.citations],
        }
    counts = []
    for c in counting:
        found = sunset_plan(packs, c.pack)
        threshold = found[1].threshold if found else None
        counts.append(
            {
                "pack": c.pack,
                "counted": c.counted,
                "count": c.count,
                "within": window_words(threshold) if threshold else None,
                "kinds": [k.value for k in threshold.kinds] if threshold else [],
                "citation": citation_json(titled(threshold.citation, packs)) if threshold else None,
            }
        )
    return {
        "opens": opens,
        "counts_towards": counts,
        "earlier_reports_counted": earlier_counted,
        "note": None if earlier_counted else EARLIER_REPORTS_NOTE,
    }


def describe_pack(pack: Pack) -> dict[str, Any]:
    """A pack in plain words, for the public /policies page."""
    rules = [_describe_rule(pack, r) for r in pack.rules]
    triage = None
    if pack.triage is not None:
        t = pack.triage
        triage = {
            "text": (
                f"When no rule matches a report, tell {_names(t.notify)} "
                f"{_deadline_words(pack, t.within)}."
            ),
            "action": t.action,
            "citation": citation_json(t.citation),
        }
    return {
        "id": pack.id,
        "title": pack.title,
        "organisation": pack.organisation,
        "timezone": pack.timezone,
        "source": pack.source,
        "source_title": pack.source_title,
        "source_url": pack.source_url,
        "jurisdiction": pack.jurisdiction,
        "observed_holidays": [{"name": d.name, "on": d.on} for d in pack.observed_holidays],
        "layers_on": pack.layers_on,
        "layers_on_note": pack.layers_on_note,
        "departments": list(pack.departments),
        "business_hours_end": pack.business_hours_end,
        "interpretations": [
            {"word": word, "reading": describe(i.deadline), "note": i.note}
            for word, i in pack.interpretations.items()
        ],
        "triage": triage,
        "rules": rules,
        "not_encoded": [{"section": x.section, "why": x.why} for x in pack.not_encoded],
    }


def _describe_rule(pack: Pack, rule: Rule) -> dict[str, Any]:
    later = rule.trigger == "personal_information_acquired"
    opening = (
        "When it is confirmed that personal information was acquired"
        if later
        else "When a report concerns"
    )
    condition = _when_words(rule.when, reported=not later)
    due = _deadline_words(pack, rule.within)
    if later:
        # The clock of these rules starts at the confirmation, whatever `from` says.
        due = due.replace("from discovery", "from that confirmation").replace(
            "after discovery", "after that confirmation"
        )
    text = f"{opening}{condition}, tell {_names(rule.notify)} {due}."
    if rule.reminders:
        before = _and(
            [describe(Deadline(after=r)).removesuffix(" from discovery") for r in rule.reminders]
        )
        text += f" Reminders go out {before} before the deadline."
    if rule.escalation:
        steps = "; then ".join(_names(level.notify) for level in rule.escalation)
        text += f" If the deadline is missed, the matter goes to {steps}."
    if rule.opens:
        text += " " + " and ".join(_FOLLOW_WORDS[f] for f in rule.opens).capitalize() + "."
    return {
        "id": rule.id,
        "title": rule.title,
        "text": text,
        "action": rule.action,
        "citation": citation_json(rule.citation),
    }


def _when_words(when: When, *, reported: bool) -> str:
    parts: list[str] = []
    if when.kinds:
        parts.append(" " + _or([KIND_WORDS[k] for k in when.kinds]))
    elif reported:
        parts.append(" anything")
    if when.data_categories:
        parts.append(" involving " + _or([CATEGORY_WORDS[c] for c in when.data_categories]))
    if when.departments:
        parts.append(" from " + _or(list(when.departments)))
    system = _system_words(when.system)
    if system:
        parts.append(f" about {system}")
    if when.min_affected is not None:
        parts.append(f" affecting {when.min_affected:,} or more people")
    return ("," if not reported and parts else "") + "".join(parts)


def _system_words(system: SystemMatch) -> str:
    words = []
    if system.public_facing is True:
        words.append("a public-facing system")
    elif system.public_facing is False:
        words.append("an internal system")
    if system.pilot is True:
        words.append("a pilot or experiment")
    elif system.pilot is False:
        words.append("a system in production")
    return " that is ".join(words) if len(words) == 2 else "".join(words)


def _deadline_words(pack: Pack, deadline: Deadline) -> str:
    if deadline.interpretation is not None:
        interp = pack.interpretations[deadline.interpretation]
        word = deadline.interpretation.replace("_", " ")
        return (
            f"{_within(interp.deadline.model_copy(update={'from_': deadline.from_}))} "
            f"(“{word}”, as this service reads it)"
        )
    return _within(deadline)


def _within(deadline: Deadline) -> str:
    words = describe(deadline)
    return f"by {words}" if deadline.after is None else f"within {words}"


def _names(roles: list[Role]) -> str:
    return _and([role_name(r) for r in roles])


def _and(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _or(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]


def source_page(pack: Pack) -> dict[str, Any]:
    """A pack's source documents with every cited passage marked and anchored (`#<rule id>`),
    for `/policies/{pack}/source`: the text where it ships here, else the passages alone."""
    cited: dict[str, list[tuple[str, Citation]]] = {}
    for rule in pack.rules:
        cited.setdefault(rule.citation.file, []).append((rule.id, rule.citation))
    if pack.triage is not None:
        cited.setdefault(pack.triage.citation.file, []).append(("triage", pack.triage.citation))
    shown = []
    for name, citations in cited.items():
        document = documents().get(name)
        text = text_of(name)
        shown.append(
            {
                "name": name,
                "title": citations[0][1].document or name,
                "url": document.url if document else None,
                "segments": _marked(text, citations) if text is not None else None,
                "passages": [
                    {"anchor": anchor, "section": c.section, "quote": c.quote}
                    for anchor, c in citations
                ],
            }
        )
    return {
        "id": pack.id,
        "title": pack.title,
        "source_title": pack.source_title,
        "documents": shown,
    }


def _marked(text: str, citations: list[tuple[str, Citation]]) -> list[dict[str, Any]]:
    """The text cut into plain runs and cited passages; passages that overlap share one mark,
    which carries every anchor. A quote not found is left out (the pack tests forbid it)."""
    spans = sorted(
        (found[0], found[1], anchor, c.section)
        for anchor, c in citations
        if (found := find_passage(text, c.quote)) is not None
    )
    groups: list[list[Any]] = []
    for start, end, anchor, section in spans:
        if groups and start < groups[-1][1]:
            groups[-1][1] = max(groups[-1][1], end)
            groups[-1][2].append(anchor)
            groups[-1][3].append(section)
        else:
            groups.append([start, end, [anchor], [section]])
    segments: list[dict[str, Any]] = []
    at = 0
    for start, end, anchors, sections in groups:
        segments.append({"text": text[at:start], "anchors": [], "sections": []})
        segments.append(
            {
                "text": text[start:end],
                "anchors": anchors,
                "sections": list(dict.fromkeys(sections)),
            }
        )
        at = end
    segments.append({"text": text[at:], "anchors": [], "sections": []})
    return segments
