"""A notice turned into bytes for SMTP is exactly what the email library and aiosmtplib make of it.

`notifications.render.as_bytes` writes short ASCII headers directly instead of folding them
(the slow part); these tests hold it to the library's output.
"""

from __future__ import annotations

from email.errors import HeaderParseError
from email.policy import Compat32, compat32

from aiosmtplib.email import flatten_message
from hypothesis import given
from hypothesis import strategies as st

from notifications.outbound.render import SMTP_POLICY, as_bytes, build_message, render

LIBRARY = compat32.clone(linesep="\r\n")
NAMES = ["Subject", "To", "From", "Message-ID", "References", "Content-Type", "X-A"]


def folded(policy: Compat32, name: str, value: str) -> bytes | str:
    """The header as bytes, or the library's refusal (e.g. of a value with a header inside)."""
    try:
        return policy.fold_binary(name, value)
    except HeaderParseError as exc:
        return f"refused: {exc}"


@given(name=st.sampled_from(NAMES), value=st.text(max_size=200))
def test_any_header_comes_out_as_the_library_folds_it(name: str, value: str) -> None:
    assert folded(SMTP_POLICY, name, value) == folded(LIBRARY, name, value)


@given(
    name=st.sampled_from(NAMES),
    value=st.text(st.characters(min_codepoint=9, max_codepoint=126), max_size=90),
)
def test_ascii_headers_around_the_line_length_come_out_as_the_library_folds_them(
    name: str, value: str
) -> None:
    assert folded(SMTP_POLICY, name, value) == folded(LIBRARY, name, value)


def notice(subject: str, recipients: list[str]):  # type: ignore[no-untyped-def]
    rendered = render(
        "obligation",
        {
            "purpose": "notice", "late": False, "is_late": False, "reference": "AI-2026-000042",
            "kind_words": "harm", "title": "Chatbot told residents they were not eligible",
            "description": "Three residents were wrongly told they could not apply.",
            "show_details": True, "data_categories": "", "ai_system": "Benefits Chatbot",
            "ai_system_unapproved": False,
            "department": "Parks", "reporter_name": "Ana Ruiz",
            "reporter_email": "ana.ruiz@city.example",
            "discovered_local": "Mon 2026-03-09 09:00 PDT", "due_local": "Tue 2026-03-10 09:00 PDT",
            "due_local_short": "Tue 09:00", "role_words": "the City Digital Privacy Officer (CDPO)",
            "rule_title": "san-jose/harm-report", "citation": "004.txt, “Policy”: “Report harm.”",
            "interpretation": None, "escalated_from": "", "action": "", "citation_url": "",
            "holidays": "",
            "ack_url": "http://localhost:8080/ack/0b5b?t=abc",
        },
    )  # fmt: skip
    return build_message(
        sender="AI Incidents <ai-incidents@city.example>",
        recipients=recipients,
        subject=subject or rendered.subject,
        text=rendered.text + "\nZoë — ünïcode in the body\n",
        html=rendered.html,
        message_id="<notice-42@city.example>",
        thread_id="<report-42@city.example>",
    )


def test_a_notice_is_sent_as_aiosmtplib_would_send_it() -> None:
    many = [f"person.number.{i}@departments.city.example" for i in range(6)]
    for message in (
        notice("", ["cdpo@city.example"]),
        notice("Préavis : rapport d’incident d’IA à examiner avant mardi", many),
        notice("A subject long enough to be folded " * 4, many),
    ):
        # aiosmtplib writes "\n" and turns every line end into CRLF as it sends
        assert as_bytes(message) == flatten_message(message).replace(b"\n", b"\r\n")
