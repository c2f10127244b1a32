"""Reports by email, end to end, on the embedded default: `incidents serve` with its SMTP receiver
(INCIDENTS_MAIL_INTAKE=smtp://…) and an SMTP server catching what it sends.

Measures:
  accepted    messages per second the receiver answers 250 (each stored, parsed, filed as a report
              with its obligations, in one transaction), sent over --clients connections;
  answered    message sent -> the sender's answer (with the reference) accepted by SMTP: p50, p99,
              at a steady --rate for --seconds.

Distinct senders: the per-sender hourly limit (INCIDENTS_MAIL_INTAKE_PER_HOUR) would otherwise
quarantine the bench's own messages.

Usage: .venv/bin/python bench/mail_intake.py [--messages 500] [--clients 8] [--rate 10]
           [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import threading
import time
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.policy import default
from pathlib import Path

import aiosmtplib
from aiosmtpd.controller import Controller

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.embedded import pct, wait_healthy  # noqa: E402
from tests.harness.kafka import free_port  # noqa: E402

HEADERS = BytesHeaderParser(policy=default)


class Answers:
    """An SMTP handler noting when each sender's answer arrives (not the notices to staff)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.at: dict[str, float] = {}

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802
        now = time.monotonic()
        if HEADERS.parsebytes(envelope.content)["Auto-Submitted"] == "auto-replied":
            with self.lock:
                for to in envelope.rcpt_tos:
                    self.at.setdefault(to, now)
        return "250 OK"


def message(i: int, tag: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"Bench Reporter {i} <bench.{tag}.{i}@city.example>"
    msg["To"] = "ai-incidents@city.example"
    msg["Subject"] = f"The chatbot gave resident {i} a wrong answer"
    msg.set_content(f"Report number {i}: the Benefits Chatbot told a resident the wrong date.\n")
    return msg


async def accepted(port: int, total: int, clients: int) -> float:
    queue = list(range(total))
    start = time.monotonic()

    async def client() -> None:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port)
        await smtp.connect()
        try:
            while queue:
                await smtp.send_message(message(queue.pop(), "load"))
        finally:
            await smtp.quit()

    await asyncio.gather(*(client() for _ in range(clients)))
    return total / (time.monotonic() - start)


async def answered(port: int, answers: Answers, rate: float, seconds: float) -> list[float]:
    sent: dict[str, float] = {}

    async def one(i: int) -> None:
        msg = message(i, "steady")
        sent[msg["From"].addresses[0].addr_spec] = time.monotonic()
        await aiosmtplib.send(msg, hostname="127.0.0.1", port=port)

    tasks = []
    for i in range(int(rate * seconds)):
        tasks.append(asyncio.create_task(one(i)))
        await asyncio.sleep(1 / rate)
    await asyncio.gather(*tasks)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with answers.lock:
            if all(a in answers.at for a in sent):
                break
        await asyncio.sleep(0.2)
    with answers.lock:
        return [answers.at[a] - t for a, t in sent.items() if a in answers.at]


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()

    answers = Answers()
    smtp = Controller(answers, hostname="127.0.0.1", port=free_port())
    smtp.start()
    port, intake = free_port(), free_port()
    with tempfile.TemporaryDirectory() as home:
        env = {k: v for k, v in os.environ.items() if not k.startswith("INCIDENTS_")}
        env.update(
            INCIDENTS_HOME=home,
            INCIDENTS_SMTP_URL=f"smtp://127.0.0.1:{smtp.port}",
            INCIDENTS_MAIL_INTAKE=f"smtp://127.0.0.1:{intake}",
        )
        service = subprocess.Popen(
            [str(Path(sys.executable).parent / "incidents"), "serve", "--port", str(port)],
            env=env,
            stderr=subprocess.DEVNULL,
        )
        try:
            await wait_healthy(f"http://127.0.0.1:{port}")
            print(f"accepted: {args.messages} messages over {args.clients} connections …")
            per_second = await accepted(intake, args.messages, args.clients)
            print(f"accepted: {per_second:,.0f} messages stored and filed per second (SQLite)")
            await asyncio.sleep(5)  # let the backlog's answers and notices go out
            print(f"answered: {args.rate:g} messages/s for {args.seconds:g} s …", flush=True)
            lat = await answered(intake, answers, args.rate, args.seconds)
            print(
                f"answered: {len(lat)} messages, sent -> answer accepted by SMTP: "
                f"p50 {pct(lat, 50) * 1000:.0f} ms, p99 {pct(lat, 99) * 1000:.0f} ms, "
                f"max {max(lat) * 1000:.0f} ms"
            )
        finally:
            service.terminate()
            service.wait(10)
            smtp.stop()


if __name__ == "__main__":
    asyncio.run(main())
