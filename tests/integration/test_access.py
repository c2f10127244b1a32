"""Every route, with every role: where the matrix says no, the answer is 401 (not signed in),
403 (signed in, not allowed) or 404; where it says yes, the request gets through.

The routes are read from the application's router, so a route added later is walked too, and
one that declares no permission stops the application from being made at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from aiohttp import web

from incidents.kernel.actor import Grant, Principal
from incidents.people import permissions, signin
from incidents.people import service as people
from incidents.web import access, security
from incidents.web.access import check_routes, permission_of, requires
from incidents.web.app import create_app
from incidents.web.deps import DEPS
from tests.support import harm_report, settled

FORM_COOKIE = "f" * 43  # any 43 characters: the form token is its HMAC


@dataclass
class Person:
    label: str
    email: str | None  # None: not signed in
    grant: Grant | None = None
    principal: Principal | None = None
    cookie: str = ""
    bearer: str = ""


PEOPLE = [
    Person("anyone", None),
    Person("stranger", "someone.else@city.example"),
    Person("reporter", "ana.ruiz@city.example"),
    Person("named", "cdpo@city.example"),  # San José's harm rule names the CDPO
    Person("security", "ciso@city.example"),
    Person("cio", "cio@city.example"),
    Person("auditor", "records.auditor@city.example", Grant.AUDITOR),
    Person("admin", "it.admin@city.example", Grant.ADMIN),
]


def test_a_route_without_a_permission_stops_the_app() -> None:
    app = web.Application()

    async def open_page(request: web.Request) -> web.Response:
        return web.Response(text="anyone may see this, by mistake")

    app.router.add_get("/forgotten", open_page)
    with pytest.raises(RuntimeError, match="GET /forgotten"):
        check_routes(app)

    declared = requires(permissions.Permission.READ_POLICIES)(open_page)
    app = web.Application()
    app.router.add_get("/declared", declared)
    check_routes(app)


async def test_every_route_answers_every_role_as_the_matrix_says(aiohttp_client, runtime) -> None:  # type: ignore[no-untyped-def]
    app = create_app(runtime, workers=True)
    client = await aiohttp_client(app)
    deps = app[DEPS]
    filed = await (await client.post("/api/v1/reports", json=harm_report())).json()
    await settled(runtime)
    cdpo_duty = next(
        o["id"] for o in filed["obligations"] if o["role"] == "cdpo"
    )  # addressed to the CDPO alone
    async with runtime.uows() as uow:
        for person in PEOPLE:
            if person.email is None:
                continue
            started = await signin.with_identity_provider(
                person.email,
                name="",
                grants=frozenset({person.grant} if person.grant else ()),
                issuer="test",
                uow=uow,
                now=runtime.now(),
            )
            person.cookie = access.seal(deps, started.secret)
            token = await people.create_token(person.email, "test", uow=uow, now=runtime.now())
            person.bearer = token.secret
            found = await signin.current(
                started.secret, uow=uow, now=runtime.now(), timeouts=deps.timeouts
            )
            assert found is not None
            extra = frozenset({person.grant} if person.grant else ())
            person.principal = people.principal_of(found.account, deps.policy.directory, extra)
    mail = runtime.settings.outbox_mail_dir
    values = {
        "reference": filed["reference"],
        "obligation_id": cdpo_duty,
        "pack": "san-jose",
        "name": "no-such-message",
        "code": "no-such-code",
        "filename": "site.css",
        "task_id": "no-such-task",
        "clock_id": "no-such-clock",
        "evidence_id": "no-such-file",
        "system_id": "no-such-system",
        "review_id": "no-such-review",
        "request_id": "no-such-request",
        "mail_id": "no-such-message",
        "id": "no-such-id",
    }
    assert mail is not None

    walked = 0
    # Signing out ends the session the later routes are walked with: it goes last.
    routes = sorted(app.router.routes(), key=lambda r: r.handler.__name__ == "signout")
    for route in routes:
        if route.method == "HEAD" or route.resource is None:
            continue
        needed = permission_of(route)
        assert needed is not None, route
        template = route.resource.canonical
        path = re.sub(r"\{(\w+)[^}]*\}", lambda m: values[m.group(1)], template)
        if isinstance(route.resource, web.StaticResource):
            path = f"{template}/site.css"
        for person in PEOPLE:
            headers = {"Cookie": f"{security.COOKIE}={FORM_COOKIE}"}
            if path.startswith("/api/"):
                if person.bearer:
                    headers["Authorization"] = f"Bearer {person.bearer}"
            elif person.cookie:
                headers["Cookie"] += f"; {access.SESSION_COOKIE}={person.cookie}"
            kwargs: dict[str, object] = {"headers": headers, "allow_redirects": False}
            if route.method == "POST":
                if path.startswith("/api/"):
                    kwargs["json"] = {}
                else:
                    kwargs["data"] = {"csrf": security.form_token(deps.secret, FORM_COOKIE)}
            answer = await client.request(route.method, path, **kwargs)  # type: ignore[arg-type]
            allowed = permissions.allows(person.principal, needed)
            what = f"{route.method} {template} as {person.label}: {answer.status}"
            if allowed:
                assert answer.status not in (401, 403), what
            elif person.principal is None:
                assert answer.status == 401, what
            else:
                assert answer.status in (403, 404), what
            walked += 1
    assert walked >= 8 * 25  # every route, every person


async def test_a_report_someone_may_not_see_answers_404_not_403(client, runtime) -> None:  # type: ignore[no-untyped-def]
    filed = await (await client.post("/api/v1/reports", json=harm_report())).json()
    deps = client.app[DEPS]
    async with runtime.uows() as uow:
        started = await signin.with_identity_provider(
            "someone.else@city.example",
            name="",
            grants=frozenset(),
            issuer="test",
            uow=uow,
            now=runtime.now(),
        )
    cookie = {access.SESSION_COOKIE: access.seal(deps, started.secret)}
    page = await client.get(f"/reports/{filed['reference']}", cookies=cookie)
    assert page.status == 404
    missing = await client.get("/reports/AI-2026-999999", cookies=cookie)
    assert missing.status == 404
    # Nothing tells the two apart (but the form token each page carries for its sign-out).
    token = re.compile(r'name="csrf" value="\w+"')
    assert token.sub("", await page.text()) == token.sub("", await missing.text())
