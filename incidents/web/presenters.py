"""How stored reports and obligations look to callers.

An obligation's JSON comes from the same serializer as `incidents policy explain --json`
(incidents.policy.presentation), so a preview and the real thing have one shape.
"""

from __future__ import annotations

from typing import Any

from incidents.kernel.vocabulary import Role, role_name
from incidents.kernel.wording import local_time
from incidents.obligations.model import Obligation
from incidents.policy import Citation, Person, PlannedObligation, presentation
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
        "reporter": {
            "name": r.reporter_name,
            "email": r.reporter_email,
            "department": r.reporter_department,
        },
        "ai_system": r.ai_system,
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
