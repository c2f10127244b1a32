"""The secret in an acknowledgement link: an HMAC of the obligation id, so only the people
emailed can acknowledge."""

from __future__ import annotations

import hashlib
import hmac


def ack_token(secret: bytes, obligation_id: str) -> str:
    return hmac.new(secret, f"ack:{obligation_id}".encode(), hashlib.sha256).hexdigest()[:32]


def ack_token_valid(secret: bytes, obligation_id: str, token: str) -> bool:
    return hmac.compare_digest(ack_token(secret, obligation_id), token)
