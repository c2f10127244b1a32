"""How stored reports and obligations look to callers.

An obligation's JSON comes from the same serializer as `incidents policy explain --json`
(incidents.policy.presentation), so a preview and the real thing have one shape.
"""

from __future__ import annotations

from typing import Any

from incidents.cases.service import CaseDetails
from incidents.kernel.vocabulary import Role, role_name
from incidents.kernel.wording import local_time
from incidents.obligations.model import Obligation
from incidents.policy import Citation, Person, PlannedObligation, PolicySet, presentation
from incidents.policy.cases import TASK_DUTY
from incidents.reports.model import Report


def as_planned(o: Obligation) -> PlannedObligation:
    return PlannedObligation(
        role=Role(o.role),
        # Checked when the directory and packs were loaded; validating again costs per request.
        recipients=tuple(
            Person.model_construct(name=r["name"], email=r["email"]) for r in o.recipients
        ),
        due_at=o.due_at,
        rules=tuple(o.rules),
        citations=tuple(
            Citation.model_construct(
                file=c["file"],
                section=c["section"],
                quote=c["quote"],
                # Obligations stored before citations carried these have none.
                document=c.get("document", ""),
                link=c.get("link", ""),
            )
            for c in o.citations
        ),
        timezone=o.timezone,
        interpretation=o.interpretation,
        late=o.late,
        action=o.action,
        duty=o.duty or "",
        holidays=tuple(o.holidays or ()),
    )


def obligation_json(o: Obligation) -> dict[str, Any]:
    return {
        **presentation.obligation_json(as_planned(o), id=o.id, status=o.status),
        "level": o.level,
        "acknowledged_at": o.acknowledged_at.isoformat() if o.acknowledged_at else None,
        "acknowledged_by": o.acknowledged_by,
        "breached_at": o.breached_at.isoformat() if o.breached_at else None,
    }


def report_json(r: Report, obligations: list[Obligation]) -> dict[str, Any]:
    return {
        "id": r.id,
        "reference": r.reference,
        "kind": r.kind,
        "title": r.title,
        "description": r.description,
        "discovered_at": r.discovered_at.isoformat(),
        "reported_at": r.reported_at.isoformat(),
        "channel": str(r.channel),
        "source": r.source,
        "reporter": {
            "name": r.reporter_name,
            "email": r.reporter_email,
            "department": r.reporter_department,
        },
        "ai_system": r.ai_system,
        "ai_system_id": r.ai_system_id,
        "data_categories": r.data_categories,
        "policies": r.policies,
        "obligations": [obligation_json(o) for o in obligations],
    }


def obligation_view(o: Obligation) -> dict[str, Any]:
    """An obligation as pages show it: names, local times, citations."""
    return {
        "id": o.id,
        "role": role_name(o.role),
        "recipients": ", ".join(r["name"] for r in o.recipients),
        "due": local_time(o.due_at, o.timezone),
        "status": o.status,
        "late": o.late,
        "level": o.level,
        "acknowledged": local_time(o.acknowledged_at, o.timezone),
        "acknowledged_by": o.acknowledged_by,
        "rules": ", ".join(o.rules),
        "citations": o.citations,
        "interpretation": o.interpretation,
        "action": o.action,
        "holidays": "; ".join(o.holidays or ()),
    }


def task_title(o: Obligation, policy: PolicySet) -> str:
    """A case task's title, from the response plan that set it."""
    key = (o.duty or "").removeprefix(TASK_DUTY)
    pack_id, _, task_id = key.partition("/")
    for pack in policy.packs:
        if pack.id == pack_id and pack.response_plan is not None:
            for task in pack.response_plan.tasks:
                if task.id == task_id:
                    return task.title
    return (o.action or key).split(". ")[0]


def _status(o: Obligation) -> str:
    if getattr(o, "held_at", None) is not None:
        return "held"
    return {"acknowledged": "done", "breached": "overdue"}.get(o.status.value, o.status.value)


def case_json(d: CaseDetails, policy: PolicySet) -> dict[str, Any]:
    c = d.case
    return {
        "id": c.id,
        "reference": c.reference,
        "phase": c.phase.value,
        "severity": c.severity,
        "because": c.because,
        "owner": c.owner,
        "owner_role": c.owner_role,
        "ai_system": c.ai_system,
        "plans": c.plans,
        "rules": c.rules,
        "opened_at": c.opened_at.isoformat(),
        "opened_by": c.opened_by,
        "acknowledged_at": c.acknowledged_at.isoformat() if c.acknowledged_at else None,
        "acknowledged_by": c.acknowledged_by,
        "closed_at": c.closed_at.isoformat() if c.closed_at else None,
        "reports": [r.reference for r in d.reports],
        "page": [
            {
                "id": o.id,
                "level": o.level,
                "role": o.role,
                "recipients": [r["email"] for r in o.recipients],
                "due_at": o.due_at.isoformat(),
                "status": o.status.value,
                "acknowledged_by": o.acknowledged_by,
            }
            for o in d.page
        ],
        "tasks": [
            {
                "id": o.id,
                "title": task_title(o, policy),
                "action": o.action,
                "owner_role": o.role,
                "status": _status(o),
                "due_at": o.due_at.isoformat(),
                "required": o.duty not in c.optional_tasks,
                "done_by": o.acknowledged_by,
                "citations": o.citations,
            }
            for o in d.tasks
        ],
        "clocks": [_clock_json(o) for o in d.clocks],
    }


def _clock_json(o: Obligation) -> dict[str, Any]:
    held_at = getattr(o, "held_at", None)
    out: dict[str, Any] = {
        "id": o.id,
        "rule": o.rules[0] if o.rules else "",
        "role": o.role,
        "due_at": o.due_at.isoformat(),
        "status": o.status.value,
        "acknowledged_by": o.acknowledged_by,
    }
    if held_at is not None:
        out["held"] = {
            "since": held_at.isoformat(),
            "reason": getattr(o, "hold_reason", None),
            "by": getattr(o, "held_by", None),
        }
    return out
