"""Reading an email that came in: who sent it, what it says, what it answers, what it carries.

Everything here is a pure function of the message's bytes: no files, no network, no clock. The
parser is lenient, because people report harm from any mail program there is: a bad charset
label, a broken header or a missing Message-ID still gives a message. Only bytes that are not an
email at all raise `MalformedMessage`, and nothing else is ever raised by `parse`.
"""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import parseaddr, parsedate_to_datetime
from html.parser import HTMLParser
from typing import TypeVar

T = TypeVar("T")

_PARSER = BytesParser(policy=policy.default)


class MalformedMessage(ValueError):
    """A message that cannot be read as an email; `reason` says why in plain words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Attachment:
    """A file that came with the message."""

    filename: str  # no folders, no control characters; "attachment" when it had none
    content_type: str  # e.g. "application/pdf"
    data: bytes = field(repr=False)
    sha256: str  # hex digest of `data`


@dataclass(frozen=True)
class InboundMessage:
    """An email as the service reads it. `headers` keeps every header, in order, as written but
    unfolded (encoded words left as they are), for the rarer questions such as
    `no_answer_reason`'s."""

    raw: bytes = field(repr=False)
    message_id: str
    subject: str
    text: str
    sender_email: str | None
    sender_name: str
    return_path: str | None
    date: datetime | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    auto_submitted: str | None
    precedence: str | None
    list_id: str | None
    attachments: tuple[Attachment, ...]
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    def header(self, name: str) -> str | None:
        """The first header called `name` (any case), or None."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None


# --- parsing --------------------------------------------------------------------------------------


def parse(raw: bytes) -> InboundMessage:
    """Read an email from its bytes. Never raises anything but MalformedMessage, whatever the
    bytes."""
    raw = bytes(raw)
    if not raw.strip():
        raise MalformedMessage("the message is empty")
    try:
        message = _PARSER.parsebytes(raw)
        return _read(raw, message)
    except MalformedMessage:
        raise
    except RecursionError as exc:
        raise MalformedMessage("its parts are nested too deeply to read") from exc
    except Exception as exc:
        # The promise is "MalformedMessage or a message"; a library bug on hostile bytes must
        # reach the caller as a message it can refuse, not as a crash of the mail consumer.
        raise MalformedMessage(f"it could not be read ({type(exc).__name__})") from exc


def _read(raw: bytes, message: EmailMessage) -> InboundMessage:
    headers = tuple(
        (_clean_name(name), _unfold(_from_surrogates(str(value))))
        for name, value in message.raw_items()
    )
    if not headers:
        raise MalformedMessage("it has no header lines, so it is not an email")

    subject = _subject(message)
    sender_name, sender_email = _sender(message)
    body = _or_none(lambda: message.get_body(preferencelist=("plain", "html")))
    text = _body_text(body) if isinstance(body, Message) else ""
    attachments = tuple(_attachments(message))

    if sender_email is None and not subject and not text and not attachments:
        raise MalformedMessage("it has no sender, no subject and no text")

    return InboundMessage(
        raw=raw,
        message_id=_message_id(message, raw),
        subject=subject,
        text=text,
        sender_email=sender_email,
        sender_name=sender_name,
        return_path=_return_path(message),
        date=_date(message),
        in_reply_to=tuple(_ids(_raw(message, "in-reply-to"))),
        references=tuple(_ids(_raw(message, "references"))),
        auto_submitted=_lowered(_raw(message, "auto-submitted")),
        precedence=_lowered(_raw(message, "precedence")),
        list_id=_raw(message, "list-id") or None,
        attachments=attachments,
        headers=headers,
    )


def _or_none(read: Callable[[], T]) -> T | None:
    """`read()`, or None when the email library fails on the message."""
    try:
        return read()
    except Exception:
        # The library's header and MIME parsers have crashed on hostile input before (IndexError,
        # AttributeError, HeaderParseError...); one bad header must not lose a whole report.
        return None


def _from_surrogates(value: str) -> str:
    """Undo the parser's stand-ins for 8-bit bytes: as UTF-8 when they are UTF-8, else cp1252."""
    if not any("\udc80" <= char <= "\udcff" for char in value):
        return value
    data = value.encode("utf-8", "surrogateescape")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", "replace")


def _unfold(value: str) -> str:
    return re.sub(r"\r?\n(?=[ \t])", "", value).replace("\r", "").replace("\n", "").strip()


_CONTROL = frozenset({"Cc", "Cs", "Zl", "Zp"})


def _collapse(value: str) -> str:
    """Whitespace runs become one space; other control characters go."""
    value = "".join(" " if unicodedata.category(c) in _CONTROL else c for c in value)
    return " ".join(value.split())


def _clean_name(name: str) -> str:
    return _collapse(_from_surrogates(name))


def _raw(message: Message, name: str) -> str | None:
    """The first header called `name` as written (unfolded), without decoding encoded words."""
    wanted = name.lower()
    for key, value in message.raw_items():
        if key.lower() == wanted:
            return _unfold(_from_surrogates(str(value)))
    return None


def _lowered(value: str | None) -> str | None:
    return None if value is None else _collapse(value).lower()


_ADDRESS = re.compile(r"[^\s@<>()\[\]\\,;:\"]+@[^\s@<>()\[\]\\,;:\"]+")


def _plain_address(value: str) -> str | None:
    """`value` lower-cased when it looks like an address (local@domain, no spaces), else None."""
    value = value.strip()
    return value.lower() if _ADDRESS.fullmatch(value) else None


def _subject(message: EmailMessage) -> str:
    if _raw(message, "subject") is None:
        return ""
    decoded = _or_none(lambda: str(message["subject"]))
    return _collapse(decoded if decoded is not None else _raw(message, "subject") or "")


def _sender(message: EmailMessage) -> tuple[str, str | None]:
    """The From header's display name and address."""

    def from_library() -> tuple[str, str]:
        address = message["from"].addresses[0]
        return str(address.display_name), str(address.addr_spec)

    read = _or_none(from_library)
    if read is None:
        raw = _raw(message, "from")
        if raw is None:
            return "", None
        name, address = _or_none(lambda: parseaddr(raw)) or ("", "")
        name = _or_none(lambda: str(policy.default.header_factory("subject", name))) or name
        read = (name, address)
    name, address = read
    return _collapse(_from_surrogates(name)), _plain_address(_from_surrogates(address))


def _return_path(message: Message) -> str | None:
    raw = _raw(message, "return-path")
    if raw is None:
        return None
    inside = re.search(r"<([^<>]*)>", raw)
    if inside is not None:
        address = inside.group(1).strip()
        # The null sender: a bounce or other automatic report, which must never be answered.
        return "" if address == "" else _plain_address(address)
    return _plain_address(raw)


_ID = re.compile(r"<[^<>\s]+>")


def _ids(value: str | None) -> Iterator[str]:
    """Message ids as "<...>", in order; bare ones (some mail programs drop the brackets) too."""
    if not value:
        return
    found = _ID.findall(value)
    if found:
        yield from found
        return
    for token in value.split():
        if "@" in token and not set(token) & set("<>()\"'"):
            yield f"<{token}>"


def _message_id(message: Message, raw: bytes) -> str:
    found = next(_ids(_raw(message, "message-id")), None)
    if found is not None:
        return found
    # Made from the bytes, so the same message read twice gets the same id.
    return f"<sha256-{hashlib.sha256(raw).hexdigest()}@inbound.invalid>"


def _date(message: Message) -> datetime | None:
    raw = _raw(message, "date")
    if not raw:
        return None
    when = _or_none(lambda: parsedate_to_datetime(raw))
    if when is None:
        return None
    if when.tzinfo is None:
        # "-0000": the time is UTC and the sender's zone unknown (RFC 5322 section 3.3).
        return when.replace(tzinfo=UTC)
    return _or_none(lambda: when.astimezone(UTC))


# --- the body -------------------------------------------------------------------------------------


def _decode(data: bytes, charset: str | None) -> str:
    """Text from bytes in the declared charset, falling back rather than failing."""
    candidates = []
    label = (charset or "").strip().strip("\"'").lower()
    if label in {"iso-8859-1", "iso8859-1", "latin-1", "latin1"}:
        # Mail programs label cp1252 as latin-1 (WHATWG decodes it so too); cp1252 prints the
        # curly quotes and euro signs that latin-1 would make control characters.
        candidates.append("cp1252")
    if label and label not in {"us-ascii", "ascii"}:
        candidates.append(label)
    # Unlabelled or "ascii" 8-bit text is nowadays almost always UTF-8, else Windows' cp1252.
    candidates.append("utf-8")
    for candidate in candidates:
        try:
            return data.decode(candidate)
        except Exception:
            # Unknown labels (LookupError), wrong ones (UnicodeError) and codecs that are not text
            # at all ("rot13", "hex": LookupError) all mean: try the next guess.
            continue
    # Mostly UTF-8 with a few broken bytes keeps its accents; anything else reads as cp1252.
    if _UTF8_SEQUENCE.search(data):
        return data.decode("utf-8", "replace")
    return data.decode("cp1252", "replace")


_UTF8_SEQUENCE = re.compile(rb"[\xc2-\xf4][\x80-\xbf]+")


def _payload(part: Message) -> bytes | None:
    """The part's content with its transfer encoding (base64, quoted-printable) undone."""
    data = _or_none(lambda: part.get_payload(decode=True))
    return data if isinstance(data, bytes) else None


def _part_text(part: Message) -> str:
    data = _payload(part)
    if data is None:
        return ""
    charset = _or_none(part.get_content_charset)
    return _decode(data, charset if isinstance(charset, str) else None)


def _body_text(part: Message) -> str:
    text = _part_text(part)
    if _or_none(part.get_content_type) == "text/html":
        text = html_to_text(text)
    return _tidy(text)


def _tidy(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = [line.rstrip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


_BLOCKS = frozenset(
    {
        "p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "table", "tr", "blockquote",
        "pre", "section", "article", "header", "footer", "address", "dl", "dt", "dd", "form",
        "fieldset", "figure", "hr", "main", "nav", "aside",
    }
)  # fmt: skip
_HIDDEN = frozenset({"script", "style", "title", "template", "head"})


class _TextMaker(HTMLParser):
    """HTML to readable text: paragraphs and line breaks kept, scripts and styles dropped."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.pieces: list[str] = []
        self.hidden = 0
        self.pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body":
            # An unclosed <title> or <head> must not hide the whole body.
            self.hidden = 0
        elif tag in _HIDDEN:
            self.hidden += 1
        elif tag == "br":
            self.pieces.append("\n")
        elif tag == "li":
            self.pieces.append("\n- ")
        elif tag in {"td", "th"}:
            self.pieces.append(" ")
        elif tag in _BLOCKS:
            self.pieces.append("\n\n")
        if tag == "pre":
            self.pre += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in _BLOCKS:
            self.pieces.append("\n\n")
        if tag == "pre":
            self.pre = max(0, self.pre - 1)

    def handle_data(self, data: str) -> None:
        if self.hidden:
            return
        if self.pre:
            self.pieces.append(data)
        else:
            self.pieces.append(re.sub(r"\s+", " ", data))


def html_to_text(markup: str) -> str:
    """Readable text of an HTML body: paragraphs and line breaks kept, scripts, styles and tags
    gone, entities decoded."""
    maker = _TextMaker()
    try:
        maker.feed(markup)
        maker.close()
        text = "".join(maker.pieces)
    except Exception:
        # HTMLParser has asserted on odd markup in some Python versions; crude text beats none.
        text = html.unescape(re.sub(r"<[^>]*>", " ", markup))
    # Spaces left at the edges of lines by tags and collapsed whitespace.
    text = re.sub(r"[ \t]*\n[ \t]*", "\n", text)
    return _tidy(text)


# --- attachments ----------------------------------------------------------------------------------


def _leaves(message: Message) -> Iterator[Message]:
    """The message's parts that hold content, without recursion (nesting can be hostile)."""
    stack = [message]
    while stack:
        part = stack.pop()
        if _or_none(part.get_content_maintype) == "multipart":
            payload = _or_none(part.get_payload)
            children = payload if isinstance(payload, list) else []
            stack.extend(reversed([child for child in children if isinstance(child, Message)]))
        else:
            yield part


def _attachments(message: Message) -> Iterator[Attachment]:
    for part in _leaves(message):
        content_type = _or_none(part.get_content_type) or "application/octet-stream"
        disposition = _or_none(part.get_content_disposition)
        filename = _or_none(part.get_filename)
        filename = filename if isinstance(filename, str) else None
        if content_type == "message/rfc822":
            # A forwarded email: kept whole, as the evidence it is.
            data = _embedded_bytes(part)
        elif disposition == "attachment" or (
            filename is not None and not content_type.startswith("text/")
        ):
            data = _payload(part)
        else:
            continue
        if data is None:
            continue
        yield Attachment(
            filename=sanitised_filename(filename),
            content_type=content_type,
            data=data,
            sha256=hashlib.sha256(data).hexdigest(),
        )


def _embedded_bytes(part: Message) -> bytes | None:
    inner = _or_none(lambda: part.get_payload(0))
    if not isinstance(inner, Message):
        return None
    return _or_none(lambda: inner.as_bytes(policy=policy.compat32))


def sanitised_filename(name: str | None) -> str:
    """A filename safe to show and to store under: the last path part, without control or
    direction-changing characters, leading dots or edge spaces; "attachment" when nothing is
    left."""
    if not name:
        return "attachment"
    name = _from_surrogates(name)
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c) not in {"Cc", "Cf", "Cs", "Zl", "Zp"})
    name = name.strip().lstrip(".").strip().rstrip(". ")
    if len(name) > 200:
        stem, dot, suffix = name.rpartition(".")
        name = (
            stem[: 200 - len(suffix) - 1] + dot + suffix if dot and len(suffix) < 20 else name[:200]
        )
    return name or "attachment"


# --- questions about a message --------------------------------------------------------------------


_REFERENCE_TOKEN = re.compile(r"\[\s*(AI-[0-9]{4}-[0-9]{6,9})\s*\]", re.IGNORECASE)


def references_in_subject(subject: str) -> list[str]:
    """Report references written as [AI-2026-000123] in a subject, upper-cased, each once, in
    the order they appear."""
    found: list[str] = []
    for match in _REFERENCE_TOKEN.finditer(subject):
        reference = match.group(1).upper()
        if reference not in found:
            found.append(reference)
    return found


def _keyword(value: str) -> str:
    """The value's first word, lower-cased, without comments or parameters."""
    value = re.sub(r"\([^()]*\)", " ", value)
    words = re.split(r"[\s;,]+", value.strip().lower())
    return words[0] if words else ""


def no_answer_reason(message: InboundMessage, own_addresses: Collection[str]) -> str | None:
    """Why the service must not answer this message, in plain words, or None when it may.

    Answering automatic mail starts loops between robots and spams lists, so: no answer to
    auto-submitted mail, bulk or list mail, bounces (the null sender), mail without a sender,
    mail from the service itself, or out-of-office replies (RFC 3834 and common practice).
    """
    if message.auto_submitted is not None and _keyword(message.auto_submitted) != "no":
        return f"it was sent automatically (Auto-Submitted: {message.auto_submitted})"
    if message.precedence is not None:
        precedence = _keyword(message.precedence)
        if precedence in {"bulk", "junk", "list", "auto_reply"}:
            return f"it is bulk or list mail (Precedence: {precedence})"
    if message.list_id or message.header("List-Id") is not None:
        return "it came through a mailing list (List-Id)"
    if message.header("List-Unsubscribe") is not None:
        return "it is mailing-list or newsletter mail (List-Unsubscribe)"
    if message.return_path == "":
        return "it has the null sender (Return-Path: <>), as bounces and automatic reports do"
    if not message.sender_email:
        return "it has no sender address to answer"
    own = {address.strip().lower() for address in own_addresses}
    if message.sender_email in own or (message.return_path or "").lower() in own:
        return "it was sent by this service itself"
    for name in ("X-Autoreply", "X-Autorespond"):
        value = message.header(name)
        if value is not None and _keyword(value) not in {"no", "false", "0"}:
            return f"it is an automatic reply ({name}: {value})"
    suppress = message.header("X-Auto-Response-Suppress")
    if suppress is not None:
        words = {word.lower() for word in re.split(r"[\s,;]+", suppress) if word}
        if words & {"all", "oof"}:
            return (
                f"its sender asked for no automatic replies (X-Auto-Response-Suppress: {suppress})"
            )
    return None


_DISCOVERED = re.compile(
    r"^[ \t]*(?:discovered(?:[ \t]+(?:at|on))?|descubiert[oa](?:[ \t]+(?:el|en|a las))?)"
    r"[ \t]*:[ \t]*(?P<value>[^\n]*)",
    re.IGNORECASE | re.MULTILINE,
)
_WHEN = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})"
    # Atomic, so that "14:30:00ZZ" is refused rather than read as the date alone.
    r"(?>(?:(?:[ \t]+|T)(?P<time>[0-9]{1,2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?)"
    r"(?:[ \t]*(?P<half>[ap])\.?m\.?(?![0-9a-z]))?)?)"
    r"[ \t]*(?P<zone>Z|UTC|GMT|[+-][0-9]{2}:?[0-9]{2})?(?![0-9a-z:])",
    re.IGNORECASE,
)


def discovered_in_text(text: str) -> datetime | None:
    """When the body says the harm was discovered: a line starting "Discovered:", "Discovered
    at:" or "Descubierto:" followed by a date and time such as 2026-12-01 14:30 or
    2026-12-01T14:30:00Z. Naive when no offset is given (the caller applies the organisation's
    time zone), aware otherwise; a date alone means its first minute. None when there is no such
    line or none can be read."""
    for line in _DISCOVERED.finditer(text):
        when = _WHEN.match(line.group("value").strip())
        if when is None:
            continue
        hour_text, _, rest = (when.group("time") or "00:00").partition(":")
        hour = int(hour_text)
        half = (when.group("half") or "").lower()
        if half and not 1 <= hour <= 12:
            continue
        if half:
            hour = hour % 12 + (12 if half == "p" else 0)
        clock = f"{hour:02d}:{rest}"
        zone = (when.group("zone") or "").upper()
        if zone in {"Z", "UTC", "GMT"}:
            zone = "+00:00"
        try:
            return datetime.fromisoformat(f"{when.group('date')}T{clock}{zone}")
        except (ValueError, OverflowError):
            continue
    return None
