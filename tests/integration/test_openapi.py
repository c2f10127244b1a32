"""The API's OpenAPI 3.1 document, as the running service publishes it: valid, complete, built
from the model that validates requests, and true of the answers the service gives."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator

from incidents.obligations import service as obligations
from incidents.reports.schemas import NewReport, Reporter
from incidents.web.openapi import REF_TEMPLATE
from tests.integration.test_cases import bearer
from tests.support import harm_report, settled

DOCUMENT = "/api/v1/openapi.json"


async def published(client) -> dict[str, Any]:
    resp = await client.get(DOCUMENT)
    assert resp.status == 200
    assert resp.content_type == "application/json"
    document: dict[str, Any] = await resp.json()
    return document


def conforms(document: dict[str, Any], method: str, path: str, status: int, body: Any) -> None:
    """The answer's status is one the document lists, and its body fits the schema given."""
    responses = document["paths"][path][method.lower()]["responses"]
    assert str(status) in responses, f"{method} {path} answered {status}, not in the document"
    schema = responses[str(status)]["content"]["application/json"]["schema"]
    validator = Draft202012Validator(
        {**schema, "components": document["components"]},
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(body)]
    assert not errors, f"{method} {path} {status}: {errors}\n{body}"


async def test_the_document_is_valid_openapi_3_1(client):
    document = await published(client)
    assert document["openapi"].startswith("3.1.")
    OpenAPIV31SpecValidator(document).validate()  # raises, naming the fault


async def test_every_api_route_is_in_the_document_and_nothing_else(client):
    document = await published(client)
    served = {
        (route.method.lower(), route.resource.canonical)
        for route in client.app.router.routes()
        if route.resource is not None
        and route.resource.canonical.startswith("/api/")
        and route.resource.canonical != DOCUMENT
        and route.method not in ("HEAD", "OPTIONS")
    }
    described = {(method, path) for path, item in document["paths"].items() for method in item}
    assert (
        served
        == described
        == {
            ("post", "/api/v1/reports"),
            ("get", "/api/v1/reports/{reference}"),
            ("get", "/api/v1/reports"),
            ("post", "/api/v1/obligations/{obligation_id}/acknowledge"),
            ("get", "/api/v1/cases"),
            ("post", "/api/v1/cases"),
            ("get", "/api/v1/cases/{reference}"),
            ("post", "/api/v1/cases/{reference}/reports"),
            ("post", "/api/v1/cases/{reference}/acknowledge"),
            ("post", "/api/v1/cases/{reference}/transitions"),
            ("post", "/api/v1/cases/{reference}/tasks/{task_id}/complete"),
            ("post", "/api/v1/cases/{reference}/personal-information"),
            ("post", "/api/v1/cases/{reference}/clocks/{clock_id}/hold"),
            ("post", "/api/v1/cases/{reference}/clocks/{clock_id}/release"),
            ("get", "/api/v1/cases/{reference}/evidence"),
            ("post", "/api/v1/cases/{reference}/evidence"),
            ("get", "/api/v1/systems"),
            ("get", "/api/v1/systems/{system_id}"),
            ("post", "/api/v1/reviews/{review_id}/decision"),
            ("post", "/api/v1/events"),
            ("post", "/api/v1/reports/{reference}/classification"),
            ("post", "/api/v1/systems/{system_id}/reviews"),
            ("get", "/api/v1/approval-requests"),
            ("post", "/api/v1/approval-requests"),
            ("post", "/api/v1/approval-requests/{request_id}/decision"),
        }
    )


async def test_every_case_route_needs_a_token(client):
    document = await published(client)
    for path, item in document["paths"].items():
        if path.startswith("/api/v1/cases"):
            for method, operation in item.items():
                assert operation["security"] == [{"bearer": []}], f"{method} {path}"
                assert "401" in operation["responses"] and "404" in operation["responses"]


async def test_the_request_body_is_the_model_that_validates_requests(client):
    document = await published(client)
    schemas = document["components"]["schemas"]
    for model in (NewReport, Reporter):
        expected = model.model_json_schema(ref_template=REF_TEMPLATE)
        defs = expected.pop("$defs", {})
        assert schemas[model.__name__] == expected
        for name, schema in defs.items():  # hoisted: IncidentKind, DataCategory, Reporter
            assert schemas[name] == schema
    post = document["paths"]["/api/v1/reports"]["post"]
    assert post["requestBody"]["required"] is True
    assert post["requestBody"]["content"] == {
        "application/json": {"schema": {"$ref": "#/components/schemas/NewReport"}}
    }
    header = next(p for p in post["parameters"] if p["in"] == "header")
    assert header["name"] == "Idempotency-Key" and header["required"] is False
    assert "Retry-After" in post["responses"]["429"]["headers"]
    get = document["paths"]["/api/v1/reports/{reference}"]["get"]
    path = next(p for p in get["parameters"] if p["in"] == "path")
    assert path["schema"]["pattern"] == r"^AI-[0-9]{4}-[0-9]{6,9}$"


async def test_the_answers_the_service_gives_fit_the_document(client, runtime, clock):
    document = await published(client)
    reports, one = "/api/v1/reports", "/api/v1/reports/{reference}"

    # Discovered three days ago: every obligation starts breached, and escalation opens another.
    late = await client.post(reports, json=harm_report(discovered_at="2026-11-21T10:00:00-08:00"))
    filed = await late.json()
    conforms(document, "POST", reports, late.status, filed)
    assert late.status == 201 and late.headers["Location"].endswith(filed["reference"])
    assert {o["breached_at"] is not None for o in filed["obligations"]} == {True}

    # A data exposure: obligations with an interpretation and an action.
    exposure = harm_report(kind="data_exposure", data_categories=["pii", "cji"])
    resp = await client.post(reports, json=exposure)
    conforms(document, "POST", reports, resp.status, await resp.json())
    assert any(o["interpretation"] for o in (await resp.json())["obligations"])

    first = filed["obligations"][0]
    async with runtime.uows() as uow:
        await obligations.acknowledge(first["id"], by=first["recipients"][0], uow=uow, now=clock())
    resp = await client.get(
        f"{reports}/{filed['reference']}", params={"receipt_code": filed["receipt_code"]}
    )
    report = await resp.json()
    conforms(document, "GET", one, resp.status, report)
    assert resp.status == 200
    assert any(o["acknowledged_at"] and o["acknowledged_by"] for o in report["obligations"])

    refusals = [
        ("POST", reports, await client.post(reports, json={"kind": "harm"})),
        ("POST", reports, await client.post(reports, data=b"[1", headers=_JSON)),
        ("POST", reports, await client.post(reports, data=b"x" * 70_000, headers=_JSON)),
        ("POST", reports, await client.post(reports, data=b"{}", headers={"Content-Type": "a/b"})),
        ("GET", one, await client.get(f"{reports}/{filed['reference']}?receipt_code=nope")),
        ("GET", one, await client.get(f"{reports}/AI-2026-999999?receipt_code=x")),
    ]
    for method, path, answer in refusals:
        conforms(document, method, path, answer.status, await answer.json())
    assert [answer.status for _, _, answer in refusals] == [400, 400, 413, 415, 404, 404]

    elsewhere = await client.get(
        f"{reports}/{filed['reference']}", headers={"Host": "evil.example"}
    )
    conforms(document, "GET", one, elsewhere.status, await elsewhere.json())
    assert elsewhere.status == 421

    # Guessing receipt codes runs into the limit: 429, and when to try again.
    for _ in range(500):
        guess = await client.get(f"{reports}/{filed['reference']}?receipt_code=guess")
        if guess.status == 429:
            break
    conforms(document, "GET", one, guess.status, await guess.json())
    assert guess.status == 429 and int(guess.headers["Retry-After"]) >= 0


class TestACase:
    """A security case, as the service shows it to security staff: fits the document."""

    @pytest.fixture
    def settings(self, settings):  # type: ignore[no-untyped-def]
        return settings.model_copy(update={"policy": ["redondo-beach"]})

    async def test_the_answers_about_a_case_fit_the_document(self, client, runtime):
        document = await published(client)
        cases, one = "/api/v1/cases", "/api/v1/cases/{reference}"
        exposure = harm_report(kind="data_exposure", data_categories=["pii"])
        filed = await (await client.post("/api/v1/reports", json=exposure)).json()
        await settled(runtime)
        iso = await bearer(runtime, "iso@city.example")

        listed = await client.get(cases, headers=iso)
        body = await listed.json()
        conforms(document, "GET", cases, listed.status, body)
        assert listed.status == 200
        [case] = body["cases"]
        assert case["reports"] == [filed["reference"]] and case["page"] and case["tasks"]
        ref = case["reference"]

        shown = await client.get(f"{cases}/{ref}", headers=iso)
        conforms(document, "GET", one, shown.status, await shown.json())
        assert shown.status == 200

        # The report, to the security staff it names, names its case.
        it = await bearer(runtime, "it@city.example")
        report = await client.get(f"/api/v1/reports/{filed['reference']}", headers=it)
        seen = await report.json()
        conforms(document, "GET", "/api/v1/reports/{reference}", report.status, seen)
        assert report.status == 200
        assert seen["case"] == {"reference": ref, "phase": "detect_analyse"}

        # A clock on hold shows how it is held.
        clock = next(c for c in case["clocks"] if c["status"] != "acknowledged")
        hold = "/api/v1/cases/{reference}/clocks/{clock_id}/hold"
        held = await client.post(
            f"{cases}/{ref}/clocks/{clock['id']}/hold", json={"reason": "Police"}, headers=iso
        )
        answer = await held.json()
        conforms(document, "POST", hold, held.status, answer)
        assert held.status == 200
        assert any(c.get("held") for c in answer["clocks"]), answer["clocks"]

        transitions = "/api/v1/cases/{reference}/transitions"
        moves = [
            await client.post(f"{cases}/{ref}/transitions", json=move, headers=iso)
            for move in ({"to": "recover"}, {"to": "finished"}, {"to": "contain"})
        ]
        for move in moves:
            conforms(document, "POST", transitions, move.status, await move.json())
        assert [move.status for move in moves] == [409, 400, 200]

        refusals = [
            ("GET", one, await client.get(f"{cases}/SEC-2026-999999", headers=iso)),
            ("GET", one, await client.get(f"{cases}/{ref}")),
            (
                "GET",
                cases,
                await client.get(cases, headers=await bearer(runtime, "x@city.example")),
            ),
            ("GET", cases, await client.get(cases, params={"phase": "x"}, headers=iso)),
        ]
        for method, path, answer in refusals:
            conforms(document, method, path, answer.status, await answer.json())
        assert [answer.status for _, _, answer in refusals] == [404, 401, 404, 400]


_JSON = {"Content-Type": "application/json"}
