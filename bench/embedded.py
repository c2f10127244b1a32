"""Intake and end-to-end latency on the embedded default (SQLite, in-database event log).

Starts `incidents serve` as its own process with a fresh data folder and a real SMTP server
(aiosmtpd, in this process), then measures:

  intake      reports accepted per second, N reports sent by C concurrent clients;
  end to end  at a steady rate, the time from a report's 201 to the moment the SMTP server has
              accepted the last of its notices: p50 and p99.

Usage: .venv/bin/python bench/embedded.py [--reports 2000] [--clients 16] [--rate 20] [--seconds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from email import policy
from email.parser import BytesHeaderParser
from pathlib import Path

import aiohttp
from aiosmtpd.controller import Controller

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.harness.kafka import free_port  # noqa: E402

NOTICES_PER_REPORT = 3  # San José harm: supervisor, CDPO, Employee Relations


# The bench's SMTP server reads only the headers it needs (the Subject names the report): parsing
# whole messages cost it 0.7 ms each, CPU the service under test would not get.
HEADERS = BytesHeaderParser(policy=policy.default)


class Arrivals:
    """An SMTP handler noting when each report's notices arrive."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_reference: dict[str, list[float]] = {}

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802
        now = time.monotonic()
        subject = HEADERS.parsebytes(envelope.content)["Subject"]
        reference = subject.split("]")[0].lstrip("[")
        with self.lock:
            self.by_reference.setdefault(reference, []).append(now)
        return "250 OK"


def report(i: int) -> dict:
    return {
        "kind": "harm",
        "title": f"Benchmark report {i}",
        "description": "A chatbot gave a resident wrong eligibility answers.",
        "discovered_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
        "reporter": {"name": "Bench", "email": "bench@city.example", "department": "Parks"},
        "ai_system": "Benefits Chatbot",
    }


async def wait_healthy(url: str) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(300):
            try:
                async with http.get(url + "/healthz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit("the service did not start")


async def intake(url: str, total: int, clients: int) -> float:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(total):
        queue.put_nowait(i)

    async def client(http: aiohttp.ClientSession) -> None:
        while not queue.empty():
            i = queue.get_nowait()
            async with http.post(url + "/api/v1/reports", json=report(i)) as r:
                assert r.status == 201, await r.text()

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as http:
        start = time.monotonic()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        return total / (time.monotonic() - start)


async def latency(url: str, arrivals: Arrivals, rate: float, seconds: float) -> list[float]:
    accepted: dict[str, float] = {}

    async def one(http: aiohttp.ClientSession, i: int) -> None:
        async with http.post(url + "/api/v1/reports", json=report(i)) as r:
            body = await r.json()
            accepted[body["reference"]] = time.monotonic()

    async with aiohttp.ClientSession() as http:
        tasks = []
        start = time.monotonic()
        for i in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
            tasks.append(asyncio.create_task(one(http, i)))
        await asyncio.gather(*tasks)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with arrivals.lock:
            done = sum(
                len(arrivals.by_reference.get(ref, [])) >= NOTICES_PER_REPORT for ref in accepted
            )
        if done == len(accepted):
            break
        await asyncio.sleep(0.1)
    with arrivals.lock:
        return sorted(
            max(arrivals.by_reference[ref]) - t
            for ref, t in accepted.items()
            if len(arrivals.by_reference.get(ref, [])) >= NOTICES_PER_REPORT
        )


def pct(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1]


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--reports", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rate", type=float, default=20.0, help="reports per second, end to end")
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()

    arrivals = Arrivals()
    smtp = Controller(arrivals, hostname="127.0.0.1", port=free_port())
    smtp.start()
    port = free_port()
    with tempfile.TemporaryDirectory() as home:
        env = {k: v for k, v in os.environ.items() if not k.startswith("INCIDENTS_")}
        env.update(INCIDENTS_HOME=home, INCIDENTS_SMTP_URL=f"smtp://127.0.0.1:{smtp.port}")
        # Every bench client is one address: the per-client intake limit would measure itself.
        env.update(INCIDENTS_RATE_LIMITS="intake=0")
        service = subprocess.Popen(
            [str(Path(sys.executable).parent / "incidents"), "serve", "--port", str(port)],
            env=env,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            await wait_healthy(url)
            print(
                f"intake: sending {args.reports} reports with {args.clients} clients …", flush=True
            )
            per_second = await intake(url, args.reports, args.clients)
            print(f"intake: {per_second:,.0f} reports accepted per second (SQLite, embedded)")
            print("waiting for the intake backlog's notices to go out …", flush=True)
            while True:
                with arrivals.lock:
                    sent = sum(len(v) for v in arrivals.by_reference.values())
                if sent >= args.reports * NOTICES_PER_REPORT:
                    break
                await asyncio.sleep(0.5)
            print(f"end to end: {args.rate:g} reports/s for {args.seconds:g} s …", flush=True)
            lat = await latency(url, arrivals, args.rate, args.seconds)
            print(
                f"end to end: {len(lat)} reports, report accepted -> last of "
                f"{NOTICES_PER_REPORT} notices accepted by SMTP: "
                f"p50 {pct(lat, 50) * 1000:.0f} ms, p99 {pct(lat, 99) * 1000:.0f} ms, "
                f"max {max(lat) * 1000:.0f} ms"
            )
        finally:
            service.terminate()
            service.wait(10)
            smtp.stop()


if __name__ == "__main__":
    asyncio.run(main())
