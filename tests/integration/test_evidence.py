"""Evidence files on a security case against the running service: security adds a file (over
the API or from the case page), everyone who reads cases lists and downloads it with its SHA-256
checked again, a file too large, of a type not kept or not what it claims to be is refused, a
file changed in the database is not given out, and the record says who added what."""

from __future__ import annotations

import hashlib
import re
from base64 import b64encode
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import aiohttp_jinja2
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import update
from sqlmodel import select

from incidents.cases import evidence
from incidents.cases.evidence import MAX_BYTES, CaseEvidence, clean_filename
from incidents.cases.model import Case, Phase
from incidents.kernel.actor import Grant
from incidents.record.model import AuditEntry
from incidents.web import evidence as evidence_web
from incidents.web import security
from incidents.web.app import create_app
from infra.bootstrap import Runtime
from infra.settings import Settings
from tests.support import bearer, cli, harm_report, settled, sign_in_as, with_token

Client = TestClient[Any, Any]
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 64
# What the lead's change to incidents/web/security.py does: form posts to these paths are not
# read by `forms_from_this_site` (request.post() stops at client_max_size); their handler checks
# the form's origin and token itself.
STREAMED_FORMS = re.compile(r"/cases/[^/]+/evidence")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"policy": ["redondo-beach"]})


@pytest.fixture
async def client(
    aiohttp_client: Any, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Client]:
    """The service with the evidence routes, its table and the form check they need, for as
    long as the lead has not wired them in (each step is skipped once it is there)."""
    async with runtime.engine.begin() as conn:  # until a migration makes it
        await conn.run_sync(lambda c: CaseEvidence.__table__.create(c, checkfirst=True))  # type: ignore[attr-defined]
    if not hasattr(security, "STREAMED_FORMS"):
        checked = security.forms_from_this_site

        @web.middleware
        async def forms(request: web.Request, handler: Any) -> web.StreamResponse:
            if request.method == "POST" and STREAMED_FORMS.fullmatch(request.path):
                # The form token and its cookie as for any page, without reading the body.
                return await checked(request.clone(method="GET"), handler)
            return await checked(request, handler)

        monkeypatch.setattr(security, "forms_from_this_site", forms)
    app = create_app(runtime, workers=True)
    known = {(r.method, r.resource.canonical) for r in app.router.routes() if r.resource}
    if ("POST", "/api/v1/cases/{reference}/evidence") not in known:
        app.router.add_routes(evidence_web.routes)
    yield await aiohttp_client(app)


async def open_case(client: Client, runtime: Runtime) -> str:
    """File a data exposure with personal information: the policy opens a case. Its reference."""
    body = harm_report(kind="data_exposure", data_categories=["pii"])
    filed = await client.post("/api/v1/reports", json=body)
    assert filed.status == 201, await filed.text()
    await settled(runtime)
    async with runtime.uows() as uow:
        cases = list(await uow.session.exec(select(Case).order_by(Case.number.desc())))  # type: ignore[union-attr]
    return cases[0].reference


async def upload(
    client: Client,
    ref: str,
    headers: dict[str, str],
    data: Any = PDF,
    *,
    filename: str = "firewall-report.pdf",
    content_type: str = "application/pdf",
    note: str | None = None,
) -> aiohttp.ClientResponse:
    params = {"filename": filename, **({"note": note} if note is not None else {})}
    return await client.post(
        f"/api/v1/cases/{ref}/evidence",
        data=data,
        params=params,
        headers={**headers, "Content-Type": content_type},
    )


async def listed(client: Client, ref: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    answer = await client.get(f"/api/v1/cases/{ref}/evidence", headers=headers)
    assert answer.status == 200, await answer.text()
    return list((await answer.json())["evidence"])


async def test_security_adds_a_file_and_gets_the_same_bytes_back(
    client: Client, runtime: Runtime
) -> None:
    ref = await open_case(client, runtime)
    ciso = await bearer(runtime, "ciso@city.example")
    added = await upload(client, ref, ciso, note="Exported from the firewall at 09:12.")
    assert added.status == 201, await added.text()
    body = await added.json()
    digest = hashlib.sha256(PDF).hexdigest()
    assert body == {
        "id": body["id"],
        "filename": "firewall-report.pdf",
        "content_type": "application/pdf",
        "size": len(PDF),
        "sha256": digest,
        "added_by": "ciso@city.example",
        "added_at": "2026-11-24T17:00:00+00:00",
        "note": "Exported from the firewall at 09:12.",
    }
    assert added.headers["Location"] == f"/cases/{ref}/evidence/{body['id']}"
    assert await listed(client, ref, ciso) == [body]

    await sign_in_as(client, runtime, "ciso@city.example")
    got = await client.get(added.headers["Location"])
    assert got.status == 200
    data = await got.read()
    assert data == PDF and hashlib.sha256(data).hexdigest() == digest
    assert got.headers["Content-Type"] == "application/pdf"
    assert got.headers["Content-Disposition"] == (
        "attachment; filename=\"firewall-report.pdf\"; filename*=UTF-8''firewall-report.pdf"
    )
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    wanted = b64encode(hashlib.sha256(PDF).digest()).decode()
    assert got.headers["Repr-Digest"] == f"sha-256=:{wanted}:"
    assert got.headers["Digest"] == f"sha-256={wanted}"
    assert got.headers["Cache-Control"] == "no-store"

    # Another case's evidence, or an id that is none, is not found under this case.
    other = await open_case(client, runtime)
    assert other != ref
    assert (await client.get(f"/cases/{other}/evidence/{body['id']}")).status == 404
    assert (await client.get(f"/cases/{ref}/evidence/no-such-file")).status == 404
    assert await listed(client, other, ciso) == []


async def test_names_are_cleaned_and_kept_in_utf8(client: Client, runtime: Runtime) -> None:
    ref = await open_case(client, runtime)
    ciso = await bearer(runtime, "ciso@city.example")
    sent = "../../C:\\Users\\ana\\\u202eRésumé\r\n\x00 du pare-feu.txt"
    added = await upload(
        client,
        ref,
        ciso,
        b"denied 10.0.0.7\n",
        content_type="text/plain; charset=utf-8",
        filename=sent,
    )
    assert added.status == 201, await added.text()
    body = await added.json()
    assert body["filename"] == "Résumé du pare-feu.txt"
    assert body["content_type"] == "text/plain"
    await sign_in_as(client, runtime, "iso@city.example")
    got = await client.get(f"/cases/{ref}/evidence/{body['id']}")
    assert got.headers["Content-Disposition"] == (
        'attachment; filename="R_sum_ du pare-feu.txt"; '
        "filename*=UTF-8''R%C3%A9sum%C3%A9%20du%20pare-feu.txt"
    )


def test_clean_filename() -> None:
    assert clean_filename("/etc/passwd") == "passwd"
    assert clean_filename("..") == ""
    assert clean_filename("a\x07b\u200f.log ") == "ab.log"
    long = clean_filename("x" * 400 + ".json")
    assert len(long) == 255 and long.endswith(".json")


async def test_a_file_over_10_mib_is_refused_with_413(client: Client, runtime: Runtime) -> None:
    ref = await open_case(client, runtime)
    ciso = await bearer(runtime, "ciso@city.example")
    big = PDF + b"\x00" * MAX_BYTES
    declared = await upload(client, ref, ciso, big)  # Content-Length says so: not read at all
    assert declared.status == 413
    assert "larger than 10 MiB" in (await declared.json())["error"]

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
        yield PDF
        for _ in range(11):
            yield b"\x00" * (1024 * 1024)

    streamed = await upload(client, ref, ciso, chunks())
    assert streamed.status == 413
    assert "larger than 10 MiB" in (await streamed.json())["error"]
    # Exactly 10 MiB is kept: the limit is the app's own, not client_max_size (64 KiB).
    whole = PDF + b"\x00" * (MAX_BYTES - len(PDF))
    kept = await upload(client, ref, ciso, whole)
    assert kept.status == 201, await kept.text()
    assert (await kept.json())["size"] == MAX_BYTES
    assert len(await listed(client, ref, ciso)) == 1


async def test_a_file_not_of_its_declared_type_is_refused(client: Client, runtime: Runtime) -> None:
    ref = await open_case(client, runtime)
    ciso = await bearer(runtime, "ciso@city.example")
    renamed = await upload(client, ref, ciso, EXE, filename="invoice.exe")
    assert renamed.status == 400
    fields = (await renamed.json())["fields"]
    assert "not a PDF" in fields["file"] and ".exe" in fields["filename"]
    # Under a harmless name, still not a PDF; as text, binary.
    pdf_named = await upload(client, ref, ciso, EXE, filename="invoice.pdf")
    assert pdf_named.status == 400 and "not a PDF" in (await pdf_named.json())["fields"]["file"]
    as_text = await upload(client, ref, ciso, EXE, filename="log.txt", content_type="text/plain")
    assert as_text.status == 400 and "binary" in (await as_text.json())["fields"]["file"]
    html = await upload(client, ref, ciso, b"<script>", filename="x.html", content_type="text/html")
    assert html.status == 400 and "PDF" in (await html.json())["fields"]["content_type"]
    empty = await upload(client, ref, ciso, b"")
    assert empty.status == 400 and "empty" in (await empty.json())["fields"]["file"]
    nameless = await upload(client, ref, ciso, filename="../")
    assert nameless.status == 400 and "name" in (await nameless.json())["fields"]["filename"]
    assert await listed(client, ref, ciso) == []


async def test_only_security_adds_and_auditors_read(client: Client, runtime: Runtime) -> None:
    ref = await open_case(client, runtime)
    ciso = await bearer(runtime, "ciso@city.example")
    evidence_id = (await (await upload(client, ref, ciso)).json())["id"]
    path = f"/cases/{ref}/evidence/{evidence_id}"

    reporter = await bearer(runtime, "ana.ruiz@city.example")
    assert (await upload(client, ref, reporter)).status == 404
    assert (await client.get(f"/api/v1/cases/{ref}/evidence", headers=reporter)).status == 404
    await sign_in_as(client, runtime, "ana.ruiz@city.example")
    assert (await client.get(path)).status == 404
    assert (await client.get(f"/api/v1/cases/{ref}/evidence")).status == 401  # no token

    auditor = await bearer(runtime, "records.auditor@city.example", Grant.AUDITOR)
    assert [e["id"] for e in await listed(client, ref, auditor)] == [evidence_id]
    assert (await upload(client, ref, auditor)).status == 404  # auditors read; they do not work
    await sign_in_as(client, runtime, "records.auditor@city.example", Grant.AUDITOR)
    got = await client.get(path)
    assert got.status == 200 and await got.read() == PDF
    form = await with_token(client, f"/cases/{ref}", {"note": ""})
    posted = await client.post(f"/cases/{ref}/evidence", data=_form(form), allow_redirects=False)
    assert posted.status == 404
    assert len(await listed(client, ref, ciso)) == 1


async def test_a_file_changed_after_it_was_added_is_not_given_out(
    client: Client, runtime: Runtime
) -> None:
    ref = await open_case(client, runtime)
    ciso = await bearer(runtime, "ciso@city.example")
    body = await (await upload(client, ref, ciso)).json()
    changed = PDF.replace(b"Catalog", b"Catalo9")
    async with runtime.uows() as uow:
        await uow.session.exec(
            update(CaseEvidence).where(CaseEvidence.id == body["id"]).values(data=changed)
        )
    await sign_in_as(client, runtime, "ciso@city.example")
    got = await client.get(f"/cases/{ref}/evidence/{body['id']}")
    text = await got.text()
    assert got.status == 409, text
    assert body["sha256"] in text and hashlib.sha256(changed).hexdigest() in text
    assert "firewall-report.pdf" in text and "changed since it was added" in text
    assert PDF.decode() not in text and "Content-Disposition" not in got.headers


async def test_the_record_says_who_added_which_file_and_holds(
    client: Client, runtime: Runtime, settings: Settings
) -> None:
    ref = await open_case(client, runtime)
    ciso = await bearer(runtime, "ciso@city.example")
    body = await (await upload(client, ref, ciso, note="from the SIEM")).json()
    async with runtime.uows() as uow:
        case = (await uow.session.exec(select(Case))).first()
        [entry] = list(
            await uow.session.exec(
                select(AuditEntry).where(AuditEntry.action == "security_case.evidence_added")
            )
        )
    assert case is not None and entry.subject == case.id
    assert entry.actor == "ciso@city.example"
    assert entry.data == {
        "evidence_id": body["id"],
        "filename": "firewall-report.pdf",
        "size": len(PDF),
        "sha256": hashlib.sha256(PDF).hexdigest(),
    }
    verified = cli(settings, "audit", "verify")
    assert verified.returncode == 0, verified.stderr
    assert "the record holds" in verified.stdout


async def test_a_closed_case_takes_no_more_evidence(client: Client, runtime: Runtime) -> None:
    ref = await open_case(client, runtime)
    async with runtime.uows() as uow:
        await uow.session.exec(update(Case).values(phase=Phase.CLOSED))
    refused = await upload(client, ref, await bearer(runtime, "ciso@city.example"))
    assert refused.status == 409 and "closed" in (await refused.json())["error"]


# --- the case page's upload form ------------------------------------------------------------------


def _form(fields: dict[str, str], file: tuple[str, bytes, str] | None = None) -> aiohttp.FormData:
    """A multipart form as a browser sends it: the token first, then the file, then the note."""
    form = aiohttp.FormData(default_to_multipart=True)
    form.add_field("csrf", fields.get("csrf", ""))
    if file is not None:
        name, data, kind = file
        form.add_field("file", data, filename=name, content_type=kind)
    form.add_field("note", fields.get("note", ""))
    return form


async def test_a_file_is_added_from_the_case_page(client: Client, runtime: Runtime) -> None:
    ref = await open_case(client, runtime)
    await sign_in_as(client, runtime, "iso@city.example")
    page = f"/cases/{ref}"
    fields = await with_token(client, page, {"note": "Screenshot of the chatbot's answer."})
    # Windows browsers send a CSV as application/vnd.ms-excel: its name says what it is.
    sheet = b"when,who\n2026-11-24,ana\n"
    sent = _form(fields, ("residents.csv", sheet, "application/vnd.ms-excel"))
    posted = await client.post(f"{page}/evidence", data=sent, allow_redirects=False)
    assert posted.status == 303, await posted.text()
    assert posted.headers["Location"] == f"{page}#evidence"
    [kept] = await listed(client, ref, await bearer(runtime, "ciso@city.example"))
    assert kept["filename"] == "residents.csv" and kept["content_type"] == "text/csv"
    assert kept["note"] == "Screenshot of the chatbot's answer."
    assert kept["added_by"] == "iso@city.example"
    assert kept["sha256"] == hashlib.sha256(sheet).hexdigest()

    # Larger than client_max_size (64 KiB): read as a stream, to 10 MiB.
    image = b"\x89PNG\r\n\x1a\n" + b"\x01" * (256 * 1024)
    fields = await with_token(client, page, {})
    sent = _form(fields, ("screenshot.png", image, "image/png"))
    posted = await client.post(f"{page}/evidence", data=sent, allow_redirects=False)
    assert posted.status == 303, await posted.text()
    assert len(await listed(client, ref, await bearer(runtime, "ciso@city.example"))) == 2


async def test_the_upload_form_is_refused_without_its_token_or_from_elsewhere(
    client: Client, runtime: Runtime
) -> None:
    ref = await open_case(client, runtime)
    await sign_in_as(client, runtime, "iso@city.example")
    page = f"/cases/{ref}"
    action = f"{page}/evidence"
    file = ("a.pdf", PDF, "application/pdf")
    fields = await with_token(client, page, {})

    no_token = await client.post(action, data=_form({}, file), allow_redirects=False)
    assert no_token.status == 403
    wrong = await client.post(action, data=_form({"csrf": "x" * 40}, file), allow_redirects=False)
    assert wrong.status == 403
    odd = await client.post(action, data=_form({"csrf": "é" * 40}, file), allow_redirects=False)
    assert odd.status == 403
    elsewhere = await client.post(
        action,
        data=_form(fields, file),
        headers={"Origin": "https://attacker.example"},
        allow_redirects=False,
    )
    assert elsewhere.status == 403
    null = await client.post(
        action, data=_form(fields, file), headers={"Origin": "null"}, allow_redirects=False
    )
    assert null.status == 403
    not_multipart = await client.post(action, data=fields, allow_redirects=False)
    assert not_multipart.status == 400
    assert await listed(client, ref, await bearer(runtime, "ciso@city.example")) == []


async def test_a_refused_file_comes_back_on_the_case_page(client: Client, runtime: Runtime) -> None:
    ref = await open_case(client, runtime)
    await sign_in_as(client, runtime, "iso@city.example")
    page = f"/cases/{ref}"
    fields = await with_token(client, page, {"note": "from Ana's laptop"})
    sent = _form(fields, ("invoice.pdf.exe", EXE, "application/x-msdownload"))
    refused = await client.post(f"{page}/evidence", data=sent, allow_redirects=False)
    html = await refused.text()
    assert refused.status == 400, html
    assert 'href="#evidence-file"' in html and ".exe" in html and "application/x-msdownload" in html

    # No file chosen: a browser sends the field, nameless and empty.
    unchosen = ("", b"", "application/octet-stream")
    nothing = await client.post(
        f"{page}/evidence", data=_form(fields, unchosen), allow_redirects=False
    )
    assert nothing.status == 400 and "Choose the file" in await nothing.text()

    big = ("big.zip", b"PK\x03\x04" + b"\x00" * MAX_BYTES, "application/zip")
    too_large = await client.post(f"{page}/evidence", data=_form(fields, big))
    assert too_large.status == 413 and "larger than 10 MiB" in await too_large.text()

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
        yield b"PK\x03\x04"
        for _ in range(11):
            yield b"\x00" * (1024 * 1024)

    form = _form(fields)
    form.add_field("file", chunks(), filename="big.zip", content_type="application/zip")
    streamed = await client.post(f"{page}/evidence", data=form)
    assert streamed.status == 413 and "larger than 10 MiB" in await streamed.text()
    assert await listed(client, ref, await bearer(runtime, "ciso@city.example")) == []


async def test_the_evidence_section_of_the_case_page(client: Client, runtime: Runtime) -> None:
    """`_case_evidence.html`, with the context `case_evidence` gives and the case page's own."""
    ref = await open_case(client, runtime)
    ciso = await bearer(runtime, "ciso@city.example")
    body = await (await upload(client, ref, ciso, note="<b>from the SIEM</b>")).json()
    template = aiohttp_jinja2.get_env(client.app).get_template("_case_evidence.html")
    async with runtime.uows() as uow:
        case = (await uow.session.exec(select(Case).where(Case.number == int(ref[-6:])))).one()
        shown = await evidence_web.case_evidence(case, uow=uow, zone="America/Los_Angeles")
    page = {"case": case, "errors": {}, "values": {}, "csrf_token": "t0ken"}
    html = template.render(**page, **shown, closed=False, may_work=True)
    assert f'<a href="/cases/{ref}/evidence/{body["id"]}" download>firewall-report.pdf' in html
    assert f"<code>{body['sha256']}</code>" in html
    assert "Tuesday 24 November 2026, 9:00 AM PST, by ciso@city.example" in html
    assert "ciso@city.example" in html and "&lt;b&gt;from the SIEM&lt;/b&gt;" in html
    assert 'enctype="multipart/form-data"' in html
    assert '<label for="evidence-file">' in html and 'type="file" id="evidence-file"' in html
    assert '<label for="evidence-note">' in html and 'value="t0ken"' in html
    reading = template.render(**page, **shown, closed=False, may_work=False)
    assert "<form" not in reading and body["sha256"] in reading
    assert evidence.TYPES["application/pdf"] in html
