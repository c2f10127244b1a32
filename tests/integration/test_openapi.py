"""The API's OpenAPI 3.1 document, as the running service publishes it: valid, complete, built
from the model that validates requests, and true of the answers the service gives."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator

from incidents.obligations import service as obligations
from incidents.reports.schemas import NewReport, Reporter
from incidents.web.openapi import REF_TEMPLATE
from tests.support import harm_report

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
        }
    )


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


_JSON = {"Content-Type": "application/json"}
