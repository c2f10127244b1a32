"""Identifiers: random ones for new things, derived ones for things caused by something stable."""

from __future__ import annotations

import uuid

# Ids derived from something stable (a clock's id) use this namespace, so a replayed clock
# firing carries the same event id and consumers drop it as already handled.
NAMESPACE = uuid.UUID("6f1c9a52-2f7d-4a9b-9d55-0c1f7f3f9e10")


def new_id() -> str:
    """A fresh random id (a UUID, as text)."""
    return str(uuid.uuid4())


def stable_id(*parts: str) -> str:
    """The same id every time for the same parts: for an event caused by something stable."""
    return str(uuid.uuid5(NAMESPACE, ":".join(parts)))
