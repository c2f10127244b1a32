"""Helpers for tests: a clock moved by hand, a report body, waiting for the service to settle."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select

from consumers.runner import types_of
from incidents.kernel.actor import Grant
from incidents.kernel.eventlog import ConsumerPosition, EventRow
from incidents.notices.model import Notice
from incidents.people import service as people
from incidents.people import signin
from incidents.web import access
from incidents.web.deps import DEPS
from infra.bootstrap import Runtime
from infra.settings import Settings


class FakeClock:
    """Stands in for the wall clock; `advance` moves time forward."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def __call__(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> datetime:
        self.current += timedelta(**delta)
        return self.current

    def set(self, moment: datetime) -> None:
        self.current = moment


def harm_report(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "harm",
        "title": "Benefits chatbot told residents they were not eligible",
        "description": "Three residents were wrongly told they could not apply for rent relief.",
        "discovered_at": "2026-11-24T08:00:00-08:00",
        "reporter": {"name": "Ana Ruiz", "email": "ana.ruiz@city.example", "department": "Parks"},
        "ai_system": "Benefits Chatbot",
    }
    body.update(overrides)
    return body


async def settled(rt: Runtime, timeout: float = 10.0) -> None:
    """Wait until every consumer has read every event meant for it and no notice is due."""
    deadline = time.monotonic() + timeout
    while True:
        async with rt.uows() as uow:
            behind = False
            for consumer in rt.consumers:
                latest = (
                    await uow.session.exec(
                        select(func.max(EventRow.seq)).where(
                            col(EventRow.type).in_(types_of(consumer))
                        )
                    )
                ).one()
                pos = await uow.session.get(ConsumerPosition, consumer.name)
                if latest is not None and (pos is None or pos.position < latest):
                    behind = True
            due = (
                await uow.session.exec(
                    select(func.count())
                    .select_from(Notice)
                    .where(
                        Notice.status == "pending",
                        # due now, or being sent (claimed, no error yet)
                        (col(Notice.next_attempt_at) <= rt.now())
                        | col(Notice.last_error).is_(None),
                    )
                )
            ).one()
        if not behind and not due and not rt.delivery.in_flight:
            return
        if time.monotonic() > deadline:
            raise AssertionError(
                f"service not settled after {timeout}s (behind={behind}, due={due})"
            )
        await asyncio.sleep(0.02)


def ack_link(text: str) -> str:
    """The acknowledgement link in a notice's plain text, as a path."""
    match = re.search(r"http://incidents\.test(/ack/\S+)", text)
    assert match, f"no acknowledgement link in:\n{text}"
    return match.group(1)


class ServiceProcess:
    """`incidents serve` (or `web`, or `worker`) as its own process, to be killed and restarted
    like a real one."""

    def __init__(self, env: dict[str, str], port: int, role: str = "serve") -> None:
        import os
        import sys
        from pathlib import Path

        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.role = role
        self.command = [str(Path(sys.executable).parent / "incidents"), role]
        if role != "worker":  # a worker has no web side
            self.command += ["--port", str(port)]
        base = {k: v for k, v in os.environ.items() if not k.startswith("INCIDENTS_")}
        self.env = {**base, **env}
        self.process: Any = None

    async def start(self, timeout: float = 30.0) -> None:
        """Start, and wait for /healthz (a worker has no web side: just start it)."""
        import subprocess

        import aiohttp

        self.process = subprocess.Popen(
            self.command, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        if self.role == "worker":
            return
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while True:
                if self.process.poll() is not None:
                    raise AssertionError(f"service exited: {self.process.stderr.read().decode()}")
                try:
                    async with http.get(self.url + "/healthz") as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError("service did not answer /healthz")
                await asyncio.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL: no clean-up, no flushing; what was committed is all that survives."""
        import signal

        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except Exception:
                self.kill()


async def with_token(client, page: str, fields: dict[str, str]) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """A form's fields with the token the page gave (and its cookie kept by the client), as a
    browser would post them."""
    html = await (await client.get(page)).text()
    token = re.search(r'name="csrf" value="([^"]+)"', html)
    assert token, f"no form token on {page}"
    return {**fields, "csrf": token.group(1)}


INCIDENTS = str(Path(sys.executable).parent / "incidents")


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """`incidents …` as an administrator runs it, on the test's database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INCIDENTS_")}
    env.update(
        INCIDENTS_HOME=str(settings.home),
        INCIDENTS_DATABASE_URL=settings.resolved_database_url(),
        INCIDENTS_SECRET_KEY="a-test-secret",
    )
    return subprocess.run(
        [INCIDENTS, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


async def bearer(runtime: Runtime, email: str, grant: Grant | None = None) -> dict[str, str]:
    """The Authorization header of a new API token for `email` (granted `grant` first)."""
    async with runtime.uows() as uow:
        if grant is not None:
            await people.account(email, uow=uow, now=runtime.now(), grant=grant)
        made = await people.create_token(email, "test", uow=uow, now=runtime.now())
    return {"Authorization": f"Bearer {made.secret}"}


async def sign_in_as(client, runtime: Runtime, email: str, grant: Grant | None = None) -> None:  # type: ignore[no-untyped-def]
    """Sign `email` in on pages, as single sign-on would: the client sends their session
    cookie from now on."""
    async with runtime.uows() as uow:
        started = await signin.with_identity_provider(
            email,
            name="",
            grants=frozenset({grant} if grant else ()),
            issuer="test",
            uow=uow,
            now=runtime.now(),
        )
    sealed = access.seal(client.app[DEPS], started.secret)
    client.session.cookie_jar.update_cookies({access.SESSION_COOKIE: sealed})
