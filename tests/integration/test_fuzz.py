"""Hostile input over real HTTP never gets a 5xx: fuzzing as tests, against `incidents serve`.

The service runs as its own process (as deployed, on the real clock), on SQLite and on
PostgreSQL. Two fuzzers:

- **Schemathesis** reads the API's OpenAPI document from the running service and sends what it
  generates from it, valid and invalid, to every operation; each answer must be no server error,
  have a status the document lists, and a body and headers that match the document. The security
  cases' operations are sent with a CISO's token (made with `incidents tokens create`), half of
  them at a real case, task and clock, so that the fuzz gets past 401 and 404 to the handlers.
- **Hypothesis** posts arbitrary bodies to the two forms (/report and /status): random field
  names and values, invalid UTF-8, NUL and control characters, values past the size limit, odd
  dates and charsets, broken multipart. Without the form's token the answer is a 4xx (403);
  with the token (taken from the form page with its cookie, as a browser does) the body reaches
  the form's handler. Every answer must be below 500.

Each run is derandomized (the same draws every time; only the clock and the references of the
reports filed differ) and bounded in examples: about 300 requests to each API operation and 250
to each form and token case. Failures do not stop a run: every kind found is listed at the end
with its exact request, and for a 5xx, the traceback the service logged.
"""

from __future__ import annotations

import collections
import html
import re
import subprocess
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import IO, Any
from urllib.parse import quote_from_bytes
from zoneinfo import ZoneInfo

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.harness.kafka import free_port
from tests.support import INCIDENTS, ServiceProcess, harm_report

API_EXAMPLES = 150  # per operation and per mode (valid data, invalid data)
FORM_EXAMPLES = 250  # per form, with and without its token
ZONE = "America/Los_Angeles"  # the default pack's (san-jose) zone: the form's times are local

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def fuzz_settings(examples: int) -> settings:
    # Nothing is raised inside a run (failures are collected), so there is nothing to shrink.
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )


@dataclass
class Live:
    """The running service, and what it has written to its log."""

    url: str
    env: dict[str, str] = field(default_factory=dict)  # the service's: for `incidents` commands
    log: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=5000))

    def token(self, email: str) -> str:
        """A bearer token for this person, made as an administrator does."""
        made = subprocess.run(
            [INCIDENTS, "tokens", "create", email, "--name", "fuzz"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert made.returncode == 0, made.stderr
        return made.stdout.strip().splitlines()[-1]  # the token, alone on the last line

    def log_tail(self, lines: int = 80) -> str:
        return "".join(list(self.log)[-lines:])

    def error_of(self, request_id: str | None) -> tuple[str, str]:
        """What the service logged for a 5xx answer (found by its X-Request-Id): the exception
        and the last frame of ours it passed through, and the end of the traceback."""
        if not request_id:
            return "nothing logged (no X-Request-Id)", ""
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            lines = list(self.log)
            at = next((i for i, line in enumerate(lines) if f"request {request_id} " in line), None)
            if at is not None:
                logged = lines[at + 1 :]
                end = next((i for i, line in enumerate(logged) if _LOG_LINE.match(line)), None)
                block = [line.rstrip() for line in logged[:end] if line.strip()]
                raised = [line for line in block if _RAISED.match(line)] or ["?"]
                ours = [line.strip() for line in block if _OUR_FRAME.search(line)] or ["?"]
                kind = f"{raised[-1].split(':')[0]}, last in {ours[-1]}"
                return kind, "\n".join(block[-14:])
            time.sleep(0.05)
        return f"request {request_id}: not in the service's log", ""


_RAISED = re.compile(r"^(?!Traceback)[A-Za-z_][\w.]*(:|$)")  # e.g. "KeyError: 'x'"
_OUR_FRAME = re.compile(r'File "[^"]*/(incidents|infra|consumers|notifications)/')
_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")  # a new log entry


def _drain(stream: IO[bytes], into: collections.deque[str]) -> None:
    """Read the service's stderr as it comes: a pipe nobody reads stops a chatty service."""
    for line in iter(stream.readline, b""):
        into.append(line.decode(errors="replace"))


@pytest.fixture
async def live(tmp_path, database_url) -> AsyncIterator[Live]:  # type: ignore[no-untyped-def]
    env = {
        "INCIDENTS_HOME": str(tmp_path / "home"),
        "INCIDENTS_DATABASE_URL": database_url,
        # The per-client rate limits are another test's business; on, they would answer most
        # of the fuzz with 429 (which the document lists) and leave the rest untried.
        "INCIDENTS_RATE_LIMITS": "intake=0,lookup=0,ack=0",
    }
    service = ServiceProcess(env, free_port())
    await service.start(timeout=60)
    served = Live(service.url, env=service.env)
    threading.Thread(target=_drain, args=(service.process.stderr, served.log), daemon=True).start()
    try:
        yield served
    finally:
        service.stop()


@dataclass
class Tally:
    """Requests tried, answers by status, and the failures, one per kind of fault."""

    name: str
    tried: int = 0
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    failures: dict[str, str] = field(default_factory=dict)
    server_errors: list[tuple[str | None, str]] = field(default_factory=list)  # (id, request)
    started: float = field(default_factory=time.monotonic)

    def answer(self, status: int) -> None:
        self.tried += 1
        self.statuses[status] += 1

    def fail(self, kind: str, detail: str) -> None:
        self.failures.setdefault(kind, detail)

    def server_error(self, status: int, request_id: str | None, request: str) -> None:
        """A 5xx: told apart by what the service logged, once the run is over."""
        self.server_errors.append((request_id, f"{status}|{request}"))

    def summary(self) -> str:
        seconds = time.monotonic() - self.started
        statuses = ", ".join(f"{s}: {n}" for s, n in sorted(self.statuses.items()))
        return (
            f"{self.name}: {self.tried} requests in {seconds:.1f}s ({statuses}); "
            f"{len(self.failures)} failure(s)"
        )

    def check(self, live: Live) -> None:
        if self.server_errors:
            time.sleep(0.5)  # for the service's log to catch up
        for request_id, request in self.server_errors:
            status, _, request = request.partition("|")
            error, traceback = live.error_of(request_id)
            self.fail(f"{status}: {error}", f"{request}\n{traceback}")
        print(self.summary())
        if self.failures:
            listed = "\n\n".join(f"## {kind}\n{detail}" for kind, detail in self.failures.items())
            raise AssertionError(
                f"{self.summary()}\n\n{listed}\n\n## the service's log\n{live.log_tail()}"
            )


# --- Schemathesis against the API ------------------------------------------------------------


def test_the_api_answers_as_its_document_says_to_anything_schemathesis_sends(live):
    schema = schemathesis.openapi.from_url(f"{live.url}/api/v1/openapi.json")
    operations = {result.ok().label: result.ok() for result in schema.get_all_operations()}
    assert set(operations) == {
        "POST /api/v1/reports",
        "GET /api/v1/reports/{reference}",
        "GET /api/v1/reports",
        "POST /api/v1/obligations/{obligation_id}/acknowledge",
        "GET /api/v1/cases",
        "POST /api/v1/cases",
        "GET /api/v1/cases/{reference}",
        "POST /api/v1/cases/{reference}/reports",
        "POST /api/v1/cases/{reference}/acknowledge",
        "POST /api/v1/cases/{reference}/transitions",
        "POST /api/v1/cases/{reference}/tasks/{task_id}/complete",
        "POST /api/v1/cases/{reference}/personal-information",
        "POST /api/v1/cases/{reference}/clocks/{clock_id}/hold",
        "POST /api/v1/cases/{reference}/clocks/{clock_id}/release",
        "GET /api/v1/cases/{reference}/evidence",
        "POST /api/v1/cases/{reference}/evidence",
        "GET /api/v1/systems",
        "GET /api/v1/systems/{system_id}",
        "POST /api/v1/reviews/{review_id}/decision",
        "POST /api/v1/events",
        "POST /api/v1/reports/{reference}/classification",
        "POST /api/v1/systems/{system_id}/reviews",
        "GET /api/v1/approval-requests",
        "POST /api/v1/approval-requests",
        "POST /api/v1/approval-requests/{request_id}/decision",
    }
    post, get = operations["POST /api/v1/reports"], operations["GET /api/v1/reports/{reference}"]
    api = Api(requests.Session(), Tally("schemathesis"))
    modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
    with api.http:
        # Known answers: a report filed, looked up, filed again with its Idempotency-Key (the
        # first answer again), and the key reused for another report (422).
        body = harm_report(discovered_at=(datetime.now(UTC) - timedelta(hours=1)).isoformat())
        key = {"Idempotency-Key": "fuzz-known-answers"}
        filed = api.send(post.Case(body=body, headers=key, media_type="application/json"))
        assert filed.status_code == 201, filed.text
        again = api.send(post.Case(body=body, headers=key, media_type="application/json"))
        assert again.status_code == 201 and again.json() == filed.json()
        other = {**body, "title": "Another report altogether"}
        reused = api.send(post.Case(body=other, headers=key, media_type="application/json"))
        assert reused.status_code == 422
        answer = filed.json()
        found = get.Case(
            path_parameters={"reference": answer["reference"]},
            query={"receipt_code": answer["receipt_code"]},
        )
        assert api.send(found).status_code == 200
        # Without a token, every case operation is 401; with one, known answers, and a case,
        # task and clock the fuzz can aim at.
        for label, operation in operations.items():
            if _is_case(operation):
                assert api.send(_some_case(operation)).status_code == 401, label
        api.bearer = {"Authorization": f"Bearer {live.token('ciso@city.example')}"}
        known = _known_case_answers(api, operations)
        for operation in operations.values():
            # The coverage phase: boundaries and each way to break the schema, one case each,
            # other content types and other methods.
            config = schema.config.generation_for(operation=operation, phase="coverage")
            for case in schema.iter_coverage_cases(
                operation, generation_modes=modes, generation_config=config
            ):
                api.send(case)
            # The fuzzing phase: cases drawn from the schema, valid and not.
            for mode in modes:
                _fuzz_operation(api, operation, mode, known)
    api.tally.check(live)


def _is_case(operation: schemathesis.APIOperation) -> bool:
    return operation.path.startswith("/api/v1/cases")


def _some_case(operation: schemathesis.APIOperation) -> schemathesis.Case:
    """A well-formed request to a case operation, at a case that need not exist."""
    names = {"reference": "SEC-2026-000001", "task_id": "t", "clock_id": "c"}
    path = {n: v for n, v in names.items() if "{" + n + "}" in operation.path}
    bodies = {
        "/api/v1/cases": {"report": "AI-2026-000001"},
        "/api/v1/cases/{reference}/reports": {"report": "AI-2026-000001"},
        "/api/v1/cases/{reference}/transitions": {"to": "contain"},
        "/api/v1/cases/{reference}/personal-information": {"residents_affected": 1},
        "/api/v1/cases/{reference}/clocks/{clock_id}/hold": {"reason": "Police asked"},
    }
    if operation.method.upper() == "POST" and operation.path in bodies:
        return operation.Case(
            path_parameters=path, body=bodies[operation.path], media_type="application/json"
        )
    return operation.Case(path_parameters=path)


def _known_case_answers(api: Api, operations: dict[str, Any]) -> dict[str, str]:
    """A security report opens a case (San José's plan, under the CISO); the CISO works it
    through each operation once. Returns the case's reference and a task and a clock of it."""
    discovered = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    filing = operations["POST /api/v1/reports"]

    def file(kind: str) -> str:
        body = harm_report(kind=kind, discovered_at=discovered)
        filed = api.send(filing.Case(body=body, media_type="application/json"))
        assert filed.status_code == 201, filed.text
        return str(filed.json()["reference"])

    def call(label: str, body: Any = None, **path: str) -> Any:
        operation = operations[label]
        if body is None:
            case = operation.Case(path_parameters=path)
        else:
            case = operation.Case(path_parameters=path, body=body, media_type="application/json")
        return api.send(case)

    report = file("security")
    deadline = time.monotonic() + 30
    while True:  # the service's worker opens the case from the report's event
        listed = call("GET /api/v1/cases")
        assert listed.status_code == 200, listed.text
        opened = [c for c in listed.json()["cases"] if report in c["reports"]]
        if opened:
            break
        assert time.monotonic() < deadline, "no case opened for a security report"
        time.sleep(0.2)
    ref = opened[0]["reference"]
    shown = call("GET /api/v1/cases/{reference}", reference=ref)
    assert shown.status_code == 200, shown.text
    case = shown.json()
    assert case["tasks"], case
    task = case["tasks"][0]["id"]
    clock = next(
        (c["id"] for c in case["clocks"] if c["status"] != "acknowledged"), case["tasks"][-1]["id"]
    )
    expected = [
        ("POST /api/v1/cases/{reference}/acknowledge", None, {}, 200),
        ("POST /api/v1/cases/{reference}/transitions", {"to": "recover"}, {}, 409),
        ("POST /api/v1/cases/{reference}/transitions", {"to": "contain"}, {}, 200),
        ("POST /api/v1/cases/{reference}/tasks/{task_id}/complete", None, {"task_id": task}, 200),
        (
            "POST /api/v1/cases/{reference}/clocks/{clock_id}/hold",
            {"reason": "Police asked"},
            {"clock_id": clock},
            200,
        ),
        (
            "POST /api/v1/cases/{reference}/clocks/{clock_id}/release",
            None,
            {"clock_id": clock},
            200,
        ),
        (
            "POST /api/v1/cases/{reference}/personal-information",
            {"residents_affected": 12, "states": ["CA"]},
            {},
            200,
        ),
        ("POST /api/v1/cases/{reference}/reports", {"report": file("harm")}, {}, 200),
    ]
    for label, body, path, status in expected:
        answer = call(label, body, reference=ref, **path)
        assert answer.status_code == status, f"{label}: {answer.status_code} {answer.text}"
    made = call("POST /api/v1/cases", {"report": file("harm")})
    assert made.status_code == 201, made.text
    return {"reference": ref, "task_id": task, "clock_id": clock}


@dataclass
class Api:
    http: requests.Session
    tally: Tally
    bearer: dict[str, str] = field(default_factory=dict)  # sent with the case operations

    def send(self, case: schemathesis.Case) -> Any:
        """Send one case and check the answer against the document; return the answer."""
        label = case.operation.label
        headers = self.bearer if _is_case(case.operation) else None
        try:
            response = case.call(session=self.http, headers=headers, timeout=30)
        except requests.RequestException as exc:
            self.tally.fail(f"{label}: no answer", _request_of(case, exc))
            return None
        self.tally.answer(response.status_code)
        try:
            case.validate_response(response, checks=CHECKS)
        except (Failure, FailureGroup) as exc:
            failures = exc.exceptions if isinstance(exc, FailureGroup) else (exc,)
            for failure in failures:
                detail = f"{_request_of(case, failure)}\nanswer: {response.status_code}"
                self.tally.fail(f"{label}: {failure.title}", f"{detail} {response.text[:500]!r}")
        if response.status_code >= 500:
            ids = [v for k, v in response.headers.items() if k.lower() == "x-request-id"]
            request = _request_of(case, RuntimeError(label))
            self.tally.server_error(response.status_code, ids[0][0] if ids else None, request)
        return response


def _fuzz_operation(
    api: Api, operation: schemathesis.APIOperation, mode: GenerationMode, known: dict[str, str]
) -> None:
    """Cases drawn from the operation's schema; for a case operation, half of them at the known
    case (and its task and clock), the rest at whatever the draw gave."""
    drawn = operation.as_strategy(generation_mode=mode)
    if _is_case(operation) and "{reference}" in operation.path:
        drawn = st.one_of(drawn, drawn.map(lambda case: _aimed(case, known)))

    @fuzz_settings(API_EXAMPLES)
    @given(case=drawn)
    def run(case: schemathesis.Case) -> None:
        api.send(case)

    run()


def _aimed(case: schemathesis.Case, known: dict[str, str]) -> schemathesis.Case:
    if case.path_parameters is not None:
        for name in case.path_parameters:
            if name in known:
                case.path_parameters[name] = known[name]
    return case


def _request_of(case: schemathesis.Case, exc: BaseException) -> str:
    try:
        curl = case.as_curl_command()
    except Exception:  # a body curl cannot carry
        curl = f"{case.method} {case.formatted_path} body={case.body!r}"
    return f"{str(exc).strip()[:2000]}\nrequest: {curl[:3000]}"


# --- Hypothesis against the forms ------------------------------------------------------------

REPORT_FIELDS = [
    "kind",
    "title",
    "description",
    "discovered_at",
    "ai_system",
    "data_categories",
    "reporter_name",
    "reporter_email",
    "reporter_department",
]
STATUS_FIELDS = ["reference", "receipt_code"]

ODD_DATES = [
    "",
    " ",
    "now",
    "2026-11-24",
    "2026-11-24T08:00",
    "2026-11-24T08:00:00.123456789",
    "2026-11-24 08:00",
    "2026-11-24T08:00Z",
    "2026-11-24T08:00:00+14:00",
    "2026-11-24T08:00:00-23:59",
    "2026-11-24T08:00:00+24:00",
    "2026-11-24T25:61",
    "2026-02-30T10:00",
    "2026-03-08T02:30",  # no such local time: the clocks went forward
    "2026-11-01T01:30",  # happens twice: the clocks went back
    "0001-01-01T00:00",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59",
    "9999-12-31T23:59:59.999999-12:00",
    "1970-01-01T00:00",
    "1999-12-31T23:59",
    "2000-01-01T00:00",
    "2100-12-31T23:59",
    "+12026-01-01T00:00",
    "-0001-01-01T00:00",
    "2026-W48-2T08:00",
    "20261124T0800",
    "2026-11-24T08:00\x00",
    "9" * 5000,
    "1e309",
]

ODD_REFERENCES = [
    "AI-2026-000001",
    "ai-2026-000001",
    " AI-2026-000001 ",
    "AI-2026-1",
    "AI-0000-000000",
    "AI-9999-999999999",
    "AI-2026-9999999999",
    "AI-2026-" + "9" * 40,
    "AI-2026-" + "9" * 5000,
    "AI-" + "9" * 30 + "-000001",
    "AI-２０２６-０００００１",  # full-width digits
    "AI-٢٠٢٦-٠٠٠٠٠١",  # Arabic-Indic digits
    "AI-2026--000001",
    "AI-2026-000001\x00",
    "AI-2026-0x10",
    "AI-2026-+00001",
    "AI-2026-1_000",
    "AI--",
    "-",
    "",
]

# Text a person would never type, and text they might.
_weird_text = st.one_of(
    st.text(max_size=60),
    st.text(st.characters(max_codepoint=0x20), max_size=20),  # NUL and controls
    st.text(st.characters(categories=["Cf", "Zs", "Zl", "Zp", "Mn", "Co", "Cn"]), max_size=20),
    st.builds(lambda c, n: c * n, st.characters(), st.integers(150, 25_000)),
    st.sampled_from(["x" * 200, "x" * 201, "x" * 20_000, "x" * 20_001, "x" * 70_000]),
)
_value_text = st.one_of(_weird_text, st.sampled_from(ODD_DATES), st.sampled_from(ODD_REFERENCES))
_value = st.one_of(_value_text.map(lambda s: s.encode("utf-8", "surrogatepass")), st.binary())


def _name(fields: list[str]) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.sampled_from([*fields, "csrf"]).map(str.encode),
        st.text(max_size=20).map(lambda s: s.encode("utf-8", "surrogatepass")),
        st.binary(max_size=20),
    )


def _valid_report() -> dict[str, str]:
    discovered = datetime.now(ZoneInfo(ZONE)) - timedelta(hours=1)
    return {
        "kind": "harm",
        "title": "Benefits chatbot told residents they were not eligible",
        "description": "Three residents were wrongly told they could not apply for rent relief.",
        "discovered_at": discovered.strftime("%Y-%m-%dT%H:%M"),
        "ai_system": "Benefits Chatbot",
        "reporter_name": "Ana Ruiz",
        "reporter_email": "ana.ruiz@city.example",
        "reporter_department": "Parks",
    }


@dataclass(frozen=True)
class FormPost:
    content_type: str | None
    body: bytes
    origin: str | None = None
    tokened: bool = False  # a well-formed form whose first field is the page's token

    def describe(self, url: str, token: str | None) -> str:
        headers = {"Content-Type": self.content_type, "Origin": self.origin}
        shown = {k: v for k, v in headers.items() if v is not None}
        body = self.body if len(self.body) <= 2000 else self.body[:1000] + b"..." + self.body[-200:]
        return (
            f"POST {url} headers={shown} cookie={'the form cookie' if token else 'none'} "
            f"body ({len(self.body)} bytes)={body!r}"
        )


def _urlencoded(pairs: list[tuple[bytes, bytes]]) -> bytes:
    return b"&".join(
        quote_from_bytes(k).encode() + b"=" + quote_from_bytes(v).encode() for k, v in pairs
    )


_BOUNDARY = "fuzz0boundary0xyz"


def _multipart(parts: list[tuple[bytes, bytes, bytes | None]]) -> bytes:
    chunks = []
    for name, value, filename in parts:
        disposition = b'Content-Disposition: form-data; name="' + name + b'"'
        if filename is not None:
            disposition += b'; filename="' + filename + b'"'
        chunks.append(b"--" + _BOUNDARY.encode() + b"\r\n" + disposition + b"\r\n\r\n" + value)
    return b"\r\n".join(chunks) + b"\r\n--" + _BOUNDARY.encode() + b"--\r\n"


_FORM = "application/x-www-form-urlencoded"
_CONTENT_TYPES = st.sampled_from(
    [
        _FORM,
        _FORM + "; charset=utf-8",
        _FORM + "; charset=latin-1",
        _FORM + "; charset=utf-16",
        _FORM + "; charset=no-such-charset",
        _FORM + "; charset=",
        "multipart/form-data",  # no boundary
        "multipart/form-data; boundary=",
        f"multipart/form-data; boundary={_BOUNDARY}",
        "text/plain",
        "application/json",
        "application/octet-stream",
        "",
        ";;;",
        None,
    ]
)


@st.composite
def form_posts(
    draw: st.DrawFn, fields: list[str], token: str | None, base: dict[str, str]
) -> FormPost:
    """A form post: a real form with some fields made strange, arbitrary pairs, or raw bytes,
    urlencoded or multipart. With a token, it goes first, as the page sends it."""
    shapes = ["mutated", "arbitrary"] if token is not None else ["mutated", "arbitrary", "raw"]
    shape = draw(st.sampled_from(shapes))
    if shape == "raw":
        return FormPost(draw(_CONTENT_TYPES), draw(st.binary(max_size=2000)), _origin(draw))
    if shape == "mutated":
        dropped = draw(st.sets(st.sampled_from(sorted(base)), max_size=2))
        values = {k.encode(): v.encode() for k, v in base.items() if k not in dropped}
        for name in draw(st.lists(st.sampled_from(fields), max_size=3)):
            values[name.encode()] = draw(_value)
        pairs = list(values.items())
        pairs += [(b"data_categories", draw(_value)) for _ in range(draw(st.integers(0, 3)))]
    else:
        pairs = draw(st.lists(st.tuples(_name(fields), _value), max_size=12))
    if draw(st.booleans()):
        return form_post(pairs, token, origin=None if token is not None else _origin(draw))
    filenames = [draw(_filenames) for _ in pairs]
    return form_post(pairs, token, multipart=filenames)


_filenames = st.one_of(st.none(), st.none(), st.binary(max_size=20).filter(lambda b: b'"' not in b))


def form_post(
    pairs: list[tuple[bytes, bytes]],
    token: str | None,
    *,
    origin: str | None = None,
    multipart: list[bytes | None] | None = None,
) -> FormPost:
    """The pairs urlencoded, or multipart with these file names (None: a plain field)."""
    if token is not None:  # first, and a plain field, as the page sends it
        pairs = [(b"csrf", token.encode()), *pairs]
        multipart = None if multipart is None else [None, *multipart]
    if multipart is None:
        return FormPost(_FORM, _urlencoded(pairs), origin, token is not None)
    parts = [(k.replace(b'"', b""), v, f) for (k, v), f in zip(pairs, multipart, strict=True)]
    content_type = f"multipart/form-data; boundary={_BOUNDARY}"
    return FormPost(content_type, _multipart(parts), origin, token is not None)


def _origin(draw: st.DrawFn) -> str | None:
    return draw(st.sampled_from([None, None, None, "null", "https://elsewhere.example"]))


def _hidden_token(page: str) -> str | None:
    """The form's hidden `csrf` field, if the page has one."""
    for tag in re.findall(r"<input\b[^>]*>", page):
        if re.search(r'\bname="csrf"', tag):
            value = re.search(r'\bvalue="([^"]*)"', tag)
            return html.unescape(value.group(1)) if value else None
    return None


def _filed_report(live: Live) -> tuple[str, str]:
    """A report filed through the API: a reference and receipt code that open a status page."""
    body = harm_report(discovered_at=(datetime.now(UTC) - timedelta(hours=1)).isoformat())
    answer = requests.post(f"{live.url}/api/v1/reports", json=body, timeout=30)
    assert answer.status_code == 201, answer.text
    filed = answer.json()
    return filed["reference"], filed["receipt_code"]


def _fuzz_form(live: Live, path: str, *, with_token: bool) -> Tally:
    tally = Tally(f"POST {path} {'with' if with_token else 'without'} the form's token")
    url = live.url + path
    fields = REPORT_FIELDS if path == "/report" else STATUS_FIELDS
    with requests.Session() as http:
        token = None
        if with_token:
            page = http.get(url, timeout=30)
            assert page.status_code == 200
            token = _hidden_token(page.text)
        if path == "/report":
            base = _valid_report()
        else:
            reference, code = _filed_report(live)
            base = {"reference": reference, "receipt_code": code}

        # The form as the page sends it, first: the fuzz then starts from what works.
        valid = [(k.encode(), v.encode()) for k, v in base.items()]

        @fuzz_settings(FORM_EXAMPLES)
        @example(post=form_post(valid, token))
        @example(post=form_post(valid, token, multipart=[None] * len(valid)))
        @given(post=form_posts(fields, token, base))
        def run(post: FormPost) -> None:
            headers = {}
            if post.content_type is not None:
                headers["Content-Type"] = post.content_type
            if post.origin is not None:
                headers["Origin"] = post.origin
            try:
                answer = http.post(url, data=post.body, headers=headers, timeout=30)
            except requests.RequestException as exc:
                tally.fail(f"no answer: {type(exc).__name__}", post.describe(url, token))
                return
            tally.answer(answer.status_code)
            if answer.status_code >= 500:
                request_id = answer.headers.get("X-Request-Id")
                tally.server_error(answer.status_code, request_id, post.describe(url, token))
            if post.tokened and answer.status_code == 403:
                tally.fail("403 despite the form's token", post.describe(url, token))

        run()
    return tally


@pytest.mark.parametrize("path", ["/report", "/status"])
def test_a_form_post_without_the_forms_token_never_gets_a_server_error(live, path):
    _fuzz_form(live, path, with_token=False).check(live)


@pytest.mark.parametrize("path", ["/report", "/status"])
def test_a_form_post_with_the_forms_token_never_gets_a_server_error(live, path):
    tally = _fuzz_form(live, path, with_token=True)
    tally.check(live)
    # The token worked (no 403 above): some forms went all the way through.
    assert tally.statuses[201 if path == "/report" else 200] > 0, tally.summary()
