"""The test harness itself: the SMTP server receives, and refuses when told to."""

from __future__ import annotations

from email.message import EmailMessage

import aiosmtplib
import pytest

from tests.harness.fixtures import *  # noqa: F403
from tests.harness.smtp import SMTPServer


def mail(to: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "svc@city.example", to, "Notice"
    msg.set_content("text")
    msg.add_alternative("<p>html</p>", subtype="html")
    return msg


async def test_smtp_server_receives_and_refuses(smtp_server: SMTPServer) -> None:
    await aiosmtplib.send(
        mail("a@city.example"),
        hostname=smtp_server.host,
        port=smtp_server.port,
        recipients=["a@city.example", "b@city.example"],
    )
    [got] = await smtp_server.wait_for(1)
    assert got.rcpt_tos == ["a@city.example", "b@city.example"]
    assert got["Subject"] == "Notice" and got.message.is_multipart()

    smtp_server.fail(451, times=1)
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as exc:
        await aiosmtplib.send(mail("c@x"), hostname=smtp_server.host, port=smtp_server.port)
    assert exc.value.recipients[0].code == 451
    await aiosmtplib.send(mail("c@x"), hostname=smtp_server.host, port=smtp_server.port)

    smtp_server.fail(550, at="data")
    with pytest.raises(aiosmtplib.SMTPDataError) as exc2:
        await aiosmtplib.send(mail("d@x"), hostname=smtp_server.host, port=smtp_server.port)
    assert exc2.value.code == 550
    smtp_server.heal()
    assert len(await smtp_server.wait_for(2)) == 2 and smtp_server.refused == 2
    with pytest.raises(AssertionError):
        await smtp_server.wait_for(3, timeout=0.1)


async def test_postgres_url_is_a_fresh_database(postgres_url: str) -> None:
    import asyncpg
    from sqlalchemy.engine import make_url

    url = make_url(postgres_url).set(drivername="postgresql")
    conn = await asyncpg.connect(url.render_as_string(hide_password=False))
    try:
        tables = await conn.fetchval(
            "select count(*) from information_schema.tables where table_schema = 'public'"
        )
    finally:
        await conn.close()
    assert tables == 0
