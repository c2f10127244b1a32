"""The secret in an acknowledgement link: an HMAC of the obligation id and the one person the
email went to, so the link acknowledges as that person and nobody else."""

from __future__ import annotations

import hashlib
import hmac


def ack_token(secret: bytes, obligation_id: str, email: str | None = None) -> str:
    """The link's token for `email`; without one, the token links sent before links named
    their recipient carry (still honoured for an obligation with a single recipient)."""
    message = f"ack:{obligation_id}" if email is None else f"ack:{obligation_id}:{email.lower()}"
    return hmac.new(secret, message.encode(), hashlib.sha256).hexdigest()[:32]


def ack_token_valid(
    secret: bytes, obligation_id: str, token: str, email: str | None = None
) -> bool:
    return hmac.compare_digest(ack_token(secret, obligation_id, email), token)
