"""The security case pages against the running service, signed in with a session cookie as a
browser is: the queue, a case with its tasks and page, and each form that works it (take the
case, mark a task done, change the phase, hold and release a clock, link a report, confirm
personal information, open a case by hand). A refused form comes back on the case page with
its reason; people outside security never learn that a case exists."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from incidents.kernel.actor import Grant
from infra.bootstrap import Runtime
from tests.support import FakeClock, harm_report, settled, sign_in_as, with_token

Client = TestClient[Any, Any]
CASE = re.compile(r"SEC-2026-\d{6}")


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    return settings.model_copy(update={"policy": ["redondo-beach"]})


async def file(client: Client, runtime: Runtime, **changes: object) -> str:
    body = harm_report(**{"kind": "data_exposure", "data_categories": ["pii"], **changes})
    filed = await client.post("/api/v1/reports", json=body)
    assert filed.status == 201, await filed.text()
    await settled(runtime)
    return str((await filed.json())["reference"])


async def page(client: Client, path: str, status: int = 200) -> str:
    answer = await client.get(path)
    text = await answer.text()
    assert answer.status == status, text[:3000]
    return text


async def post(
    client: Client, page_path: str, action: str, fields: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """Send a form from `page_path` as a browser does; (status, Location, body)."""
    data = await with_token(client, page_path, fields or {})
    answer = await client.post(action, data=data, allow_redirects=False)
    return answer.status, answer.headers.get("Location", ""), await answer.text()


def summary(html: str) -> str:
    found = re.search(r'<div class="error-summary".*?</div>', html, re.S)
    assert found, "no error summary on the page"
    return found.group(0)


async def the_case(client: Client) -> str:
    listed = await page(client, "/cases")
    [reference] = set(CASE.findall(listed))
    return str(reference)


async def test_the_queue_shows_a_case_to_security_and_nobody_else(client, runtime) -> None:  # type: ignore[no-untyped-def]
    report = await file(client, runtime)
    await sign_in_as(client, runtime, "ciso@city.example")
    listed = await page(client, "/cases")
    reference = await the_case(client)
    assert f'href="/cases/{reference}"' in listed
    assert "Benefits Chatbot" in listed and "High" in listed
    assert "Detect and analyse" in listed
    assert "Not taken yet" in listed  # nobody has acknowledged it
    assert "PST" in listed  # its next deadline, in the organisation's time zone

    # The filters are a plain GET form.
    assert reference in await page(client, "/cases?phase=detect_analyse&severity=high")
    assert reference not in await page(client, "/cases?phase=contain")
    assert reference not in await page(client, "/cases?owner=someone%40city.example")
    await page(client, "/cases?phase=finished", status=400)

    # The reporter (signed in) learns nothing: the queue, the case and its forms are not there.
    await sign_in_as(client, runtime, "ana.ruiz@city.example")
    await page(client, "/cases", status=404)
    await page(client, f"/cases/{reference}", status=404)
    taken = await client.post(
        f"/cases/{reference}/acknowledge",
        data=await with_token(client, f"/reports/{report}", {}),
        allow_redirects=False,
    )
    assert taken.status == 404

    # An auditor reads the case, without a form to work it.
    await sign_in_as(client, runtime, "records.auditor@city.example", Grant.AUDITOR)
    shown = await page(client, f"/cases/{reference}")
    assert "Contain the AI system" in shown
    assert "Mark done" not in shown and "Acknowledge and take" not in shown
    assert 'method="post" action="/cases"' not in await page(client, "/cases")


async def test_security_takes_the_case_and_works_a_task_and_the_phases(client, runtime) -> None:  # type: ignore[no-untyped-def]
    report = await file(client, runtime)
    await sign_in_as(client, runtime, "ciso@city.example")
    reference = await the_case(client)
    path = f"/cases/{reference}"
    shown = await page(client, path)

    # Facts, the linked report, the tasks and who was paged.
    assert "personal information (PII) is involved" in shown
    assert f'href="/reports/{report}"' in shown
    assert "Contain the AI system" in shown and "Preserve logs, prompts and outputs" in shown
    assert "ciso@city.example" in shown  # paged first, in business hours
    assert "Acknowledge and take this case" in shown

    status, location, _ = await post(client, path, f"{path}/acknowledge")
    assert (status, location) == (303, f"{path}#facts")
    shown = await page(client, path)
    assert "Acknowledge and take this case" not in shown
    assert "Acknowledged by ciso@city.example" in shown  # the page chain's answer
    assert "Case taken by ciso@city.example" in shown  # the timeline

    # Mark one task done.
    tasks = re.findall(rf'action="{path}/tasks/([^/"]+)/complete"', shown)
    assert len(tasks) >= 2
    status, location, _ = await post(client, path, f"{path}/tasks/{tasks[0]}/complete")
    assert (status, location) == (303, f"{path}#tasks")
    shown = await page(client, path)
    assert len(re.findall(rf'action="{path}/tasks/[^/"]+/complete"', shown)) == len(tasks) - 1
    assert "Done by ciso@city.example" in shown
    assert "Task done: " in shown

    # Skipping ahead without a reason is refused: on the case page, with the reason, and the
    # choice kept.
    status, _, refused = await post(client, path, f"{path}/transition", {"to": "recover"})
    assert status == 409
    assert "give a reason" in summary(refused)
    assert 'href="#phase-to"' in summary(refused)
    assert '<option value="recover" selected>' in refused
    assert "<title>Error: " in refused
    closing = {"to": "closed", "reason": "done"}
    status, _, refused = await post(client, path, f"{path}/transition", closing)
    assert status == 409 and "required tasks still open" in summary(refused)
    assert ">done</textarea>" in refused  # what was typed is kept

    status, location, _ = await post(client, path, f"{path}/transition", {"to": "contain"})
    assert (status, location) == (303, f"{path}#phase")
    shown = await page(client, path)
    assert "Now: <strong>Contain</strong>" in shown
    assert "Phase moved from detect and analyse to contain" in shown
    assert reference in await page(client, "/cases?phase=contain")


async def test_a_clock_is_held_with_a_reason_and_released(  # type: ignore[no-untyped-def]
    client, runtime, clock: FakeClock
) -> None:
    await file(client, runtime)
    await sign_in_as(client, runtime, "ciso@city.example")
    reference = await the_case(client)
    path = f"/cases/{reference}"
    shown = await page(client, path)
    clocks = re.findall(rf'action="{path}/clocks/([^/"]+)/hold"', shown)
    assert clocks, "no clock to hold"
    held = clocks[0]

    status, _, refused = await post(client, path, f"{path}/clocks/{held}/hold", {"reason": " "})
    assert status == 400
    assert f'href="#hold-reason-{held}"' in summary(refused)
    assert f'id="hold-reason-{held}-error"' in refused and 'aria-invalid="true"' in refused

    why = {"reason": "Police asked us to delay notice"}
    status, location, _ = await post(client, path, f"{path}/clocks/{held}/hold", why)
    assert (status, location) == (303, f"{path}#clocks")
    shown = await page(client, path)
    assert "On hold" in shown and "Police asked us to delay notice" in shown
    assert f'action="{path}/clocks/{held}/release"' in shown
    assert f'action="{path}/clocks/{held}/hold"' not in shown
    status, _, refused = await post(client, path, f"{path}/clocks/{held}/hold", why)
    assert status == 409 and "already on hold" in summary(refused)

    clock.advance(minutes=25)  # within the session's idle time
    status, location, _ = await post(client, path, f"{path}/clocks/{held}/release")
    assert (status, location) == (303, f"{path}#clocks")
    shown = await page(client, path)
    assert f'action="{path}/clocks/{held}/hold"' in shown
    assert "released after 25 minutes" in shown
    assert "25 minutes in all" in shown  # held before

    missing = await client.post(
        f"{path}/clocks/no-such-clock/release",
        data=await with_token(client, path, {}),
        allow_redirects=False,
    )
    assert missing.status == 404


async def test_reports_are_linked_and_personal_information_confirmed(client, runtime) -> None:  # type: ignore[no-untyped-def]
    await file(client, runtime)
    await sign_in_as(client, runtime, "ciso@city.example")
    reference = await the_case(client)
    path = f"/cases/{reference}"

    other = await file(client, runtime, kind="harm", data_categories=[])
    status, _, refused = await post(client, path, f"{path}/reports", {"report": "AI-2026-999999"})
    assert status == 404 and "No report has the reference" in summary(refused)
    assert 'value="AI-2026-999999"' in refused
    status, location, _ = await post(client, path, f"{path}/reports", {"report": other})
    assert (status, location) == (303, f"{path}#reports")
    assert f'href="/reports/{other}"' in await page(client, path)

    fields = {"residents_affected": "many", "states": "CA"}
    status, _, refused = await post(client, path, f"{path}/personal-information", fields)
    assert status == 400 and 'href="#pi-residents"' in summary(refused)
    fields = {"residents_affected": "12", "states": "CA, NV"}
    status, location, _ = await post(client, path, f"{path}/personal-information", fields)
    assert (status, location) == (303, f"{path}#clocks")
    await settled(runtime)
    shown = await page(client, path)
    assert "Personal information confirmed acquired, by ciso@city.example" in shown


async def test_a_case_is_opened_by_hand_from_the_queue(client, runtime) -> None:  # type: ignore[no-untyped-def]
    await sign_in_as(client, runtime, "iso@city.example")
    harm = await file(client, runtime, kind="harm", data_categories=[])
    assert await page(client, "/cases")  # no case: no rule opens one for this harm

    status, _, refused = await post(client, "/cases", "/cases", {"report": "AI-2026-999999"})
    assert status == 404 and 'href="#open-report"' in summary(refused)
    status, location, _ = await post(client, "/cases", "/cases", {"report": harm})
    assert status == 303 and CASE.fullmatch(location.removeprefix("/cases/")), location
    shown = await page(client, location)
    assert f'href="/reports/{harm}"' in shown and "by iso@city.example" in shown
    # Again: the report's case, not a second one.
    status, again, _ = await post(client, "/cases", "/cases", {"report": harm})
    assert (status, again) == (303, location)
