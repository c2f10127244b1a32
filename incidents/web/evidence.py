"""Evidence files on a security case, over the API and from the case's page.

- `POST /api/v1/cases/{reference}/evidence`: the raw body is the file, `Content-Type` its type,
  `?filename=` its name, `?note=` an optional note; 201 with what was kept (its SHA-256 too).
- `GET /api/v1/cases/{reference}/evidence`: the case's files, without their contents.
- `GET /cases/{reference}/evidence/{evidence_id}`: one file, as an attachment, its hash checked
  again first and sent in `Repr-Digest`; a file changed since it was added is not given out (409).
- `POST /cases/{reference}/evidence`: the case page's upload form (multipart), back to the case's
  evidence with a 303; a refused file comes back on the case page with the reason.

Bodies are read as streams, to `evidence.MAX_BYTES` (10 MiB), past the application's
`client_max_size`, which `request.read()` and `request.post()` enforce: the upload form cannot go
through `security.forms_from_this_site`'s `request.post()`, so its handler checks the form's
origin and token itself (`check_form_origin`, `check_form_token`), the same way. Security roles
add files; auditors read them; to anyone else a case does not exist (404).
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp_jinja2
from aiohttp import BodyPartReader, hdrs, web

from incidents.cases import evidence
from incidents.cases import service as cases
from incidents.cases.evidence import MAX_BYTES, TYPES, EvidenceCorrupted, EvidenceSummary
from incidents.cases.model import Case
from incidents.kernel.errors import Conflict, DomainError, InvalidInput, NotFound
from incidents.kernel.unit_of_work import UnitOfWork
from incidents.kernel.wording import local_time
from incidents.people.permissions import Permission
from incidents.web import security
from incidents.web.access import requires, signed_in
from incidents.web.deps import DEPS

routes = web.RouteTableDef()
log = logging.getLogger(__name__)

_CHUNK = 64 * 1024
_FIELD_BYTES = 4 * 1024  # a form's text field (the note is at most 500 characters)
_FORM_OVERHEAD = 64 * 1024  # a multipart body's boundaries, headers and text fields
_MAX_PARTS = 8  # csrf, file, note, and a little room for what a browser adds
TOO_LARGE = (
    f"The file is larger than {MAX_BYTES // (1024 * 1024)} MiB, the most a case keeps in one "
    "file. Split it or compress it, then add the parts."
)
LIMIT_WORDS = f"{MAX_BYTES // (1024 * 1024)} MiB"


# --- in words and JSON ----------------------------------------------------------------------------


def evidence_json(e: EvidenceSummary) -> dict[str, Any]:
    return {
        "id": e.id,
        "filename": e.filename,
        "content_type": e.content_type,
        "size": e.size,
        "sha256": e.sha256,
        "added_by": e.added_by,
        "added_at": e.added_at.isoformat(),
        "note": e.note,
    }


def download_path(reference: str, evidence_id: str) -> str:
    return f"/cases/{reference}/evidence/{evidence_id}"


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} byte{'s' if n != 1 else ''}"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n / (1024 * 1024):.1f} MiB"


async def case_evidence(case: Case, *, uow: UnitOfWork, zone: str) -> dict[str, Any]:
    """What `_case_evidence.html` needs besides the case page's own `case`, `closed`,
    `may_work`, `errors`, `values` and `csrf_token`."""
    return {
        "evidence": [
            {
                "id": e.id,
                "href": download_path(case.reference, e.id),
                "filename": e.filename,
                "type": TYPES.get(e.content_type, e.content_type),
                "content_type": e.content_type,
                "size": _size(e.size),
                "sha256": e.sha256,
                "added_by": e.added_by,
                "added": local_time(e.added_at, zone),
                "note": e.note or "",
            }
            for e in await evidence.listed(case, uow=uow)
        ],
        "evidence_limit": LIMIT_WORDS,
        "evidence_types": ", ".join(TYPES.values()),
        "evidence_note_length": evidence.NOTE_LENGTH,
    }


# --- reading a body as a stream -------------------------------------------------------------------


async def _body(request: web.Request) -> bytes | None:
    """The request's body, or None when it is larger than MAX_BYTES (the rest left unread)."""
    if request.content_length is not None and request.content_length > MAX_BYTES:
        return None
    data = bytearray()
    while chunk := await request.content.read(_CHUNK):
        data.extend(chunk)
        if len(data) > MAX_BYTES:
            return None
    return bytes(data)


async def _part(part: BodyPartReader, limit: int) -> bytes | None:
    """One part of a multipart body, or None when it is larger than `limit`."""
    data = bytearray()
    while not part.at_eof():
        data.extend(await part.read_chunk(_CHUNK))
        if len(data) > limit:
            return None
    return bytes(data)


@dataclass
class _Upload:
    """The upload form as sent: its token, the file and the note."""

    csrf: str | None = None
    note: str = ""
    filename: str = ""
    content_type: str = ""
    data: bytes = b""
    has_file: bool = False
    too_large: bool = False


def _unreadable(why: str = "") -> web.HTTPBadRequest:
    return web.HTTPBadRequest(
        reason=f"The form could not be read{why}. Send it from the case's page."
    )


async def _upload(request: web.Request) -> _Upload:
    """The upload form, read part by part; `too_large` (and the rest unread) past MAX_BYTES."""
    if request.content_type != "multipart/form-data":
        raise _unreadable(" (it must be sent as multipart/form-data)")
    if request.content_length is not None and request.content_length > MAX_BYTES + _FORM_OVERHEAD:
        return _Upload(too_large=True)
    form = _Upload()
    try:
        reader = await request.multipart()
        for _ in range(_MAX_PARTS):
            part = await reader.next()
            if part is None:
                return form
            if not isinstance(part, BodyPartReader):
                raise _unreadable(" (a part within a part)")
            if part.name == "file":
                if form.has_file:
                    raise _unreadable(": add one file at a time")
                form.has_file = True
                form.filename = part.filename or ""
                form.content_type = part.headers.get(hdrs.CONTENT_TYPE, "")
                data = await _part(part, MAX_BYTES)
                if data is None:
                    form.too_large = True
                    return form
                form.data = data
                continue
            value = await _part(part, _FIELD_BYTES)
            if value is None:
                raise _unreadable(f" (its field {part.name or ''} is too long)")
            if part.name == security.FIELD:
                form.csrf = value.decode("utf-8")
            elif part.name == "note":
                form.note = value.decode("utf-8")
    except web.HTTPException:
        raise
    except Exception:  # not UTF-8, a broken multipart body, a malformed part header
        raise _unreadable(" (as UTF-8 multipart/form-data)") from None
    raise _unreadable(" (too many fields)")


# --- the API --------------------------------------------------------------------------------------


@routes.post("/api/v1/cases/{reference}/evidence")
@requires(Permission.WORK_SECURITY_CASES)
async def add_by_api(request: web.Request) -> web.Response:
    """Add a file: the body is the file, Content-Type its type, ?filename= its name and
    ?note= a note; 413 past 10 MiB, 400 naming the field for a file refused, 409 when the case is
    closed."""
    me = signed_in(request)
    deps = request.app[DEPS]
    reference = request.match_info["reference"]
    async with deps.uows() as uow:  # no such case: 404 before the body is read
        await cases.by_reference(reference, uow=uow)
    # Read with no session open: a slow client holds no database connection.
    data = await _body(request)
    if data is None:
        return web.json_response({"error": TOO_LARGE}, status=413)
    async with deps.uows() as uow:
        case = await cases.by_reference(reference, uow=uow)
        added = await evidence.add(
            case,
            request.query.get("filename", ""),
            request.headers.get(hdrs.CONTENT_TYPE, ""),
            data,
            request.query.get("note"),
            by=me.email,
            uow=uow,
            now=deps.now(),
        )
        body = evidence_json(evidence.summary_of(added))
    return web.json_response(
        body, status=201, headers={"Location": download_path(case.reference, added.id)}
    )


@routes.get("/api/v1/cases/{reference}/evidence")
@requires(Permission.READ_SECURITY_CASES)
async def list_by_api(request: web.Request) -> web.Response:
    """The case's files, oldest first, without their contents."""
    async with request.app[DEPS].uows() as uow:
        case = await cases.by_reference(request.match_info["reference"], uow=uow)
        found = await evidence.listed(case, uow=uow)
    return web.json_response({"evidence": [evidence_json(e) for e in found]})


# --- pages ----------------------------------------------------------------------------------------


def _disposition(filename: str) -> str:
    """`attachment`, with the name in UTF-8 (RFC 6266) and an ASCII stand-in for old clients."""
    plain = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in filename
    )
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(filename, safe='')}"


@routes.get("/cases/{reference}/evidence/{evidence_id}")
@requires(Permission.READ_SECURITY_CASES)
async def download(request: web.Request) -> web.Response:
    """One file, as an attachment, after its SHA-256 is checked again; 409 if it changed."""
    deps = request.app[DEPS]
    async with deps.uows() as uow:
        case = await cases.by_reference(request.match_info["reference"], uow=uow)
        try:
            found = await evidence.fetch(case, request.match_info["evidence_id"], uow=uow)
        except EvidenceCorrupted as exc:
            log.error("%s: %s", case.reference, exc)
            return aiohttp_jinja2.render_template(
                "error.html",
                request,
                {"title": "This file has changed since it was added", "message": str(exc)},
                status=409,
            )
    digest = base64.b64encode(bytes.fromhex(found.sha256)).decode()
    return web.Response(
        body=found.data,
        content_type=found.content_type,
        headers={
            hdrs.CONTENT_DISPOSITION: _disposition(found.filename),
            "X-Content-Type-Options": "nosniff",
            # Opened in place anyway (a PDF viewer, say), it runs nothing and reaches nothing.
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Repr-Digest": f"sha-256=:{digest}:",  # RFC 9530
            "Digest": f"sha-256={digest}",  # RFC 3230, for older tools
        },
    )


def _on_the_form(exc: DomainError) -> DomainError:
    """The form has two fields: the name, type and contents are all the file's."""
    if not isinstance(exc, InvalidInput):
        return exc
    merged: dict[str, str] = {}
    for name, message in exc.errors.items():
        key = "note" if name == "note" else "file"
        merged[key] = f"{merged[key]} {message}" if key in merged else message
    return InvalidInput(merged)


@routes.post("/cases/{reference}/evidence")
@requires(Permission.WORK_SECURITY_CASES)
async def add_from_page(request: web.Request) -> web.StreamResponse:
    """The case page's upload form: the file, a note, and the form's token, checked here (the
    body is read as a stream, past what `security.forms_from_this_site` reads)."""
    # Here, not at the top: case_pages shows this module's part of the case page.
    from incidents.web.case_pages import Problem, _case_page, _problem

    me = signed_in(request)
    deps = request.app[DEPS]
    security.check_form_origin(request)  # before reading anything
    async with deps.uows() as uow:  # no such case: 404 before the body is read
        canonical = (await cases.by_reference(request.match_info["reference"], uow=uow)).reference
    form = await _upload(request)
    values = {"evidence-note": form.note}
    if form.too_large:
        if form.csrf is not None:
            security.check_form_token(request, form.csrf)
        problem = Problem(
            status=413,
            lines=[(TOO_LARGE, "#evidence-file")],
            fields={"evidence-file": TOO_LARGE},
            values=values,
        )
        return await _case_page(request, canonical, problem)
    security.check_form_token(request, form.csrf)  # before anything is written
    try:
        if not form.has_file or not (form.filename or form.data):
            raise InvalidInput({"file": "Choose the file to add."})
        # A browser sends the type it knows the name by, or application/octet-stream.
        kind = evidence.normal_type(form.content_type)
        if kind not in TYPES:
            kind = evidence.type_for_name(form.filename) or kind
        async with deps.uows() as uow:
            case = await cases.by_reference(canonical, uow=uow)
            await evidence.add(
                case,
                form.filename,
                kind,
                form.data,
                form.note,
                by=me.email,
                uow=uow,
                now=deps.now(),
            )
    except (InvalidInput, Conflict, NotFound) as exc:
        ids = {"file": "evidence-file", "note": "evidence-note"}
        problem = _problem(_on_the_form(exc), ids=ids, first="evidence-file", values=values)
        return await _case_page(request, canonical, problem)
    raise web.HTTPSeeOther(location=f"/cases/{canonical}#evidence")
