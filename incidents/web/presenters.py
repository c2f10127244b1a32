"""How reports and obligations look to callers: one shape for the API, the pages and `explain`."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from incidents.model import Obligation, Report


def obligation_json(o: Obligation) -> dict[str, Any]:
    cites = o.citations or []
    first = cites[0] if cites else {}
    return {
        "id": o.id,
        "role": o.role,
        "recipients": [r["email"] for r in o.recipients],
        "due_at": o.due_at.isoformat(),
        "due_at_local": o.due_at.astimezone(ZoneInfo(o.timezone)).isoformat(),
        "timezone": o.timezone,
        "status": o.status,
        "rule": o.rules[0] if o.rules else None,
        "rules": o.rules,
        "citation": f"{first.get('file')}, “{first.get('section')}”: “{first.get('quote')}”",
        "citations": cites,
        "interpretation": o.interpretation,
        "late": o.late,
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
