"""Reading reports that arrive by email: `incidents.intake.message`.

The parser must read what real mail programs send (Spanish in latin-1, HTML-only mail, broken
charset labels), tell robots from people before the service answers, and never fail with
anything but MalformedMessage, whatever the bytes.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from incidents.intake.message import (
    InboundMessage,
    MalformedMessage,
    discovered_in_text,
    no_answer_reason,
    parse,
    references_in_subject,
    sanitised_filename,
)

SERVICE = "ai-incidents@city.example"


def mail(headers: str, body: str = "", *, encoding: str = "utf-8") -> bytes:
    """A message from header lines and a body, with CRLF line ends as SMTP delivers them."""
    text = headers.strip("\n") + "\n\n" + body
    return text.replace("\n", "\r\n").encode(encoding)


def simple(**extra: str) -> InboundMessage:
    """A person's plain message, with the extra headers given (X_Autoreply= as X-Autoreply)."""
    lines = "".join(f"{name.replace('_', '-')}: {value}\n" for name, value in extra.items())
    return parse(
        mail(
            "From: Ana Ruiz <ana.ruiz@parks.city.example>\n"
            "To: ai-incidents@city.example\n"
            "Subject: The chatbot refused residents\n" + lines,
            "It told three residents they were not eligible.\n",
        )
    )


# --- reading --------------------------------------------------------------------------------------


def test_a_simple_text_message_is_read() -> None:
    raw = mail(
        "Return-Path: <Ana.Ruiz@Parks.City.Example>\n"
        'From: "Ruiz,  Ana" <Ana.Ruiz@Parks.City.Example>\n'
        "To: ai-incidents@city.example\n"
        "Subject: The chatbot\n  refused   residents\n"
        "Date: Tue, 01 Dec 2026 09:30:00 -0800\n"
        "Message-ID: <CAF123@mail.example>\n",
        "Hello,\n\nIt told three residents they were not eligible.\n\n",
    )
    message = parse(raw)
    assert message.raw == raw
    assert message.message_id == "<CAF123@mail.example>"
    assert message.subject == "The chatbot refused residents"
    assert message.text == "Hello,\n\nIt told three residents they were not eligible."
    assert message.sender_email == "ana.ruiz@parks.city.example"
    assert message.sender_name == "Ruiz, Ana"
    assert message.return_path == "ana.ruiz@parks.city.example"
    assert message.date == datetime(2026, 12, 1, 17, 30, tzinfo=UTC)
    assert message.date is not None and message.date.utcoffset() == timedelta(0)
    assert message.in_reply_to == () and message.references == ()
    assert message.auto_submitted is None and message.precedence is None
    assert message.list_id is None
    assert message.attachments == ()
    assert message.header("to") == "ai-incidents@city.example"


def test_a_message_without_an_id_gets_one_made_from_its_bytes() -> None:
    raw = mail("From: ana@city.example\nSubject: hi\n", "body")
    digest = hashlib.sha256(raw).hexdigest()
    assert parse(raw).message_id == f"<sha256-{digest}@inbound.invalid>"
    assert parse(raw).message_id == parse(raw).message_id
    assert parse(raw + b"x").message_id != parse(raw).message_id


def test_missing_or_unreadable_headers_read_as_nothing() -> None:
    message = parse(mail("From: not an address\nDate: yesterday, roughly\n", "body"))
    assert message.sender_email is None
    assert message.subject == ""
    assert message.date is None
    assert message.return_path is None


def test_a_date_without_a_known_zone_is_taken_as_utc() -> None:
    message = parse(mail("From: a@b.example\nDate: Tue, 01 Dec 2026 09:30:00 -0000\n", "x"))
    assert message.date == datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def test_the_plain_text_of_a_multipart_alternative_message_is_chosen() -> None:
    raw = mail(
        "From: ana@city.example\nSubject: alt\nMIME-Version: 1.0\n"
        'Content-Type: multipart/alternative; boundary="b1"\n',
        "--b1\n"
        "Content-Type: text/plain; charset=utf-8\n\n"
        "The plain version.\n"
        "--b1\n"
        "Content-Type: text/html; charset=utf-8\n\n"
        "<p>The <b>HTML</b> version.</p>\n"
        "--b1--\n",
    )
    message = parse(raw)
    assert message.text == "The plain version."
    assert message.attachments == ()


def test_an_html_only_message_is_turned_into_readable_text() -> None:
    raw = mail(
        "From: ana@city.example\nSubject: html\nContent-Type: text/html; charset=utf-8\n",
        "<html><head><title>Page title</title>"
        "<style>p { color: red }</style></head>\n"
        "<body><script>var secret = 'do not show';</script>"
        "<p>First paragraph:<br>second   line &amp; more</p>\n"
        "<div>Caf&eacute; &lt;closed&gt; &#8212; today</div>"
        "<ul><li>one</li><li>two</li></ul></body></html>",
    )
    text = parse(raw).text
    assert text == ("First paragraph:\nsecond line & more\n\nCafé <closed> — today\n\n- one\n- two")
    for leftover in ("<p>", "<br>", "secret", "color", "Page title", "&amp;"):
        assert leftover not in text


def test_spanish_in_latin_1_quoted_printable_with_an_encoded_subject() -> None:
    raw = mail(
        "From: =?iso-8859-1?Q?Jos=E9_Pe=F1a?= <jose.pena@city.example>\n"
        "Subject: =?iso-8859-1?Q?=BFPor_qu=E9_el_asistente_neg=F3_la_ayuda=3F?=\n"
        'Content-Type: text/plain; charset="iso-8859-1"\n'
        "Content-Transfer-Encoding: quoted-printable\n",
        "=BFPor qu=E9 el asistente le dijo a la se=F1ora que no pod=EDa solicitar?=\n"
        " Ma=F1ana ser=E1 tarde.\n",
    )
    message = parse(raw)
    assert message.subject == "¿Por qué el asistente negó la ayuda?"
    assert message.sender_name == "José Peña"
    assert message.text == (
        "¿Por qué el asistente le dijo a la señora que no podía solicitar? Mañana será tarde."
    )


def test_spanish_in_latin_1_sent_8bit() -> None:
    raw = mail(
        "From: jose@city.example\n"
        "Subject: =?ISO-8859-1?Q?Se=F1ora_sin_respuesta?=\n"
        "Content-Type: text/plain; charset=iso-8859-1\n"
        "Content-Transfer-Encoding: 8bit\n",
        "¿Quién revisa las respuestas? Ya está.\n",
        encoding="latin-1",
    )
    message = parse(raw)
    assert message.subject == "Señora sin respuesta"
    assert message.text == "¿Quién revisa las respuestas? Ya está."


@pytest.mark.parametrize("label", ["unknown-8bit", "iso-8859-15x", "utf8mb4", "rot13", '""'])
def test_a_bad_charset_label_falls_back_instead_of_failing(label: str) -> None:
    raw = mail(
        f"From: a@city.example\nSubject: x\nContent-Type: text/plain; charset={label}\n"
        "Content-Transfer-Encoding: 8bit\n",
        "Se\xf1ora, ma\xf1ana \x93quoted\x94",
        encoding="latin-1",
    )
    assert parse(raw).text == "Señora, mañana “quoted”"


def test_utf_8_sent_with_a_bad_label_is_still_read_as_utf_8() -> None:
    raw = mail(
        "From: a@city.example\nSubject: x\nContent-Type: text/plain; charset=unknown-8bit\n",
        "¿Señora? — sí",
    )
    assert parse(raw).text == "¿Señora? — sí"


@pytest.mark.parametrize(
    ("label", "body", "text"),
    [
        ("us-ascii", "Señora".encode(), "Señora"),
        ("", "Señora".encode(), "Señora"),
        ("", b"Se\xf1ora", "Señora"),
        ("utf-8", b"Se\xf1ora \x93hoy\x94", "Señora “hoy”"),
        ("utf-8", "Señora ".encode() + b"\xff", "Señora \ufffd"),
        ("iso-8859-1", b"caf\xe9 \x81", "café \x81"),
        ("windows-1251", "Привет".encode("cp1251"), "Привет"),
    ],
)
def test_eight_bit_text_is_decoded_by_its_label_or_the_likeliest_guess(
    label: str, body: bytes, text: str
) -> None:
    content_type = f"Content-Type: text/plain; charset={label}\r\n" if label else ""
    head = f"From: a@city.example\r\nSubject: x\r\n{content_type}\r\n".encode()
    assert parse(head + body).text == text


def test_raw_utf_8_headers_are_read() -> None:
    raw = mail('From: "Zoë Núñez" <zoe@city.example>\nSubject: Niño ¿qué?\n', "x")
    message = parse(raw)
    assert message.subject == "Niño ¿qué?"
    assert message.sender_name == "Zoë Núñez"


def test_a_pdf_attachment_is_kept_with_its_digest_and_a_safe_name() -> None:
    pdf = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"
    encoded = base64.encodebytes(pdf).decode()
    raw = mail(
        'From: ana@city.example\nSubject: evidence\nContent-Type: multipart/mixed; boundary="m"\n',
        "--m\n"
        "Content-Type: text/plain; charset=utf-8\n\n"
        "See the screenshot.\n"
        "--m\n"
        'Content-Type: application/pdf; name="chat.pdf"\n'
        'Content-Disposition: attachment; filename="../../etc/passwd"\n'
        "Content-Transfer-Encoding: base64\n\n" + encoded + "--m--\n",
    )
    message = parse(raw)
    assert message.text == "See the screenshot."
    (attachment,) = message.attachments
    assert attachment.filename == "passwd"
    assert attachment.content_type == "application/pdf"
    assert attachment.data == pdf
    assert attachment.sha256 == hashlib.sha256(pdf).hexdigest()


def test_which_parts_are_attachments() -> None:
    raw = mail(
        'From: ana@city.example\nSubject: parts\nContent-Type: multipart/mixed; boundary="m"\n',
        "--m\nContent-Type: text/plain\n\nthe body\n"
        "--m\nContent-Type: text/plain\nContent-Disposition: inline\n\nmore inline text\n"
        "--m\nContent-Type: text/csv\nContent-Disposition: attachment; filename=log.csv\n\na,b\n"
        "--m\nContent-Type: image/png; name=shot.png\n\nPNGDATA\n"
        "--m\nContent-Type: image/png\nContent-ID: <logo>\n\nNO NAME\n"
        "--m\nContent-Type: application/octet-stream\nContent-Disposition: attachment\n\nBIN\n"
        "--m--\n",
    )
    message = parse(raw)
    assert message.text == "the body"
    assert [(a.filename, a.content_type, a.data) for a in message.attachments] == [
        ("log.csv", "text/csv", b"a,b"),
        ("shot.png", "image/png", b"PNGDATA"),
        ("attachment", "application/octet-stream", b"BIN"),
    ]


@pytest.mark.parametrize(
    ("given_name", "safe"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\ana\\report.pdf", "report.pdf"),
        ("evil\u202etxt.exe", "eviltxt.exe"),
        ("line\r\nbreak\x00.pdf", "linebreak.pdf"),
        ("..", "attachment"),
        ("/", "attachment"),
        ("  .hidden  ", "hidden"),
        ("", "attachment"),
        (None, "attachment"),
        ("informe año.pdf", "informe año.pdf"),
    ],
)
def test_filenames_are_sanitised(given_name: str | None, safe: str) -> None:
    assert sanitised_filename(given_name) == safe


def test_a_very_long_filename_keeps_its_extension() -> None:
    name = sanitised_filename("x" * 500 + ".pdf")
    assert len(name) == 200 and name.endswith(".pdf")


def test_a_forwarded_email_is_kept_whole_as_an_attachment() -> None:
    raw = mail(
        "From: ana@city.example\nSubject: Fwd: odd reply\n"
        'Content-Type: multipart/mixed; boundary="m"\n',
        "--m\nContent-Type: text/plain\n\nForwarding the chatbot's reply.\n"
        "--m\nContent-Type: message/rfc822\nContent-Disposition: attachment\n\n"
        "From: bot@vendor.example\nSubject: Your request\n\nYou are not eligible.\n"
        "--m--\n",
    )
    message = parse(raw)
    assert message.text == "Forwarding the chatbot's reply."
    (forwarded,) = message.attachments
    assert forwarded.content_type == "message/rfc822"
    assert b"You are not eligible." in forwarded.data
    assert b"Subject: Your request" in forwarded.data


def test_reply_headers_are_read_in_order() -> None:
    raw = mail(
        "From: ana@city.example\n"
        "Subject: Re: [AI-2026-000123] Chatbot\n"
        "In-Reply-To: <notice-42@city.example>\n"
        "References: <report-42@city.example>\n"
        " <notice-41@city.example>\t<notice-42@city.example>\n",
        "Thanks.",
    )
    message = parse(raw)
    assert message.in_reply_to == ("<notice-42@city.example>",)
    assert message.references == (
        "<report-42@city.example>",
        "<notice-41@city.example>",
        "<notice-42@city.example>",
    )
    assert references_in_subject(message.subject) == ["AI-2026-000123"]


def test_ids_without_brackets_are_read_too() -> None:
    message = parse(mail("From: a@b.example\nIn-Reply-To: notice-42@city.example\n", "x"))
    assert message.in_reply_to == ("<notice-42@city.example>",)


@pytest.mark.parametrize(
    ("subject", "found"),
    [
        ("Re: [AI-2026-000123] Chatbot", ["AI-2026-000123"]),
        ("RE: Fwd: [ai-2026-000123] chatbot", ["AI-2026-000123"]),
        ("[AI-2026-000123] and [ AI-2027-1234567 ] and [ai-2026-000123]",
         ["AI-2026-000123", "AI-2027-1234567"]),
        ("AI-2026-000123 without brackets", []),
        ("[AI-26-000123] [AI-2026-12] [AI-2026-000123x]", []),
        ("", []),
    ],
)  # fmt: skip
def test_references_in_subject(subject: str, found: list[str]) -> None:
    assert references_in_subject(subject) == found


# --- when not to answer ---------------------------------------------------------------------------


def test_a_normal_message_may_be_answered() -> None:
    assert no_answer_reason(simple(), [SERVICE]) is None
    assert no_answer_reason(simple(Auto_Submitted="no"), [SERVICE]) is None
    assert no_answer_reason(simple(Precedence="first-class"), [SERVICE]) is None
    assert no_answer_reason(simple(X_Auto_Response_Suppress="DR, RN"), [SERVICE]) is None


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ({"Auto_Submitted": "auto-replied"}, "Auto-Submitted"),
        ({"Auto_Submitted": "Auto-Generated (daily digest)"}, "Auto-Submitted"),
        ({"Precedence": "bulk"}, "bulk"),
        ({"Precedence": "JUNK"}, "junk"),
        ({"Precedence": "list"}, "list"),
        ({"List_Id": "Residents <residents.lists.city.example>"}, "List-Id"),
        ({"List_Unsubscribe": "<mailto:leave@lists.city.example>"}, "List-Unsubscribe"),
        ({"Return_Path": "<>"}, "null sender"),
        ({"X_Autoreply": "yes"}, "automatic reply"),
        ({"X_Autorespond": "Out of office"}, "automatic reply"),
        ({"X_Auto_Response_Suppress": "All"}, "X-Auto-Response-Suppress"),
        ({"X_Auto_Response_Suppress": "DR, OOF, AutoReply"}, "X-Auto-Response-Suppress"),
    ],
)
def test_automatic_mail_is_not_answered(extra: dict[str, str], words: str) -> None:
    message = simple(**extra)
    reason = no_answer_reason(message, [SERVICE])
    assert reason is not None and words in reason


def test_a_message_from_the_service_itself_is_not_answered() -> None:
    message = parse(mail("From: AI Incidents <AI-Incidents@City.Example>\nSubject: x\n", "x"))
    reason = no_answer_reason(message, [" ai-incidents@city.example "])
    assert reason is not None and "this service" in reason
    assert no_answer_reason(message, ["someone-else@city.example"]) is None


def test_a_message_without_a_sender_is_not_answered() -> None:
    message = parse(mail("Subject: who sent this?\n", "x"))
    assert message.sender_email is None
    reason = no_answer_reason(message, [SERVICE])
    assert reason is not None and "no sender" in reason


def test_the_null_sender_is_read_as_an_empty_return_path() -> None:
    assert simple(Return_Path="<>").return_path == ""
    assert simple(Return_Path=" < > ").return_path == ""
    assert simple().return_path is None


# --- when the harm was discovered -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "when"),
    [
        ("Discovered: 2026-12-01 14:30", datetime(2026, 12, 1, 14, 30)),
        ("Hello\n  discovered at: 2026-12-01T14:30:00Z\nBye",
         datetime(2026, 12, 1, 14, 30, tzinfo=UTC)),
        ("DESCUBIERTO: 2026-12-01 9:05", datetime(2026, 12, 1, 9, 5)),
        ("Descubierto: 2026-12-01 14:30 -05:00",
         datetime(2026, 12, 1, 14, 30, tzinfo=timezone(timedelta(hours=-5)))),
        ("Discovered on: 2026-12-01T14:30+0100 (more or less)",
         datetime(2026, 12, 1, 14, 30, tzinfo=timezone(timedelta(hours=1)))),
        ("Discovered: 2026-12-01", datetime(2026, 12, 1, 0, 0)),
        ("Discovered: 2026-12-01 2:30 pm", datetime(2026, 12, 1, 14, 30)),
        ("Discovered: 2026-12-01 12:05 A.M. UTC", datetime(2026, 12, 1, 0, 5, tzinfo=UTC)),
        ("Discovered: last Tuesday\nDiscovered: 2026-12-02 08:00", datetime(2026, 12, 2, 8, 0)),
    ],
)  # fmt: skip
def test_when_the_harm_was_discovered(text: str, when: datetime) -> None:
    found = discovered_in_text(text)
    assert found == when
    assert found is not None and (found.tzinfo is None) == (when.tzinfo is None)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "We discovered: 2026-12-01 14:30",  # not at the start of a line
        "Discovered: yesterday",
        "Discovered: 2026-13-01 14:30",
        "Discovered: 2026-12-01 25:30",
        "Discovered: 2026-12-01 14:30 +25:00",
        "Discovered: 2026-12-01 14:30:00ZZ",
        "Discovered: 2026-12-01 13:00 pm",
        "Discovered: 2026-12-01 14:30pmx",
    ],
)
def test_no_readable_discovery_line(text: str) -> None:
    assert discovered_in_text(text) is None


# --- what is not an email -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw", [b"", b"\r\n  \r\n", b"\x00\xff\xfe garbage", b"just some words\n\nand more"]
)
def test_bytes_that_are_not_an_email_are_refused_with_a_reason(raw: bytes) -> None:
    with pytest.raises(MalformedMessage) as refused:
        parse(raw)
    assert refused.value.reason
    assert str(refused.value) == refused.value.reason


def test_headers_with_no_sender_subject_or_text_are_refused() -> None:
    with pytest.raises(MalformedMessage, match="no sender, no subject and no text"):
        parse(b"X-Thing: y\r\n\r\n")


def test_a_message_with_only_a_subject_is_read() -> None:
    assert parse(b"Subject: just this\r\n\r\n").subject == "just this"


def test_deeply_nested_parts_are_refused_not_crashed_on() -> None:
    depth = 2000
    opening = "".join(
        f'Content-Type: multipart/mixed; boundary="b{i}"\n\n--b{i}\n' for i in range(depth)
    )
    raw = ("From: a@b.example\nSubject: deep\n" + opening + "\nbottom\n").encode()
    try:
        message = parse(raw)
    except MalformedMessage as refused:
        assert refused.reason
    else:
        assert message.sender_email == "a@b.example"


# --- whatever the bytes ---------------------------------------------------------------------------

HEADER_NAMES = [
    "From", "Subject", "Date", "Message-ID", "In-Reply-To", "References", "Return-Path",
    "Auto-Submitted", "Precedence", "List-Id", "Content-Type", "Content-Transfer-Encoding",
    "Content-Disposition", "MIME-Version", "X-Autoreply",
]  # fmt: skip
HEADER_VALUES = [
    "", "<>", "<a@b>", "a@b", '"Ana" <ana@city.example>', "=?utf-8?b?w7E=?=", "=?x?q?=FF?=",
    "=?utf-8?B?not base64!?=", "multipart/mixed; boundary=b", "multipart/alternative",
    "text/plain; charset=unknown-8bit", "text/html; charset*=utf-8''x", "base64",
    "quoted-printable", "attachment; filename=../x", "message/rfc822",
    "Tue, 1 Dec 2026 25:99 +9999",
    "Undisclosed recipients:;", "(comment) <a@[127.0.0.1]>", '"\\"@x', "=?utf-8?q?a?= <@>",
]  # fmt: skip
header_values = st.one_of(st.sampled_from(HEADER_VALUES), st.text(max_size=60))
bodies = st.one_of(
    st.text(max_size=300),
    st.lists(
        st.one_of(
            st.sampled_from(["--b", "--b--", "", "Content-Type: text/html", "<p>x</p>", "=E9"]),
            st.text(max_size=40),
        ),
        max_size=12,
    ).map("\n".join),
)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_any_bytes_give_a_message_or_a_malformed_message(raw: bytes) -> None:
    try:
        message = parse(raw)
    except MalformedMessage as refused:
        assert refused.reason
    else:
        assert isinstance(message, InboundMessage)


@settings(max_examples=200, deadline=None)
@given(
    headers=st.lists(
        st.tuples(
            st.one_of(st.sampled_from(HEADER_NAMES), st.text(min_size=1, max_size=12)),
            header_values,
        ),
        max_size=10,
    ),
    body=bodies,
    encoding=st.sampled_from(["utf-8", "latin-1"]),
    line_end=st.sampled_from(["\n", "\r\n"]),
)
def test_any_headers_and_body_give_a_message_or_a_malformed_message(
    headers: list[tuple[str, str]], body: str, encoding: str, line_end: str
) -> None:
    text = "".join(f"{name}: {value}\n" for name, value in headers) + "\n" + body
    raw = text.replace("\n", line_end).encode(encoding, "replace")
    try:
        message = parse(raw)
    except MalformedMessage as refused:
        assert refused.reason
    else:
        assert message.message_id.startswith("<") and message.message_id.endswith(">")
        assert message.subject == " ".join(message.subject.split())
        assert message.text == message.text.strip()
        assert message.sender_email is None or message.sender_email == message.sender_email.lower()
        assert message.date is None or message.date.utcoffset() == timedelta(0)
        for attachment in message.attachments:
            assert attachment.sha256 == hashlib.sha256(attachment.data).hexdigest()
            assert "/" not in attachment.filename and "\\" not in attachment.filename
            assert attachment.filename
        no_answer_reason(message, [SERVICE])


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_references_and_discovery_are_read_from_any_text(text: str) -> None:
    for reference in references_in_subject(text):
        assert reference == reference.upper() and reference.startswith("AI-")
    found = discovered_in_text(text)
    assert found is None or isinstance(found, datetime)


@settings(max_examples=200, deadline=None)
@given(
    label=st.sampled_from(["Discovered: ", "discovered at:", "Descubierto:"]),
    value=st.text(st.sampled_from("0123456789-:TZ+ .UTC"), max_size=30),
)
def test_discovery_lines_with_odd_values_never_fail(label: str, value: str) -> None:
    found = discovered_in_text(f"Report\n{label}{value}\n")
    assert found is None or isinstance(found, datetime)
