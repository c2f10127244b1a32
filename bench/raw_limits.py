"""The raw limits the production figures are held against, each run as its own process.

bench/production.py starts these; each prints one JSON line (or `ready`) on stdout.

  intake-server   a minimal aiohttp server whose POST /api/v1/reports writes, with asyncpg in one
                  transaction, the rows the service writes for one San José harm report: the report,
                  its 3 obligations, their 9 clocks and 4 outbox events. No SQLAlchemy, no policy
                  engine per request (the obligations are planned once at start and copied).
  smtp-send       aiosmtplib sending N notices over C reused connections (the service's default
                  is 16), with the CPU time it used while sending.
  smtp-server     the bench's SMTP server (Arrivals) in a process of its own, writing
                  "<reference> <monotonic time>" per accepted message on stdout.
  kafka           aiokafka producing N 1 KB records (acks=all) to a fresh 6-partition topic, then
                  consuming them all.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import secrets
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# --- intake: aiohttp + asyncpg -------------------------------------------------------------------

INSERT_REPORT = """
INSERT INTO reports (id, kind, title, description, discovered_at, reported_at,
    reporter_name, reporter_email, reporter_department, ai_system, data_categories, policies,
    channel, receipt_hash)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING number
"""
INSERT_OBLIGATION = """
INSERT INTO obligations (id, report_id, role, recipients, due_at, timezone, status, rules,
    citations, interpretation, escalation, level, late, created_at)
VALUES ($1, $2, $3, $4, $5, $6, 'open', $7, $8, $9, $10, 0, false, $11)
"""
INSERT_CLOCK = """
INSERT INTO clocks (id, obligation_id, kind, due_at, status) VALUES ($1, $2, $3, $4, 'pending')
"""
INSERT_EVENT = "INSERT INTO events (id, type, subject, time, data) VALUES ($1, $2, $3, $4, $5)"


def planned_templates() -> tuple[list[str], list[dict]]:
    """The packs' names and the obligations a harm report from Parks gets, planned once."""
    from incidents.kernel.vocabulary import IncidentKind
    from incidents.policy import ReportFacts, plan_for
    from infra.bootstrap import load_policy
    from infra.settings import Settings

    policy = load_policy(Settings())
    now = datetime.now(UTC)
    facts = ReportFacts(
        kind=IncidentKind.HARM,
        department="Parks",
        ai_system="Benefits Chatbot",
        discovered_at=now - timedelta(hours=1),
        reported_at=now,
    )
    plan = plan_for(facts, policy.packs, policy.directory, now, holidays=policy.holidays)
    templates = [
        {
            "role": p.role.value,
            "recipients": json.dumps(
                [{"name": r.name, "email": str(r.email)} for r in p.recipients]
            ),
            "due_after": p.due_at - facts.discovered_at,
            "reminders_before": [p.due_at - at for at in p.reminders],
            "timezone": p.timezone,
            "rules": json.dumps(list(p.rules)),
            "citations": json.dumps([c.model_dump() for c in p.citations]),
            "interpretation": p.interpretation,
            "escalation": json.dumps(
                [
                    {
                        "notify": [r.value for r in lvl.notify],
                        "within_seconds": lvl.within.total_seconds(),
                    }
                    for lvl in p.escalation
                ]
            ),
        }
        for p in plan.obligations
    ]
    return [p.id for p in policy.packs], templates


async def intake_server(dsn: str, port: int, pool_size: int) -> None:
    import asyncpg
    from aiohttp import web

    policies, templates = planned_templates()
    policies_json = json.dumps(policies)
    pool = await asyncpg.create_pool(dsn, min_size=pool_size, max_size=pool_size)

    async def file_report(request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        now = datetime.now(UTC)
        discovered = datetime.fromisoformat(body["discovered_at"])
        report_id = str(uuid.uuid4())
        receipt = secrets.token_hex(6).upper()
        obligations, clocks, events = [], [], []
        for t in templates:
            ob_id = str(uuid.uuid4())
            due = discovered + t["due_after"]
            obligations.append(
                (ob_id, report_id, t["role"], t["recipients"], due, t["timezone"], t["rules"],
                 t["citations"], t["interpretation"], t["escalation"], now)
            )  # fmt: skip
            clocks += [
                (f"{ob_id}:reminder:{i}", ob_id, "reminder", due - before)
                for i, before in enumerate(t["reminders_before"])
            ]
            clocks.append((f"{ob_id}:deadline", ob_id, "deadline", due))
            events.append(
                (str(uuid.uuid4()), "org.ai-incidents.obligation.opened.v1", report_id, now,
                 json.dumps({"obligation_id": ob_id, "report_id": report_id, "role": t["role"],
                             "level": 0, "late": False}))
            )  # fmt: skip
        reporter = body["reporter"]
        async with pool.acquire() as con, con.transaction():
            number = await con.fetchval(
                INSERT_REPORT, report_id, body["kind"], body["title"], body["description"],
                discovered, now, reporter["name"], reporter["email"], reporter["department"],
                body["ai_system"], "[]", policies_json, "api",
                hashlib.sha256(receipt.encode()).hexdigest(),
            )  # fmt: skip
            reference = f"AI-{now.year}-{number:06d}"
            events.append(
                (str(uuid.uuid4()), "org.ai-incidents.incident.reported.v1", report_id, now,
                 json.dumps({"report_id": report_id, "reference": reference, "kind": body["kind"],
                             "ai_system": body["ai_system"], "department": reporter["department"],
                             "data_categories": [], "obligation_ids": [o[0] for o in obligations],
                             "opens": []}))
            )  # fmt: skip
            await con.executemany(INSERT_OBLIGATION, obligations)
            await con.executemany(INSERT_CLOCK, clocks)
            await con.executemany(INSERT_EVENT, events)
        return web.json_response(
            {
                "id": report_id,
                "reference": reference,
                "receipt_code": receipt,
                "obligations": [
                    {
                        "id": o[0],
                        "role": o[2],
                        "recipients": json.loads(o[3]),
                        "due_at": o[4].isoformat(),
                        "rule": json.loads(o[6]),
                    }
                    for o in obligations
                ],
            },  # fmt: skip
            status=201,
        )

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_post("/api/v1/reports", file_report)
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print("ready", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
        await pool.close()


# --- SMTP ---------------------------------------------------------------------------------------


def sample_notice(i: int):  # type: ignore[no-untyped-def]
    """A notice rendered from the service's own template, so it has the real size and shape."""
    from notifications.outbound.render import build_message, render

    rendered = render(
        "obligation",
        {
            "purpose": "notice", "late": False, "is_late": False,
            "reference": f"RAW-{i}", "kind_words": "harm", "title": f"Benchmark report {i}",
            "description": "A chatbot gave a resident wrong eligibility answers.",
            "show_details": True, "data_categories": "", "ai_system": "Benefits Chatbot",
            "ai_system_unapproved": False,
            "department": "Parks", "reporter_name": "Bench", "reporter_email": "bench@city.example",
            "discovered_local": "Mon 2026-03-09 09:00 PDT", "due_local": "Tue 2026-03-10 09:00 PDT",
            "due_local_short": "Tue 09:00", "role_words": "the City Digital Privacy Officer (CDPO)",
            "rule_title": "san-jose/harm-report",
            "citation": "004_cdd0e18fc1bc8463.txt, “Policy”: "
                        "“Report harm to the CDPO within 24 hours.”",
            "interpretation": None, "escalated_from": "", "action": "", "citation_url": "",
            "holidays": "",
            "ack_url": f"http://localhost:8080/ack/{uuid.uuid4()}?t={secrets.token_hex(16)}",
        },
    )  # fmt: skip
    return build_message(
        sender="AI Incidents <ai-incidents@city.example>",
        recipients=["cdpo@city.example"],
        subject=f"[RAW-{i}] {rendered.subject}",
        text=rendered.text,
        html=rendered.html,
        message_id=f"<raw-{i}-{uuid.uuid4()}@city.example>",
        thread_id=f"<report-raw-{i}@city.example>",
    )


async def smtp_send(host: str, port: int, count: int, connections: int) -> dict:
    import aiosmtplib

    messages = [sample_notice(i) for i in range(count)]
    clients = [
        aiosmtplib.SMTP(hostname=host, port=port, start_tls=False) for _ in range(connections)
    ]
    await asyncio.gather(*(c.connect() for c in clients))
    queue: asyncio.Queue = asyncio.Queue()
    for m in messages:
        queue.put_nowait(m)

    async def worker(client: aiosmtplib.SMTP) -> None:
        while not queue.empty():
            await client.send_message(queue.get_nowait())

    start, cpu = time.monotonic(), time.process_time()
    await asyncio.gather(*(worker(c) for c in clients))
    seconds, cpu_seconds = time.monotonic() - start, time.process_time() - cpu
    await asyncio.gather(*(c.quit() for c in clients))
    return {
        "sent": count,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,  # the client's, while sending (not while building)
        "bytes": len(messages[0].as_bytes()),
    }


def smtp_server(port: int) -> None:
    from aiosmtpd.controller import Controller

    from bench.embedded import HEADERS

    out = sys.stdout

    class Handler:  # as bench/embedded.py's Arrivals, reporting to the parent instead
        async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802
            now = time.monotonic()
            subject = HEADERS.parsebytes(envelope.content)["Subject"]
            reference = subject.split("]")[0].lstrip("[")
            out.write(f"{reference} {now!r}\n")
            out.flush()
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    try:
        sys.stdin.read()  # until the parent closes our stdin
    finally:
        controller.stop()


# --- Kafka --------------------------------------------------------------------------------------


async def kafka(bootstrap: str, count: int, size: int) -> dict:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    topic = f"bench-raw-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 6, 1)])
    await admin.close()
    value = secrets.token_bytes(size)
    keys = [str(uuid.uuid4()).encode() for _ in range(600)]
    # As the service's relay: acks=all, no idempotence (Tansu lacks it), linger 5 ms.
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=False, linger_ms=5
    )
    await producer.start()
    await producer.send_and_wait(topic, value, key=keys[0])  # metadata, connection: not timed
    start = time.monotonic()
    futures = [await producer.send(topic, value, key=keys[i % len(keys)]) for i in range(count)]
    await asyncio.gather(*futures)
    produce_seconds = time.monotonic() - start
    await producer.stop()

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    partitions = [TopicPartition(topic, p) for p in range(6)]
    consumer.assign(partitions)
    await consumer.seek_to_beginning(*partitions)
    got = 0
    start = time.monotonic()
    while got < count + 1:
        batches = await consumer.getmany(timeout_ms=1000, max_records=2000)
        got += sum(len(b) for b in batches.values())
    consume_seconds = time.monotonic() - start
    await consumer.stop()
    return {
        "produced": count,
        "produce_seconds": produce_seconds,
        "consumed": got,
        "consume_seconds": consume_seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("intake-server")
    p.add_argument("--dsn", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--pool", type=int, default=20)
    p = sub.add_parser("smtp-send")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--count", type=int, default=2000)
    p.add_argument("--connections", type=int, default=16)
    p = sub.add_parser("smtp-server")
    p.add_argument("--port", type=int, required=True)
    p = sub.add_parser("kafka")
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--count", type=int, default=20000)
    p.add_argument("--size", type=int, default=1024)
    args = parser.parse_args()
    if args.what == "intake-server":
        asyncio.run(intake_server(args.dsn, args.port, args.pool))
    elif args.what == "smtp-send":
        print(
            json.dumps(asyncio.run(smtp_send("127.0.0.1", args.port, args.count, args.connections)))
        )
    elif args.what == "smtp-server":
        smtp_server(args.port)
    else:
        print(json.dumps(asyncio.run(kafka(args.bootstrap, args.count, args.size))))


if __name__ == "__main__":
    main()
