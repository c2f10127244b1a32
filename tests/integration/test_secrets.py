"""Passwords in the database and SMTP URLs are never printed or logged: not at start-up, not in a
refusal of a bad URL, not in the mail server's errors, not in the settings' repr."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path

import aiohttp
import pytest

from infra.settings import Settings, without_password
from notifications.outbound.mailer import DeliveryError, SmtpMailer
from tests.harness.kafka import free_port
from tests.support import harm_report

INCIDENTS = str(Path(sys.executable).parent / "incidents")
PASSWORD = "Pa55-w0rd-never-shown"


def environ(home: Path, **env: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("INCIDENTS_")}
    return {**base, "INCIDENTS_HOME": str(home), **env}


def run(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [INCIDENTS, *args], env=environ(home, **env), capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("smtp://user:pw@mail.example:587?starttls=1", "smtp://user:***@mail.example:587?starttls=1"),
        ("smtps://mail.example:465", "smtps://mail.example:465"),
        ("smtp://user@mail.example", "smtp://user@mail.example"),
        # A password with an unencoded / # or @ is hidden whole, never cut short.
        ("smtp://user:p/a#s@s@mail.example:25", "smtp://user:***@mail.example:25"),
        ("postgresql+asyncpg://u:p%40w@db:5432/x", "postgresql+asyncpg://u:***@db:5432/x"),
        ("postgresql+asyncpg://u@db/x?password=pw&ssl=1", "postgresql+asyncpg://u@db/x?password=***&ssl=1"),
        ("sqlite+aiosqlite:////srv/incidents/incidents.db", "sqlite+aiosqlite:////srv/incidents/incidents.db"),
    ],
)  # fmt: skip
def test_a_url_is_shown_without_its_password(url: str, shown: str) -> None:
    assert without_password(url) == shown


def test_the_settings_never_show_a_password() -> None:
    settings = Settings(
        smtp_url=f"smtp://mailer:{PASSWORD}@mail.example:587",
        database_url=f"postgresql+asyncpg://incidents:{PASSWORD}@db/incidents",
        secret_key=PASSWORD,
        kafka_consumer_options={"sasl_plain_password": PASSWORD},
    )
    for text in (repr(settings), str(settings)):
        assert PASSWORD not in text
    assert PASSWORD not in settings.model_dump_json(exclude={"kafka_consumer_options"})
    assert settings.safe_url("smtp") == "smtp://mailer:***@mail.example:587"
    assert settings.safe_url("database") == "postgresql+asyncpg://incidents:***@db/incidents"
    assert f"{settings.smtp_url}" == "smtp://mailer:***@mail.example:587"
    assert settings.resolved_database_url().endswith(f":{PASSWORD}@db/incidents")  # to connect
    assert settings.shared_database
    assert Settings(smtp_url="", database_url=" ", secret_key="").smtp_url is None


@pytest.mark.parametrize(
    ("variable", "url"),
    [
        ("INCIDENTS_SMTP_URL", f"http://mailer:{PASSWORD}@mail.example"),
        ("INCIDENTS_SMTP_URL", f"smtp://mailer:{PASSWORD}/x@mail.example"),  # '/' unencoded
        ("INCIDENTS_DATABASE_URL", f"postgresql//incidents:{PASSWORD}@db/incidents"),
    ],
)
def test_a_bad_url_is_refused_without_repeating_it(tmp_path: Path, variable: str, url: str) -> None:
    done = run(tmp_path / "home", "serve", "--port", "1", **{variable: url})
    assert done.returncode == 2
    assert variable in done.stderr
    assert PASSWORD not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr


def test_migrate_shows_the_database_without_its_password(tmp_path: Path) -> None:
    port = free_port()  # nobody listens: migrate fails after saying what it migrates
    done = run(
        tmp_path / "home",
        "migrate",
        INCIDENTS_DATABASE_URL=f"postgresql+asyncpg://incidents:{PASSWORD}@127.0.0.1:{port}/x",
    )
    assert f"migrating postgresql+asyncpg://incidents:***@127.0.0.1:{port}/x" in done.stdout
    assert PASSWORD not in done.stdout + done.stderr


async def test_serve_shows_and_logs_the_mail_server_without_its_password(tmp_path: Path) -> None:
    """`serve` names the mail server at start-up, and logs every failed send with the mail
    server's error; neither holds the password, both name the host."""
    port, smtp_port = free_port(), free_port()  # nobody listens on smtp_port: every send fails
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen(
            [INCIDENTS, "serve", "--port", str(port)],
            env=environ(
                tmp_path / "home",
                INCIDENTS_SMTP_URL=f"smtp://mailer:{PASSWORD}@127.0.0.1:{smtp_port}?timeout=2",
            ),
            stdout=stdout,
            stderr=stderr,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        async with aiohttp.ClientSession() as http:
            while True:
                assert process.poll() is None, err.read_text()
                try:
                    async with http.post(f"{url}/api/v1/reports", json=harm_report()) as resp:
                        assert resp.status == 201, await resp.text()
                        break
                except aiohttp.ClientConnectionError:
                    assert time.monotonic() < deadline, "the service did not start"
                    await asyncio.sleep(0.1)
        while "not sent" not in err.read_text():  # delivery tried, and logged why it failed
            assert time.monotonic() < deadline + 30, err.read_text()
            await asyncio.sleep(0.1)
    finally:
        process.terminate()
        # Stopping takes a moment; under a whole suite's load it once took over 10 s (each part
        # of the service is given 10 s to stop, and one that takes longer is logged).
        process.wait(30)
    shown, logged = out.read_text(), err.read_text()
    assert f"mail: smtp://mailer:***@127.0.0.1:{smtp_port}?timeout=2" in shown
    assert f"127.0.0.1 on port {smtp_port}" in logged  # the mail server's error, in the log
    assert PASSWORD not in shown + logged


def test_the_mailer_refuses_a_bad_url_without_repeating_it() -> None:
    for url in (f"http://u:{PASSWORD}@h", f"smtp://u:{PASSWORD}/x@h"):
        with pytest.raises(ValueError) as refused:
            SmtpMailer(url, connections=1)
        assert PASSWORD not in str(refused.value)


async def test_a_mail_server_that_echoes_the_credentials_does_not_get_them_logged() -> None:
    """A server may answer anything, even the AUTH exchange it was sent: the mailer's errors
    (which delivery logs) hide the password in every form it travels in."""

    async def hostile(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 hostile.example ESMTP\r\n")
        while line := await reader.readline():
            command = line.decode().strip()
            if command.upper().startswith("EHLO"):
                writer.write(b"250-hostile.example\r\n250 AUTH PLAIN LOGIN\r\n")
            elif command.upper().startswith("AUTH"):
                writer.write(f"535 5.7.8 refused {command} {PASSWORD}\r\n".encode())
            else:
                writer.write(b"221 bye\r\n")
                await writer.drain()
                break
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(hostile, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    mailer = SmtpMailer(f"smtp://mailer:{PASSWORD}@127.0.0.1:{port}?starttls=0", connections=1)
    message = EmailMessage()
    message["Message-ID"] = "<x@test>"
    message.set_content("hello")
    try:
        with pytest.raises(DeliveryError) as refused:
            await mailer.send(message, sender="a@city.example", recipients=["b@city.example"])
    finally:
        await mailer.close()
        server.close()
    text = str(refused.value)
    assert "535" in text and "refused AUTH" in text
    assert PASSWORD not in text
    import base64

    assert base64.b64encode(PASSWORD.encode()).decode() not in text
    assert base64.b64encode(f"\0mailer\0{PASSWORD}".encode()).decode() not in text
