"""What a deployment changes in the packs: its own readings of vague words.

A city's counsel may read "immediately" as one hour where the pack says four; that choice lives in
the deployment's settings (INCIDENTS_INTERPRETATIONS), not in the pack, and every deadline built
from it says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta

from pydantic import TypeAdapter, ValidationError

from incidents.policy.engine import describe
from incidents.policy.loader import PolicyError
from incidents.policy.schema import Deadline, Interpretation, Pack

SETTING = "INCIDENTS_INTERPRETATIONS"

_DURATION: TypeAdapter[timedelta] = TypeAdapter(timedelta)


def parse_reading(key: str, value: str | int) -> Deadline:
    """`PT4H` (an ISO 8601 duration of real time) or `2` (end of the 2nd business day)."""
    text = str(value).strip()
    if text.isdigit():
        return Deadline(business_days=int(text))
    if text.upper().startswith("P"):
        try:
            after = _DURATION.validate_python(text)
        except ValidationError:
            pass
        else:
            if after > timedelta(0):
                return Deadline(after=after)
    raise PolicyError(
        f"{SETTING}: {key!r} is set to {text!r}, which is neither an ISO 8601 duration such as "
        f"PT4H (4 hours) or P2D (2 days) nor a whole number of business days such as 1"
    )


def apply_interpretations(packs: Sequence[Pack], overrides: Mapping[str, str | int]) -> list[Pack]:
    """The packs with the deployment's readings in place of their own.

    A key naming a pack or word that is not active is an error: a misspelt override must not leave
    the pack's reading silently in force.
    """
    by_id = {p.id: p for p in packs}
    changed: dict[str, dict[str, Interpretation]] = {}
    for key, value in overrides.items():
        pack_id, dot, word = key.partition(".")
        if not dot or pack_id not in by_id:
            active = ", ".join(sorted(by_id)) or "none"
            raise PolicyError(
                f"{SETTING}: key {key!r} must be '<pack>.<word>' naming an active pack "
                f'(active: {active}), e.g. "san-jose.promptly"'
            )
        pack = by_id[pack_id]
        if word not in pack.interpretations:
            known = ", ".join(sorted(pack.interpretations)) or "none"
            raise PolicyError(
                f"{SETTING}: pack {pack_id!r} has no interpretation {word!r} (it has: {known})"
            )
        own = pack.interpretations[word]
        changed.setdefault(pack_id, dict(pack.interpretations))[word] = Interpretation(
            deadline=parse_reading(key, value),
            note=(
                f"overridden by this deployment ({SETTING}); the pack's own reading was "
                f"{describe(own.deadline)}"
            ),
        )
    return [
        p.model_copy(update={"interpretations": changed[p.id]}) if p.id in changed else p
        for p in packs
    ]
