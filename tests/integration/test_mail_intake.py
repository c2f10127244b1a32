"""Reports by email against the running service: a message sent to the receiver inside the
service becomes a report (channel email) and its sender is answered, threaded, with the
reference; a reply is added to that report; auto-replies and mailing lists file nothing; an
unreadable message is quarantined, listed and released; a mailbox read over IMAP (Dovecot)
files a message once even when the reader crashes before moving it."""

from __future__ import annotations

import asyncio
import hashlib
import socket
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import aiosmtplib
import pytest
from pydantic import SecretStr
from sqlmodel import select

from incidents.cases.model import Case
from incidents.intake.model import InboundMail, Outcome
from incidents.kernel.actor import Grant
from incidents.record.model import AuditEntry
from incidents.reports.model import Report
from notifications.inbound.imap import MailboxReader
from tests.support import bearer, cli, settled, sign_in_as, with_token


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def settings(settings, port):  # type: ignore[no-untyped-def]
    return settings.model_copy(
        update={"policy": ["san-jose"], "mail_intake": SecretStr(f"smtp://127.0.0.1:{port}")}
    )


def email(
    subject: str, body: str, sender: str = "parks.supervisor@city.example", **headers: str
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"Pat Parks <{sender}>"
    msg["To"] = "ai-incidents@city.example"
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain="city.example")
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return msg


async def send(port: int, msg: EmailMessage | bytes) -> None:
    if isinstance(msg, bytes):
        await aiosmtplib.send(
            msg,
            sender="x@city.example",
            recipients=["ai@city.example"],
            hostname="127.0.0.1",
            port=port,
        )
    else:
        await aiosmtplib.send(msg, hostname="127.0.0.1", port=port)


async def reports_by_email(runtime) -> list[Report]:  # type: ignore[no-untyped-def]
    async with runtime.uows() as uow:
        return list(await uow.session.exec(select(Report).where(Report.channel == "email")))


async def test_a_message_becomes_a_report_and_its_sender_is_answered(
    client, runtime, port, smtp_server
):
    sent = email(
        "Benefits Chatbot told a resident the wrong deadline",
        "The Benefits Chatbot told a resident her appeal was due next month; it was due today.",
        Date=format_datetime(runtime.now()),
    )
    await send(port, sent)
    await settled(runtime)
    [report] = await reports_by_email(runtime)
    auditor = await bearer(runtime, "auditor@city.example", Grant.AUDITOR)
    shown = await (await client.get(f"/api/v1/reports/{report.reference}", headers=auditor)).json()
    assert shown["channel"] == "email" and shown["kind"] == "unclassified"
    assert shown["ai_system"] == "Benefits Chatbot"
    assert shown["reporter"]["department"] == "Parks"
    [answer] = [m for m in smtp_server.messages if "parks.supervisor@city.example" in m.rcpt_tos]
    assert report.reference in answer["Subject"]
    assert answer["In-Reply-To"] == sent["Message-ID"]
    assert answer["Auto-Submitted"] == "auto-replied"
    # The receipt code in the answer opens the report's status without signing in; the
    # record, which auditors export, does not keep it.
    text = answer.message.get_body(("plain",)).get_content()
    code = text.split("this receipt code: ")[1].split()[0]
    fields = await with_token(
        client, "/status", {"reference": report.reference, "receipt_code": code}
    )
    assert (await client.post("/status", data=fields)).status == 200
    async with runtime.uows() as uow:
        answered = (
            await uow.session.exec(select(AuditEntry).where(AuditEntry.action == "mail.answer_due"))
        ).one()
    assert "receipt_code" not in answered.data and code not in str(answered.data)
    # The triager the pack names is told, as for a report filed on the form.
    assert any("ciso@city.example" in m.rcpt_tos for m in smtp_server.messages)

    # The same message delivered again (a relay retrying) files nothing new.
    await send(port, sent)
    await settled(runtime)
    assert len(await reports_by_email(runtime)) == 1

    # A reply to the answer joins the report's record; it is not a new report.
    reply = email(
        f"Re: {answer['Subject']}",
        "She has now missed the appeal.",
        In_Reply_To=answer["Message-ID"],
        References=f"{sent['Message-ID']} {answer['Message-ID']}",
    )
    await send(port, reply)
    await settled(runtime)
    assert len(await reports_by_email(runtime)) == 1
    async with runtime.uows() as uow:
        entries = list(
            await uow.session.exec(select(AuditEntry).where(AuditEntry.subject == report.id))
        )
    assert any(
        e.action == "mail.reply_added" and "missed the appeal" in e.data["text"] for e in entries
    )
    # People a policy named see it on the report's timeline.
    await sign_in_as(client, runtime, "ciso@city.example")  # the triager San José names
    page = await (await client.get(f"/reports/{report.reference}")).text()
    assert "Email from parks.supervisor@city.example" in page and "missed the appeal" in page


async def test_auto_replies_and_lists_file_nothing_and_get_no_answer(
    client, runtime, port, smtp_server
):
    await send(port, email("Out of office", "I am away.", Auto_Submitted="auto-replied"))
    await send(port, email("Digest", "Ten new posts.", List_Id="<ai.lists.example>"))
    await settled(runtime)
    assert await reports_by_email(runtime) == []
    assert smtp_server.messages == []
    async with runtime.uows() as uow:
        kept = list(await uow.session.exec(select(InboundMail)))
    assert sorted(m.outcome for m in kept) == [Outcome.IGNORED, Outcome.IGNORED]


async def test_spanish_in_latin_1_is_read_correctly(client, runtime, port):
    raw = (
        "From: Lucía Núñez <housing.supervisor@city.example>\r\n"
        "To: ai-incidents@city.example\r\n"
        "Subject: =?iso-8859-1?Q?El_asistente_se_equivoc=F3?=\r\n"
        "Message-ID: <es-1@city.example>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: text/plain; charset="iso-8859-1"\r\n'
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
        "¿Por qué el sistema negó la solicitud? El año pasado funcionó.\r\n"
    ).encode("iso-8859-1")
    await send(port, raw)
    await settled(runtime)
    [report] = await reports_by_email(runtime)
    assert report.title == "El asistente se equivocó"
    assert "¿Por qué" in report.description and "año" in report.description
    assert report.reporter_name == "Lucía Núñez"


async def test_an_unreadable_message_is_quarantined_listed_and_released(
    client, runtime, port, settings
):
    await send(port, b"\x00\x01\x02 this is not an email at all \xff\xfe\r\n")
    await settled(runtime)
    assert await reports_by_email(runtime) == []
    listed = cli(settings, "mail", "quarantine", "list")
    assert listed.returncode == 0, listed.stderr
    [line] = listed.stdout.strip().splitlines()
    assert "--" in line and "header" in line.lower()
    released = cli(settings, "mail", "quarantine", "release", line.split()[0])
    assert released.returncode == 0, released.stderr
    [report] = await reports_by_email(runtime)
    assert "not an email" in report.description
    assert "No message is in quarantine" in cli(settings, "mail", "quarantine", "list").stdout


async def test_imap_a_crash_before_the_move_files_the_message_once(client, runtime, imap_server):
    imap_server.clear()
    imap_server.deliver(
        bytes(email("Records Summarizer leaked a name", "It put a resident's name in a summary."))
    )
    crashed = False

    async def store_then_crash(raw: bytes):  # type: ignore[no-untyped-def]
        nonlocal crashed
        verdict = await runtime.receive_mail(raw)
        if not crashed:
            crashed = True
            raise ConnectionResetError("the process died before the move")
        return verdict

    first = MailboxReader(imap_server.url, store_then_crash)
    assert await first.run_once() == 0  # stored, then the "crash": the message stays
    await first.close()
    assert len(imap_server.folder("INBOX")) == 1
    second = MailboxReader(imap_server.url, runtime.receive_mail)
    assert await second.run_once() == 1
    await second.close()
    await settled(runtime)
    assert imap_server.folder("INBOX") == [] and len(imap_server.folder("Processed")) == 1
    [report] = await reports_by_email(runtime)
    assert report.ai_system == "Records Summarizer"
    await asyncio.sleep(0)


async def test_the_triager_classifies_a_report_by_email_and_its_rules_apply(
    client, runtime, port, clock
):
    await send(
        port,
        email(
            "Names in the summaries",
            "Records Summarizer put residents' names into a public summary.\n"
            "Discovered: 2026-11-23 09:00",
        ),
    )
    await settled(runtime)
    [report] = await reports_by_email(runtime)
    ciso = await bearer(runtime, "ciso@city.example")  # San José's triage names the CISO
    path = f"/api/v1/reports/{report.reference}/classification"
    stranger = await bearer(runtime, "parks.supervisor@city.example")
    assert (await client.post(path, json={"kind": "harm"}, headers=stranger)).status == 404
    wrong = await client.post(path, json={"kind": "unclassified"}, headers=ciso)
    assert wrong.status == 400 and "kind" in (await wrong.json())["fields"]
    done = await client.post(
        path, json={"kind": "data_exposure", "data_categories": ["pii"]}, headers=ciso
    )
    assert done.status == 200, await done.text()
    shown = await done.json()
    assert shown["kind"] == "data_exposure" and shown["data_categories"] == ["pii"]
    rules = {r for o in shown["obligations"] for r in o["rules"]}
    assert "san-jose/privacy-cdpo" in rules and "san-jose/incident-response" in rules
    # Counted from the discovery the email gave (the day before it was sent), not from now.
    assert shown["discovered_at"].startswith("2026-11-23T17:00")
    again = await client.post(path, json={"kind": "harm"}, headers=ciso)
    assert again.status == 409
    await settled(runtime)
    async with runtime.uows() as uow:
        cases = list(await uow.session.exec(select(Case)))
    assert len(cases) == 1  # the incident-response rule opens a security case, as for a form


async def test_an_admin_reads_and_releases_quarantined_mail_on_its_page(client, runtime, port):
    await send(port, b"\x00\x01 not an email either \xff\r\n")
    await settled(runtime)
    await sign_in_as(client, runtime, "admin@city.example", Grant.ADMIN)
    listed = await (await client.get("/admin/mail")).text()
    assert "1 message in quarantine" in listed
    mail_id = listed.split('href="/admin/mail/')[1].split('"')[0]
    shown = await (await client.get(f"/admin/mail/{mail_id}")).text()
    assert "not an email either" in shown
    fields = await with_token(client, f"/admin/mail/{mail_id}", {})
    done = await client.post(f"/admin/mail/{mail_id}/release", data=fields)
    assert done.status == 200 and "was released and filed as a report" in await done.text()
    [report] = await reports_by_email(runtime)
    assert "not an email either" in report.description
    await sign_in_as(client, runtime, "parks.supervisor@city.example")
    assert (await client.get("/admin/mail")).status == 403


async def test_attachments_are_listed_with_their_hashes_and_programs_are_not_kept(
    client, runtime, port
):
    msg = email("Screenshots of the wrong answer", "See the attached screenshot.")
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    msg.add_attachment(png, maintype="image", subtype="png", filename="answer.png")
    msg.add_attachment(
        b"MZ\x90\x00", maintype="application", subtype="octet-stream", filename="fix.exe"
    )
    await send(port, msg)
    await settled(runtime)
    [report] = await reports_by_email(runtime)
    assert (
        f"answer.png (image/png, {len(png)} bytes, SHA-256 {hashlib.sha256(png).hexdigest()})"
        in report.description
    )
    assert "fix.exe" in report.description and "run as programs" in report.description
    async with runtime.uows() as uow:
        [kept] = list(await uow.session.exec(select(InboundMail)))
    assert [a["kept"] for a in kept.attachments] == [True, False]


async def test_a_reference_in_the_subject_threads_only_for_the_people_of_the_report(
    client, runtime, port
):
    await send(port, email("Chatbot misled a resident", "Wrong appeal deadline given."))
    await settled(runtime)
    [report] = await reports_by_email(runtime)
    # Someone the report does not concern: their message is a report of its own.
    stranger = email(
        f"Re: [{report.reference}] more", "Adding to that.", sender="outsider@elsewhere.example"
    )
    await send(port, stranger)
    # The reporter, with the reference alone (a new message, not a reply): it joins the report.
    await send(port, email(f"[{report.reference}] one more thing", "It happened twice."))
    await settled(runtime)
    assert len(await reports_by_email(runtime)) == 2
    async with runtime.uows() as uow:
        kept = {m.sender: m for m in await uow.session.exec(select(InboundMail))}
    assert kept["outsider@elsewhere.example"].outcome is Outcome.FILED
    assert kept["parks.supervisor@city.example"].outcome in (Outcome.FILED, Outcome.THREADED)
    threaded = [m for m in kept.values() if m.outcome is Outcome.THREADED]
    assert [m.report_id for m in threaded] == [report.id]
