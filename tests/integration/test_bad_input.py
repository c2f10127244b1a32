"""Bad input gets a clear answer that says what to fix, and nothing is stored."""

from __future__ import annotations

import re

from sqlalchemy import func
from sqlmodel import select

from incidents.kernel.eventlog import EventRow
from incidents.reports.model import Report
from tests.support import harm_report, with_token


async def stored(runtime) -> tuple[int, int]:
    async with runtime.uows() as uow:
        reports = (await uow.session.exec(select(func.count()).select_from(Report))).one()
        events = (await uow.session.exec(select(func.count()).select_from(EventRow))).one()
    return reports, events


async def test_missing_and_malformed_fields_get_a_message_each(client, runtime):
    body = harm_report(kind="oops", discovered_at="yesterday", ai_system="")
    del body["title"]
    body["reporter"] = {"name": "Ana", "email": "not-an-address"}
    resp = await client.post("/api/v1/reports", json=body)
    assert resp.status == 400
    answer = await resp.json()
    fields = answer["fields"]
    assert fields["title"] == "This is required."
    assert fields["kind"].startswith("Choose one of: harm, malfunction, data_exposure")
    assert "2026-11-24T09:30:00-08:00" in fields["discovered_at"]
    assert fields["ai_system"] == "This is required."
    assert fields["reporter.email"] == "Give an email address such as name@city.gov."
    assert fields["reporter.department"] == "This is required."
    assert await stored(runtime) == (0, 0)


async def test_a_time_without_offset_or_in_the_future_is_refused(client, runtime):
    naive = await client.post("/api/v1/reports", json=harm_report(discovered_at="2026-11-24T08:00"))
    assert (await naive.json())["fields"]["discovered_at"].startswith("Add the time zone offset")
    future = await client.post(
        "/api/v1/reports", json=harm_report(discovered_at="2026-11-25T08:00:00-08:00")
    )
    assert future.status == 400
    assert "future" in (await future.json())["fields"]["discovered_at"]
    assert await stored(runtime) == (0, 0)


async def test_a_body_that_is_not_json_or_not_an_object_is_refused(client, runtime):
    for raw in (b"{not json", b"[1, 2]", b""):
        resp = await client.post(
            "/api/v1/reports", data=raw, headers={"Content-Type": "application/json"}
        )
        assert resp.status == 400
        assert "JSON" in (await resp.json())["fields"]["body"]
    unknown = await client.post("/api/v1/reports", json=harm_report(severity="high"))
    assert (await unknown.json())["fields"]["severity"].startswith("This field is not part")
    assert await stored(runtime) == (0, 0)


async def test_an_oversized_body_is_refused_with_413(client, runtime):
    huge = harm_report(description="x" * (70 * 1024))
    resp = await client.post("/api/v1/reports", json=huge)
    assert resp.status == 413
    assert "64 KiB" in (await resp.json())["error"]
    form = await client.post("/report", data={"description": "x" * (70 * 1024)})
    assert form.status == 413
    assert "64 KiB" in await form.text()
    assert await stored(runtime) == (0, 0)


async def test_the_form_comes_back_with_each_error_beside_its_field_and_the_values_kept(
    client, runtime
):
    typed = {"title": "Chatbot", "reporter_email": "ana@", "reporter_name": "Ana Ruiz"}
    resp = await client.post("/report", data=await with_token(client, "/report", typed))
    page = await resp.text()
    assert resp.status == 400
    assert "The report was not sent" in page
    # Each message has an id that its input points to, and the summary links to the input.
    for field in ("kind", "description", "discovered_at", "reporter_email", "ai_system"):
        assert f'id="{field}-error"' in page, field
        assert f'href="#{field}"' in page, field
        tag = re.search(rf'<(?:input|textarea)[^>]*\bid="{field}"[^>]*>', page)
        assert tag, field
        assert f"{field}-error" in tag.group(0) and 'aria-invalid="true"' in tag.group(0)
    assert 'value="Ana Ruiz"' in page  # what was typed is kept
    assert "Write at least 3 characters." not in page  # "Chatbot" is long enough
    assert await stored(runtime) == (0, 0)


async def test_a_form_post_from_another_site_is_refused(client, runtime):
    resp = await client.post(
        "/report", data={"title": "x"}, headers={"Origin": "https://evil.example"}
    )
    assert resp.status == 403
    assert await stored(runtime) == (0, 0)
