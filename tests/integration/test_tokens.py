"""API tokens: made with `incidents tokens create`, a token acts as its person. A report shows to
its reporter, the people a policy named for it and auditors (404 for anyone else); each person
acknowledges only their own obligations, and the record says who did."""

from __future__ import annotations

from sqlmodel import col, select

from incidents.kernel.actor import Grant
from incidents.record.model import AuditEntry
from tests.support import bearer, cli, harm_report


async def test_the_cli_makes_a_token_that_acts_as_its_person(client, runtime, settings):
    filed = await (await client.post("/api/v1/reports", json=harm_report())).json()
    made = cli(settings, "tokens", "create", "cdpo@city.example", "--name", "privacy desk")
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip().splitlines()[-1]  # the token, alone on the last line
    assert secret.startswith("inc_") and " " not in secret
    bearer = {"Authorization": f"Bearer {secret}"}
    shown = await client.get(f"/api/v1/reports/{filed['reference']}", headers=bearer)
    assert shown.status == 200

    granted = cli(settings, "users", "add", "Auditor@City.example", "--role", "auditor")
    assert granted.returncode == 0 and "auditor" in granted.stdout
    listed = cli(settings, "tokens", "list")
    token_id = next(
        line.split()[0] for line in listed.stdout.splitlines() if "privacy desk" in line
    )
    assert cli(settings, "tokens", "revoke", token_id).returncode == 0
    refused = await client.get(f"/api/v1/reports/{filed['reference']}", headers=bearer)
    assert refused.status == 401
    assert refused.headers["WWW-Authenticate"] == "Bearer"

    # Each change is on the record, by whoever ran the command, and never the token itself.
    async with runtime.uows() as uow:
        entries = list(await uow.session.exec(select(AuditEntry).order_by(col(AuditEntry.seq))))
    changes = [(e.action, e.actor) for e in entries if e.action.startswith(("token", "role"))]
    assert [a for a, _ in changes] == ["token.created", "role.granted", "token.revoked"]
    assert all(actor.startswith("command line (") for _, actor in changes)
    assert all(secret not in str(e.data) for e in entries)
    assert cli(settings, "audit", "verify").returncode == 0


async def test_a_report_shows_to_its_reporter_the_people_named_and_auditors_only(client, runtime):
    filed = await (await client.post("/api/v1/reports", json=harm_report())).json()
    path = f"/api/v1/reports/{filed['reference']}"
    for who, grant, status in [
        ("ana.ruiz@city.example", None, 200),  # the reporter
        ("CDPO@city.example", None, 200),  # named by San José's harm rule (any case)
        ("auditor@city.example", Grant.AUDITOR, 200),
        ("someone.else@city.example", None, 404),  # signed in, but not theirs to see
    ]:
        answer = await client.get(path, headers=await bearer(runtime, who, grant))
        assert answer.status == status, who
        if status == 200:
            shown = await answer.json()
            assert shown["reference"] == filed["reference"]
            assert all({"id", "status", "acknowledged_by"} <= set(o) for o in shown["obligations"])
    # Without a token, the receipt code still works; a mistyped token does not fall back to it.
    code = {"receipt_code": filed["receipt_code"]}
    assert (await client.get(path, params=code)).status == 200
    wrong = {"Authorization": "Bearer inc_not-a-token"}
    assert (await client.get(path, params=code, headers=wrong)).status == 401

    second = await (await client.post("/api/v1/reports", json=harm_report(title="Other"))).json()
    listed = {}
    for who, email in [
        ("reporter", "ana.ruiz@city.example"),
        ("stranger", "nobody@city.example"),
        ("auditor", "auditor@city.example"),
    ]:
        answer = await client.get("/api/v1/reports", headers=await bearer(runtime, email))
        listed[who] = [r["reference"] for r in (await answer.json())["reports"]]
    both = [second["reference"], filed["reference"]]  # newest first
    assert listed == {"reporter": both, "stranger": [], "auditor": both}
    assert (await client.get("/api/v1/reports")).status == 401


async def test_each_person_acknowledges_only_their_own_obligation(client, runtime):
    filed = await (await client.post("/api/v1/reports", json=harm_report())).json()
    by_role = {o["role"]: o["id"] for o in filed["obligations"]}
    cdpo = await bearer(runtime, "cdpo@city.example")
    ack = "/api/v1/obligations/{}/acknowledge"

    assert (await client.post(ack.format(by_role["supervisor"]), headers=cdpo)).status == 404
    stranger = await bearer(runtime, "someone.else@city.example")
    assert (await client.post(ack.format(by_role["cdpo"]), headers=stranger)).status == 404
    assert (await client.post(ack.format(by_role["cdpo"]))).status == 401

    done = await client.post(ack.format(by_role["cdpo"]), headers=cdpo)
    assert done.status == 200
    answer = await done.json()
    assert answer["status"] == "acknowledged"
    assert answer["acknowledged_by"] == "cdpo@city.example"

    shown = await (await client.get(f"/api/v1/reports/{filed['reference']}", headers=cdpo)).json()
    states = {o["role"]: (o["status"], o["acknowledged_by"]) for o in shown["obligations"]}
    assert states == {
        "cdpo": ("acknowledged", "cdpo@city.example"),
        "employee_relations": ("open", None),
        "supervisor": ("open", None),
    }
