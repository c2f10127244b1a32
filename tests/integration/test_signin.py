"""Local accounts, as a person uses them: an invitation, a password, one-time codes for the
privileged, a lockout after wrong passwords, sessions that end, a reset by email; and, once
signed in, their own work, acknowledged as themselves and on the record."""

from __future__ import annotations

import re
from datetime import timedelta

import pyotp
from sqlmodel import col, select

from incidents.people.model import Account
from incidents.record.model import AuditEntry
from tests.support import cli, harm_report, settled, with_token

PASSWORD = "correct horse battery staple"


def invitation_path(output: str) -> str:
    link = output.strip().splitlines()[-1]  # alone on the last line
    assert link.startswith("http://"), output
    return "/account/password/" + link.rsplit("/", 1)[-1]


async def accept(client, path: str, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    fields = await with_token(client, path, {"password": password, "confirm": password})
    return await client.post(path, data=fields)


async def sign_in(client, email: str, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    fields = await with_token(client, "/signin", {"email": email, "password": password})
    return await client.post("/signin", data=fields, allow_redirects=False)


async def actions(runtime) -> list[str]:  # type: ignore[no-untyped-def]
    async with runtime.uows() as uow:
        entries = await uow.session.exec(select(AuditEntry).order_by(col(AuditEntry.seq)))
        return [e.action for e in entries]


async def test_an_invited_person_chooses_a_password_signs_in_and_out(client, runtime, settings):  # type: ignore[no-untyped-def]
    made = cli(settings, "users", "invite", "Ana.Ruiz@city.example", "--name", "Ana Ruiz")
    assert made.returncode == 0, made.stderr
    path = invitation_path(made.stdout)

    short = await accept(client, path, "short")
    assert short.status == 400
    assert "at least 12 characters" in await short.text()
    fields = await with_token(client, path, {"password": PASSWORD, "confirm": PASSWORD + "x"})
    mismatch = await client.post(path, data=fields)
    assert "not the same" in await mismatch.text()

    done = await accept(client, path)
    assert done.status == 200 and "Your password is set" in await done.text()
    again = await client.get(path)  # a link works once
    assert again.status == 404 and "expired or was already used" in await again.text()

    assert (await client.get("/me")).status == 401  # the sign-in form, with its status
    wrong = await sign_in(client, "ana.ruiz@city.example", "not the password at all")
    assert wrong.status == 400 and "do not match" in await wrong.text()
    answer = await sign_in(client, "ana.ruiz@city.example")
    assert answer.status == 303 and answer.headers["Location"] == "/me"
    me = await client.get("/me")
    assert me.status == 200 and "ana.ruiz@city.example" in await me.text()

    fields = await with_token(client, "/me", {})
    out = await client.post("/signout", data=fields, allow_redirects=False)
    assert out.status == 303
    assert (await client.get("/me")).status == 401
    assert [
        a
        for a in await actions(runtime)
        if a.startswith(("invitation", "password", "signed", "sign_in"))
    ] == ["invitation.sent", "password.set", "sign_in.failed", "signed_in", "signed_out"]


async def test_a_sign_in_goes_back_to_the_page_that_asked_but_never_off_the_site(client, settings):  # type: ignore[no-untyped-def]
    await accept(client, invitation_path(cli(settings, "users", "invite", "x@city.example").stdout))
    asked = await client.get("/reports/AI-2026-000001")
    assert (
        asked.status == 401 and 'name="next" value="/reports/AI-2026-000001"' in await asked.text()
    )
    for target, lands in [
        ("/reports/AI-2026-000001", "/reports/AI-2026-000001"),
        ("//evil.example/", "/me"),
        ("https://evil.example/", "/me"),
    ]:
        fields = await with_token(
            client, "/signin", {"email": "x@city.example", "password": PASSWORD, "next": target}
        )
        answer = await client.post("/signin", data=fields, allow_redirects=False)
        assert answer.headers["Location"] == lands


async def test_wrong_passwords_lock_the_account_for_a_while(client, runtime, settings, clock):  # type: ignore[no-untyped-def]
    await accept(
        client, invitation_path(cli(settings, "users", "invite", "pat@city.example").stdout)
    )
    for _ in range(5):
        answer = await sign_in(client, "pat@city.example", "a wrong password!")
    assert "locked" in await answer.text()
    still = await sign_in(client, "pat@city.example")  # the right one, while locked
    assert still.status == 400 and "Try again in 15 minutes" in await still.text()
    clock.advance(minutes=16)
    assert (await sign_in(client, "pat@city.example")).status == 303


async def test_privileged_roles_set_up_and_then_need_one_time_codes(
    client, runtime, settings, clock
):  # type: ignore[no-untyped-def]
    made = cli(settings, "users", "invite", "admin@city.example", "--role", "admin")
    await accept(client, invitation_path(made.stdout))
    answer = await sign_in(client, "admin@city.example")
    assert answer.headers["Location"].startswith("/signin/code")
    assert (await client.get("/admin/roles")).status == 401  # not signed in yet
    page = await (await client.get(answer.headers["Location"])).text()
    key = re.search(r'class="key">([A-Z2-7 ]+)<', page)
    assert key, page
    secret = key.group(1).replace(" ", "")

    fields = await with_token(client, "/signin/code", {"code": "000000", "next": "/admin/roles"})
    wrong = await client.post("/signin/code", data=fields)
    assert wrong.status == 400 and "not right" in await wrong.text()
    code = pyotp.TOTP(secret).at(clock())
    fields = await with_token(client, "/signin/code", {"code": code, "next": "/admin/roles"})
    done = await client.post("/signin/code", data=fields, allow_redirects=False)
    assert done.status == 303 and done.headers["Location"] == "/admin/roles"
    roles = await client.get("/admin/roles")
    assert roles.status == 200
    assert "Permissions by audience" in await roles.text()

    # Next time the password alone is not enough, and the key is not shown again.
    client.session.cookie_jar.clear()
    again = await sign_in(client, "admin@city.example")
    page = await (await client.get(again.headers["Location"])).text()
    assert 'class="key"' not in page and "One-time code" in page
    assert (await client.get("/admin/roles")).status == 401
    clock.advance(seconds=30)
    fields = await with_token(client, "/signin/code", {"code": pyotp.TOTP(secret).at(clock())})
    assert (await client.post("/signin/code", data=fields, allow_redirects=False)).status == 303
    assert (await client.get("/admin/roles")).status == 200
    assert "one_time_codes.set_up" in await actions(runtime)


async def test_a_session_ends_when_idle_and_after_its_longest_life(client, settings, clock):  # type: ignore[no-untyped-def]
    await accept(
        client, invitation_path(cli(settings, "users", "invite", "lee@city.example").stdout)
    )
    await sign_in(client, "lee@city.example")
    clock.advance(minutes=29)
    assert (await client.get("/me")).status == 200
    clock.advance(minutes=31)
    assert (await client.get("/me")).status == 401  # idle for 31 minutes

    await sign_in(client, "lee@city.example")
    signed_in_at, ended_after = clock(), None
    for _ in range(40):  # busy all day, a page every 20 minutes
        clock.advance(minutes=20)
        if (await client.get("/me")).status != 200:
            ended_after = clock() - signed_in_at
            break
    assert ended_after is not None and timedelta(hours=12) < ended_after <= timedelta(
        hours=12, minutes=20
    )


async def test_a_forgotten_password_is_reset_by_a_link_in_an_email(
    client, runtime, settings, smtp_server
):  # type: ignore[no-untyped-def]
    await accept(
        client, invitation_path(cli(settings, "users", "invite", "kim@city.example").stdout)
    )
    fields = await with_token(client, "/account/reset", {"email": "kim@city.example"})
    sent = await client.post("/account/reset", data=fields)
    assert "we have sent it a link" in await sent.text()
    # The same answer for an address with no account: nobody learns who has one.
    fields = await with_token(client, "/account/reset", {"email": "nobody@city.example"})
    assert (
        "we have sent it a link" in await (await client.post("/account/reset", data=fields)).text()
    )
    [mail] = await smtp_server.wait_for(1)
    assert mail.rcpt_tos == ["kim@city.example"]
    text = mail.message.get_body(("plain",)).get_content()
    link = re.search(r"http://incidents\.test(/account/password/\S+)", text)
    assert link, text
    await accept(client, link.group(1), "a brand new passphrase")
    assert (await sign_in(client, "kim@city.example")).status == 400  # the old one is gone
    assert (await sign_in(client, "kim@city.example", "a brand new passphrase")).status == 303


async def test_signed_in_people_acknowledge_their_own_obligations_only(client, runtime, settings):  # type: ignore[no-untyped-def]
    filed = await (await client.post("/api/v1/reports", json=harm_report())).json()
    await settled(runtime)
    cdpo = next(o["id"] for o in filed["obligations"] if o["role"] == "cdpo")
    for email in ("someone.else@city.example", "cdpo@city.example"):
        await accept(client, invitation_path(cli(settings, "users", "invite", email).stdout))

    await sign_in(client, "someone.else@city.example")
    fields = await with_token(client, "/me", {})
    refused = await client.post(f"/obligations/{cdpo}/acknowledge", data=fields)
    assert refused.status == 404
    assert (await client.get(f"/reports/{filed['reference']}")).status == 404

    client.session.cookie_jar.clear()
    await sign_in(client, "cdpo@city.example")
    me = await (await client.get("/me")).text()
    assert filed["reference"] in me and "Waiting for your acknowledgement" in me
    fields = await with_token(client, "/me", {})
    done = await client.post(f"/obligations/{cdpo}/acknowledge", data=fields)
    assert done.status == 200
    page = await done.text()
    assert "Acknowledged by cdpo@city.example" in page
    # The timeline, from the record: filed, who is to be told, the emails, the acknowledgement.
    timeline = page[page.index('id="timeline"') :]
    assert f"Report {filed['reference']} filed" in timeline
    assert "Email sent to cdpo@city.example" in timeline
    assert "by cdpo@city.example" in timeline

    async with runtime.uows() as uow:
        cdpo_account = (
            await uow.session.exec(select(Account).where(Account.email == "cdpo@city.example"))
        ).one()
        assert cdpo_account.last_sign_in_at is not None
    assert cli(settings, "audit", "verify").returncode == 0


async def test_password_guessing_from_one_address_is_slowed_down(client):  # type: ignore[no-untyped-def]
    # Twenty tries a minute per address (INCIDENTS_RATE_LIMITS' signin), across every account:
    # the per-account lockout stops guessing one password, this stops trying many accounts.
    answers = [
        (await sign_in(client, f"person{i}@city.example", "not the password")).status
        for i in range(21)
    ]
    assert 429 not in answers[:20] and answers[20] == 429
