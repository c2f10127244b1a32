"""Mail that comes in: reports and replies by email.

Both ways in (a mailbox read over IMAP, a receiver mail is relayed to) hand each message's raw
bytes to one `Handler`, which stores it before answering; they know nothing of reports.
"""

from collections.abc import Awaitable, Callable
from typing import Literal

Verdict = Literal["processed", "quarantined"]
Handler = Callable[[bytes], Awaitable[Verdict]]
