"""The web surface under hostile or careless input, over real HTTP: a plain 4xx that names what
to fix, never a 5xx; no forged form; no other host; no cached secrets; retries file once.
Nothing refused changes anything, and a good report filed among bad ones gets all its notices."""

from __future__ import annotations

import asyncio
import re

import pytest
from sqlalchemy import func
from sqlmodel import select

from incidents.kernel.eventlog import EventRow
from incidents.kernel.throttle import Limit
from incidents.reports.model import Report
from tests.support import harm_report, settled, with_token


async def stored(runtime) -> tuple[int, int]:
    async with runtime.uows() as uow:
        reports = (await uow.session.exec(select(func.count()).select_from(Report))).one()
        events = (await uow.session.exec(select(func.count()).select_from(EventRow))).one()
    return reports, events


async def test_malformed_requests_get_a_plain_4xx_and_a_good_report_among_them_all_its_notices(
    client, runtime, smtp_server
):
    raw = (
        b'{"kind": "harm", "title": "Chatbot", "count": ' + b"9" * 5000 + b"}",  # over-long int
        b"[" * 30_000,  # nested too deeply for any parser
        b'{"title": "\xff\xfe broken utf-8"}',
    )
    for body in raw:
        resp = await client.post(
            "/api/v1/reports", data=body, headers={"Content-Type": "application/json"}
        )
        assert resp.status == 400, (body[:40], await resp.text())
        assert "JSON" in (await resp.json())["fields"]["body"]

    odd_fields = {
        "title": "\u200b\u200b\u200b\u200b",  # only invisible characters
        "description": "Broken \x00 text",  # NUL: PostgreSQL refuses it, so we do first
        "discovered_at": "0001-01-01T00:00:00+14:00",  # year 1 (and converting it overflows)
    }
    resp = await client.post("/api/v1/reports", json=harm_report(**odd_fields))
    assert resp.status == 400
    fields = (await resp.json())["fields"]
    assert fields["title"] == "Write something here: this has no visible characters."
    assert "control characters" in fields["description"]
    assert "2000" in fields["discovered_at"]
    old = await client.post(
        "/api/v1/reports", json=harm_report(discovered_at="1899-12-31T09:00:00-08:00")
    )
    assert old.status == 400 and "2000" in (await old.json())["fields"]["discovered_at"]
    assert await stored(runtime) == (0, 0)

    # The one good report filed among them is kept and told to everyone.
    good = await client.post("/api/v1/reports", json=harm_report())
    assert good.status == 201
    for reference in ("AI-2026-99999999999999999999", "AI-2026-٠٠٠٠٠١", "AI-99-1", "x" * 300):
        looked = await client.get(f"/api/v1/reports/{reference}", params={"receipt_code": "X"})
        assert looked.status == 404, reference
    await smtp_server.wait_for(3)
    assert await stored(runtime) == (1, 4)  # one report, and its events (filed + 3 opened)


async def test_the_api_takes_only_json_so_a_page_elsewhere_cannot_post_to_it(client, runtime):
    body = '{"kind": "harm"}'
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        resp = await client.post(
            "/api/v1/reports",
            data=body,
            headers={"Content-Type": content_type, "Origin": "https://evil.example"},
        )
        assert resp.status == 415, content_type
        assert "application/json" in (await resp.json())["error"]
    assert await stored(runtime) == (0, 0)


async def test_a_form_post_needs_this_sites_token_and_origin(client, runtime):
    good = await with_token(client, "/report", {"title": "x"})
    forged = [
        ({"title": "x"}, {}),  # no Origin, no Referer, no token
        (good, {"Origin": "null"}),  # a sandboxed page elsewhere
        (good, {"Origin": "https://evil.example"}),
        (good, {"Referer": "https://evil.example/form.html"}),
        ({**good, "csrf": "0" * 40}, {}),  # a token of its own making
    ]
    for data, headers in forged:
        resp = await client.post("/report", data=data, headers=headers)
        assert resp.status == 403, (data, headers)
        assert "reload the page" in await resp.text()
    # The same form from this site's page is read (and answered with its field errors).
    base = str(client.make_url("/")).rstrip("/")
    ours = await client.post("/report", data=good, headers={"Origin": base})
    assert ours.status == 400 and "The report was not sent" in await ours.text()
    assert await stored(runtime) == (0, 0)

    # A form body that is not UTF-8 gets a plain 400, not a crash.
    broken = await client.post(
        "/report",
        data=b"csrf=" + good["csrf"].encode() + b"&title=\xff\xfe",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert broken.status == 400
    assert await stored(runtime) == (0, 0)


async def test_the_form_cookie_is_httponly_and_samesite(client):
    page = await client.get("/report")
    cookie = page.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain HTTP here; behind an https:// base URL it is Secure


async def test_only_this_services_host_names_are_answered(client, runtime):
    for path in ("/", "/report", "/api/v1/reports/AI-2026-000001", "/healthz"):
        resp = await client.get(path, headers={"Host": "rebound.evil.example"})
        assert resp.status == 421, path
    posted = await client.post(
        "/api/v1/reports", json=harm_report(), headers={"Host": "rebound.evil.example"}
    )
    assert posted.status == 421
    assert await stored(runtime) == (0, 0)
    assert (await client.get("/", headers={"Host": "incidents.test"})).status == 200


async def test_every_answer_carries_the_security_headers_and_no_server_version(client):
    for path in ("/", "/static/site.css", "/api/v1/reports/AI-2026-000001", "/no-such-page"):
        resp = await client.get(path)
        headers = resp.headers
        assert headers["Server"] == "ai-incidents", path
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert "unsafe-inline" not in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "same-origin"
        assert re.fullmatch(r"[0-9a-f]{12}", headers["X-Request-Id"]) or path.startswith("/static")
    filed = await client.post("/api/v1/reports", json=harm_report())
    assert filed.headers["Cache-Control"] == "no-store"  # the answer holds a receipt code


async def test_an_unexpected_fault_answers_a_plain_500_with_a_reference_and_no_traceback(
    client, runtime, monkeypatch, caplog
):
    async def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(runtime.intake, "_file", broken)
    api = await client.post("/api/v1/reports", json=harm_report())
    assert api.status == 500
    answer = await api.json()
    assert "disk on fire" not in str(answer) and "Traceback" not in str(answer)
    assert answer["request_id"] == api.headers["X-Request-Id"]
    assert any(answer["request_id"] in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("retries", [1, 6])
async def test_a_retried_post_with_an_idempotency_key_files_once(
    client, runtime, smtp_server, retries
):
    body = harm_report()
    key = {"Idempotency-Key": "3f0c7c1e-5d0b-4a59-9a55-8d2a1f2b7c01"}
    first = await client.post("/api/v1/reports", json=body, headers=key)
    assert first.status == 201
    answers = await asyncio.gather(
        *(client.post("/api/v1/reports", json=body, headers=key) for _ in range(retries))
    )
    for again in answers:
        assert again.status == 201
        assert again.headers["Idempotent-Replayed"] == "true"
        assert await again.json() == await first.json()  # the same answer, receipt code and all
    assert (await stored(runtime))[0] == 1
    await smtp_server.wait_for(3)
    await settled(runtime)
    assert len(smtp_server.messages) == 3  # told once

    other = await client.post("/api/v1/reports", json=harm_report(title="Another one"), headers=key)
    assert other.status == 422
    assert "different report" in (await other.json())["error"]
    assert (await stored(runtime))[0] == 1

    # The same key at the same moment from two clients: one report, both told its reference.
    key2 = {"Idempotency-Key": "race-1"}
    raced = await asyncio.gather(
        *(client.post("/api/v1/reports", json=body, headers=key2) for _ in range(5))
    )
    references = {(await r.json())["reference"] for r in raced}
    assert [r.status for r in raced] == [201] * 5 and len(references) == 1
    assert (await stored(runtime))[0] == 2

    bad_key = await client.post("/api/v1/reports", json=body, headers={"Idempotency-Key": "ключ"})
    assert bad_key.status == 400 and "Idempotency-Key" in (await bad_key.json())["fields"]


async def test_rate_limits_hold_across_instances_and_clear_when_the_window_passes(
    settings, clock, aiohttp_client
):
    from incidents.web.app import create_app
    from infra.bootstrap import build

    limited = settings.model_copy(update={"rate_limits": {"lookup": Limit.parse("3/minute")}})
    one = await build(limited, now=clock, base_url="http://incidents.test")
    two = await build(limited, now=clock, base_url="http://incidents.test")
    try:
        first = await aiohttp_client(create_app(one, workers=False))
        second = await aiohttp_client(create_app(two, workers=False))
        path = "/api/v1/reports/AI-2026-000001"
        guesses = [first, second, first]  # three guesses, spread over two instances
        for client in guesses:
            assert (await client.get(path, params={"receipt_code": "ABCD"})).status == 404
        over = await second.get(path, params={"receipt_code": "ABCD"})
        assert over.status == 429
        assert 1 <= int(over.headers["Retry-After"]) <= 60
        page = await with_token(
            first, "/status", {"reference": "AI-2026-000001", "receipt_code": "A"}
        )
        assert (await first.post("/status", data=page)).status == 429
        # Another client behind the same (trusted) proxy has its own allowance.
        other = await first.get(
            path, params={"receipt_code": "ABCD"}, headers={"X-Forwarded-For": "198.51.100.7"}
        )
        assert other.status == 404
        clock.advance(seconds=61)
        assert (await second.get(path, params={"receipt_code": "ABCD"})).status == 404
    finally:
        await one.close()
        await two.close()
