"""Reports other systems publish as events (POST /api/v1/events, CloudEvents in structured JSON
mode): filed once per event, with the channel "event" and the event's source kept; an event that
is not a report submission, or whose data is not a report, is refused naming what to fix."""

from __future__ import annotations

from incidents.kernel.actor import Grant
from tests.support import bearer, harm_report, settled

STRUCTURED = {"Content-Type": "application/cloudevents+json"}


def event(**changes):  # type: ignore[no-untyped-def]
    return {
        "specversion": "1.0",
        "id": "evt-0001",
        "source": "urn:city:ai-monitor",
        "type": "gov.city.ai-monitor.report.submitted.v1",
        "datacontenttype": "application/json",
        "data": harm_report(title="Drift alarm: the chatbot's answers changed overnight"),
        **changes,
    }


async def test_an_event_files_one_report_however_often_it_comes(client, runtime):
    first = await client.post("/api/v1/events", json=event(), headers=STRUCTURED)
    assert first.status == 201, await first.text()
    filed = await first.json()
    again = await client.post("/api/v1/events", json=event())
    assert again.status == 200
    assert (await again.json()) == {
        "id": filed["id"],
        "reference": filed["reference"],
        "duplicate": True,
    }
    await settled(runtime)
    auditor = await bearer(runtime, "auditor@city.example", Grant.AUDITOR)
    shown = await (
        await client.get(f"/api/v1/reports/{filed['reference']}", headers=auditor)
    ).json()
    assert shown["channel"] == "event" and shown["source"] == "urn:city:ai-monitor"
    listed = await (await client.get("/api/v1/reports", headers=auditor)).json()
    assert len(listed["reports"]) == 1
    # Another event from the same source is another report.
    other = await client.post("/api/v1/events", json=event(id="evt-0002"))
    assert other.status == 201


async def test_an_event_that_is_not_a_report_is_refused_naming_what_to_fix(client):
    wrong_type = await client.post(
        "/api/v1/events", json=event(type="gov.city.ai-monitor.heartbeat.v1")
    )
    assert wrong_type.status == 400
    assert "report.submitted.v1" in (await wrong_type.json())["fields"]["type"]
    bad_data = await client.post("/api/v1/events", json=event(data=harm_report(title="x")))
    assert bad_data.status == 400 and "title" in (await bad_data.json())["fields"]
    old = await client.post("/api/v1/events", json=event(specversion="0.3"))
    assert old.status == 400 and "specversion" in (await old.json())["fields"]
