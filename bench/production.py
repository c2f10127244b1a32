"""Throughput and latency in production mode (PostgreSQL + Kafka + SMTP), against the raw limits
of the same parts, measured on the same machine in the same run.

Starts a Tansu broker (tests/harness/kafka.py), uses PostgreSQL on 127.0.0.1:5432 or pgserver
(tests/harness/postgres.py), runs an SMTP server (bench/embedded.py's Arrivals, in this process or
in its own), and measures:

  raw limits   a) aiohttp + asyncpg writing the rows of one report in one transaction,
               b) aiosmtplib to the same SMTP server over 16 reused connections (as the service),
               c) aiokafka producing and consuming 1 KB records, acks=all, on the same broker;
  intake       reports accepted per second by `incidents web` on a fresh database;
  end to end   a backlog of reports, first report posted -> last notice accepted by SMTP, with one
               and with two `incidents worker` processes;
  latency      at a steady rate (100 reports/s), report accepted (201) -> last of its notices
               accepted by SMTP: p50 and p99;

then prints the figures and the ratios against issue 3's targets. Every service phase runs on a
database and an events topic of its own, dropped / left behind at the end.

Usage: .venv/bin/python bench/production.py [--reports 2000] [--clients 16] [--backlog 600]
           [--rate 100] [--seconds 10] [--smtp process|thread] [--profile DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from aiosmtpd.controller import Controller

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.embedded import (  # noqa: E402
    NOTICES_PER_REPORT,
    Arrivals,
    intake,
    latency,
    pct,
    wait_healthy,
)
from tests.harness.kafka import Broker, free_port  # noqa: E402
from tests.harness.postgres import PostgresServer, find_or_start  # noqa: E402

RAW = [sys.executable, str(ROOT / "bench" / "raw_limits.py")]
INCIDENTS = str(Path(sys.executable).parent / "incidents")
SMTP_CONNECTIONS = 16  # INCIDENTS_SMTP_CONNECTIONS' default, what the service uses
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Issue 3's targets.
INTAKE_TARGET = 0.60  # of the raw aiohttp + asyncpg limit
END_TO_END_TARGET = 0.70  # of the SMTP limit / notices per report
P99_TARGET = 1.0  # seconds, at 100 reports/s


def say(text: str) -> None:
    print(text, flush=True)


# --- the SMTP server: in this process, or in its own ---------------------------------------------


class ProcessArrivals(Arrivals):
    """Arrivals filled from an SMTP server running in a process of its own (raw_limits smtp-server).

    time.monotonic() is the system-wide CLOCK_MONOTONIC on Linux, so its times compare with ours.
    """

    def __init__(self, lines) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        self._reader = threading.Thread(target=self._read, args=(lines,), daemon=True)
        self._reader.start()

    def _read(self, lines) -> None:  # type: ignore[no-untyped-def]
        for line in lines:
            reference, _, at = line.rpartition(" ")
            with self.lock:
                self.by_reference.setdefault(reference, []).append(float(at))


class SmtpServer:
    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.port = free_port()
        self.process: subprocess.Popen[str] | None = None
        self.controller: Controller | None = None
        if mode == "thread":
            self.arrivals: Arrivals = Arrivals()
            self.controller = Controller(self.arrivals, hostname="127.0.0.1", port=self.port)
            self.controller.start()
        else:
            self.process = subprocess.Popen(
                [*RAW, "smtp-server", "--port", str(self.port)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert self.process.stdout is not None
            if self.process.stdout.readline().strip() != "ready":
                raise SystemExit("the SMTP server process did not start")
            self.arrivals = ProcessArrivals(self.process.stdout)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def count(self) -> int:
        with self.arrivals.lock:
            return sum(len(v) for v in self.arrivals.by_reference.values())

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
        if self.process is not None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            self.process.wait(10)


# --- CPU use per process, to see which part is the bottleneck ------------------------------------


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def _tree(pid: int) -> list[int]:
    """pid and all its descendants (a service under py-spy is py-spy's child)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo += children.get(p, [])
    return found


def _busy_seconds() -> float:
    """CPU seconds the whole machine has been busy (all cores), from /proc/stat."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(
        int, Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def _postgres_pids() -> list[int]:
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            if stat.read_text().split(" ", 2)[1] == "(postgres)":
                pids.append(int(stat.parent.name))
    return pids


class CpuMeter:
    """CPU seconds each part used between start() and stop(), as a share of one core."""

    always: dict[str, list[int]] = {}  # the bench itself, the broker, the SMTP server process

    def __init__(self, parts: dict[str, list[int]]) -> None:
        self.parts = {**parts, **self.always}

    def _sample(self) -> dict[str, float]:
        parts = dict(self.parts, postgres=_postgres_pids())
        sample = {name: sum(_cpu_seconds(p) for p in pids) for name, pids in parts.items()}
        sample["everything"] = _busy_seconds()
        return sample

    def __enter__(self) -> CpuMeter:
        self._t0, self._before = time.monotonic(), self._sample()
        return self

    def __exit__(self, *exc: object) -> None:
        seconds = time.monotonic() - self._t0
        after = self._sample()
        # postgres backends come and go; a vanished one counts 0 after, so clamp at 0
        share = {k: max(0.0, after[k] - self._before.get(k, 0.0)) / seconds for k in after}
        # what else ran on the machine meanwhile (another test run would make figures low)
        share["other"] = max(0.0, share.pop("everything") - sum(share.values()))
        self.share = share

    def line(self) -> str:
        return "  ".join(f"{k} {v * 100:.0f}%" for k, v in self.share.items())


# --- a deployment of the service: a fresh database and topic, web and workers --------------------


@dataclass
class Deployment:
    pg: PostgresServer
    broker: Broker
    smtp: SmtpServer
    home: str
    profile: Path | None = None
    database: str = ""
    topic: str = field(default_factory=lambda: f"bench-{uuid.uuid4().hex[:8]}")
    web: subprocess.Popen[bytes] | None = None
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    logs: list[Path] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("INCIDENTS_")}
        env.update(
            INCIDENTS_DATABASE_URL=self.pg.sqlalchemy_url(self.database),
            INCIDENTS_KAFKA_BOOTSTRAP=self.broker.bootstrap,
            INCIDENTS_KAFKA_TOPIC=self.topic,
            INCIDENTS_SMTP_URL=self.smtp.url,
            INCIDENTS_SECRET_KEY="bench",
            # Every bench client is one address: the per-client intake limit would measure itself.
            INCIDENTS_RATE_LIMITS="intake=0",
            INCIDENTS_HOME=self.home,
        )
        return env

    async def create(self) -> None:
        self.database = await self.pg.create_database()
        for command in (["migrate"], ["kafka", "init"]):
            subprocess.run(
                [INCIDENTS, *command], env=self.env(), check=True, stdout=subprocess.DEVNULL
            )

    def _spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = Path(self.home) / f"{name}.log"
        self.logs.append(log)
        command = [INCIDENTS, *args]
        if self.profile is not None:  # py-spy samples the process for its whole life
            self.profile.mkdir(parents=True, exist_ok=True)
            out = self.profile / f"{self.topic}-{name}.txt"  # collapsed stacks (flamegraph.pl)
            command = [str(Path(sys.executable).parent / "py-spy"), "record", "--nonblocking",
                       "--format", "raw", "-r", "50", "-o", str(out), "--", *command]  # fmt: skip
        with log.open("wb") as out_file:
            return subprocess.Popen(command, env=self.env(), stdout=out_file, stderr=out_file)

    async def start_web(self) -> None:
        self.web = self._spawn("web", "web", "--port", str(self.port))
        await wait_healthy(self.url)

    def start_worker(self) -> None:
        self.workers.append(self._spawn(f"worker{len(self.workers) + 1}", "worker"))

    def pids(self) -> dict[str, list[int]]:
        parts = {"web": _tree(self.web.pid) if self.web else []}
        parts["workers"] = [p for w in self.workers for p in _tree(w.pid)]
        return parts

    async def stop(self) -> None:
        for process in [*self.workers, *([self.web] if self.web else [])]:
            # SIGTERM to the service itself: py-spy writes its profile once its child has ended
            for pid in _tree(process.pid)[1:] if self.profile else [process.pid]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
        for process in [*self.workers, *([self.web] if self.web else [])]:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        self.workers.clear()
        self.web = None
        if self.database:
            await self.pg.drop_database(self.database)
            self.database = ""


# --- phases --------------------------------------------------------------------------------------


async def wait_for_notices(
    smtp: SmtpServer, before: set[str], reports: int, timeout: float
) -> float:
    """Wait until `reports` new references have all their notices; the last arrival's time."""
    deadline = time.monotonic() + timeout
    while True:
        with smtp.arrivals.lock:
            new = [v for r, v in smtp.arrivals.by_reference.items() if r not in before]
            done = [v for v in new if len(v) >= NOTICES_PER_REPORT]
        if len(done) >= reports:
            return max(max(v) for v in done)
        if time.monotonic() > deadline:
            raise SystemExit(
                f"only {len(done)} of {reports} reports had all their notices after {timeout:g} s"
            )
        await asyncio.sleep(0.05)


def references(smtp: SmtpServer) -> set[str]:
    with smtp.arrivals.lock:
        return set(smtp.arrivals.by_reference)


async def backlog(dep: Deployment, reports: int, clients: int, timeout: float = 120) -> dict:
    """Post `reports` as fast as `clients` can; first post -> last notice accepted by SMTP."""
    before = references(dep.smtp)
    since = datetime.now(UTC)
    with CpuMeter(dep.pids()) as cpu:
        start = time.monotonic()
        posted_per_second = await intake(dep.url, reports, clients)
        last = await wait_for_notices(dep.smtp, before, reports, timeout)
    return {
        "stages": await stages(dep, since, datetime.now(UTC)),
        "per_second": reports / (last - start),
        "seconds": last - start,
        "posted_per_second": posted_per_second,
        "cpu": cpu,
    }


async def steady(dep: Deployment, rate: float, seconds: float) -> dict:
    since = datetime.now(UTC)
    with CpuMeter(dep.pids()) as cpu:
        lat = await latency(dep.url, dep.smtp.arrivals, rate, seconds)
    return {
        "stages": await stages(dep, since, datetime.now(UTC)),
        "count": len(lat),
        "sent": int(rate * seconds),
        "p50": pct(lat, 50),
        "p99": pct(lat, 99),
        "max": max(lat),
        "cpu": cpu,
    }


STAGES = """
WITH n AS (
  SELECT r.reported_at, n.created_at, n.sent_at,
         (SELECT max(e.published_at) FROM events e
           WHERE e.subject = r.id AND e.type LIKE '%obligation.opened%') AS published_at
  FROM notices n JOIN reports r ON r.id = n.report_id
  WHERE r.reported_at >= $1 AND r.reported_at < $2 AND n.purpose = 'notice'
)
SELECT stage, percentile_cont(0.5) WITHIN GROUP (ORDER BY s) AS p50,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY s) AS p99
FROM (
  SELECT 'committed -> published to Kafka' AS stage, 1 AS o,
         extract(epoch FROM published_at - reported_at) AS s FROM n
  UNION ALL SELECT 'published -> notice stored (notifier)', 2,
         extract(epoch FROM created_at - published_at) FROM n
  UNION ALL SELECT 'notice stored -> sent (delivery)', 3,
         extract(epoch FROM sent_at - created_at) FROM n
) t GROUP BY stage, o ORDER BY o
"""


async def stages(
    dep: Deployment, since: datetime, until: datetime
) -> list[tuple[str, float, float]]:
    """Where a report's time goes, from the service's own timestamps (its database clock)."""
    import asyncpg

    conn = await asyncpg.connect(dep.pg.dsn(dep.database))
    try:
        return [(r["stage"], r["p50"], r["p99"]) for r in await conn.fetch(STAGES, since, until)]
    finally:
        await conn.close()


async def drain(smtp: SmtpServer, quiet: float = 1.5) -> None:
    """Until no notice has arrived for `quiet` seconds."""
    last, since = smtp.count(), time.monotonic()
    while time.monotonic() - since < quiet:
        await asyncio.sleep(0.1)
        now = smtp.count()
        if now != last:
            last, since = now, time.monotonic()


def assignments(log: Path) -> dict[str, int]:
    """How many times each consumer group has handed this worker its partitions (its log)."""
    counts: dict[str, int] = {}
    with contextlib.suppress(FileNotFoundError):
        for line in log.read_text(errors="replace").splitlines():
            if "Setting newly assigned partitions" in line:
                group = line.rsplit(" for group ", 1)[-1].strip()
                counts[group] = counts.get(group, 0) + 1
    return counts


async def add_worker(dep: Deployment, groups: int = 2, timeout: float = 60) -> float:
    """Start one more worker; wait until every worker has its partitions of every group again.

    (Tansu's DescribeGroups answer is one aiokafka cannot decode, so the workers' own logs say
    when a rebalance is done.)
    """
    before = [assignments(log) for log in dep.logs if log.stem.startswith("worker")]
    start = time.monotonic()
    dep.start_worker()
    logs = [log for log in dep.logs if log.stem.startswith("worker")]
    before.append({})
    while time.monotonic() - start < timeout:
        now = [assignments(log) for log in logs]
        if all(
            len(n) >= groups and all(n[g] > b.get(g, 0) for g in n)
            for n, b in zip(now, before, strict=True)
        ):
            return time.monotonic() - start
        await asyncio.sleep(0.1)
    tails = "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-1500:]}" for log in logs)
    raise SystemExit(f"the workers did not all get partitions within {timeout:g} s:\n{tails}")


# --- raw limits ----------------------------------------------------------------------------------


async def raw_intake(pg: PostgresServer, reports: int, clients: int, home: str) -> dict:
    database = await pg.create_database()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("INCIDENTS_")}
    env.update(INCIDENTS_DATABASE_URL=pg.sqlalchemy_url(database), INCIDENTS_HOME=home)
    server = None
    try:
        subprocess.run([INCIDENTS, "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
        server = subprocess.Popen(
            [*RAW, "intake-server", "--dsn", pg.dsn(database), "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        await wait_healthy(url)
        await intake(url, 100, clients)  # warm the pool and the code paths
        with CpuMeter({"raw server": [server.pid]}) as cpu:
            per_second = await intake(url, reports, clients)
        return {"per_second": per_second, "cpu": cpu}
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)
        await pg.drop_database(database)


def raw_json(*args: str) -> dict:
    done = subprocess.run([*RAW, *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"raw_limits {args[0]} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)


def raw_smtp(smtp: SmtpServer, count: int) -> dict:
    """The raw SMTP limit, and the CPU the client and the server used to reach it."""
    raw_json("smtp-send", "--port", str(smtp.port), "--count", "200")  # warm-up
    server = smtp.process.pid if smtp.process is not None else os.getpid()
    before = _cpu_seconds(server)  # the server works only while the client sends
    result = raw_json(
        "smtp-send", "--port", str(smtp.port), "--count", str(count),
        "--connections", str(SMTP_CONNECTIONS),
    )  # fmt: skip
    result["per_second"] = result["sent"] / result["seconds"]
    result["client_share"] = result["cpu_seconds"] / result["seconds"]
    result["server_share"] = (_cpu_seconds(server) - before) / result["seconds"]
    return result


# --- the run -------------------------------------------------------------------------------------


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--reports", type=int, default=2000, help="intake: reports posted")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients posting")
    parser.add_argument("--backlog", type=int, default=600, help="end to end: reports posted")
    parser.add_argument("--rate", type=float, default=100.0, help="latency: reports per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="latency: how long")
    parser.add_argument("--smtp-messages", type=int, default=3000, help="raw SMTP: messages sent")
    parser.add_argument("--kafka-records", type=int, default=20000, help="raw Kafka: records")
    parser.add_argument(
        "--smtp", choices=["process", "thread"], default="process",
        help="where the SMTP server of the service phases runs (both are measured raw)",
    )  # fmt: skip
    parser.add_argument(
        "--profile",
        type=Path,
        help="record py-spy profiles (collapsed stacks) of web and workers here",
    )
    args = parser.parse_args()

    started = time.monotonic()
    figures: dict[str, dict] = {}
    pg = find_or_start()
    broker = Broker.start()
    smtp_servers: dict[str, SmtpServer] = {}
    home = tempfile.mkdtemp(prefix="incidents-bench-")
    deployments: list[Deployment] = []
    try:
        say(f"PostgreSQL {pg.dsn()}, Kafka (Tansu) {broker.bootstrap}, {os.cpu_count()} cores")

        # 4c: raw Kafka
        say(f"raw: aiokafka, {args.kafka_records} records of 1 KB, acks=all …")
        k = raw_json("kafka", "--bootstrap", broker.bootstrap, "--count", str(args.kafka_records))
        figures["kafka"] = {
            "produce": k["produced"] / k["produce_seconds"],
            "consume": k["consumed"] / k["consume_seconds"],
        }

        # 4b: raw SMTP, with the server in a thread of this process and in its own process
        for mode in ("thread", "process"):
            smtp_servers[mode] = SmtpServer(mode)
            say(f"raw: aiosmtplib, {args.smtp_messages} notices over {SMTP_CONNECTIONS} "
                f"connections, SMTP server in a {mode} …")  # fmt: skip
            figures[f"smtp-{mode}"] = raw_smtp(smtp_servers[mode], args.smtp_messages)
        for mode in [m for m in smtp_servers if m != args.smtp]:
            smtp_servers.pop(mode).stop()
        smtp = smtp_servers[args.smtp]
        CpuMeter.always = {"bench": [os.getpid()]}
        if broker.process is not None:
            CpuMeter.always["kafka"] = [broker.process.pid]
        if smtp.process is not None:
            CpuMeter.always["smtp"] = [smtp.process.pid]

        # 4a: raw intake
        say(f"raw: aiohttp + asyncpg, {args.reports} reports, {args.clients} clients …")
        figures["raw-intake"] = await raw_intake(pg, args.reports, args.clients, home)

        # 1: intake on PostgreSQL, `incidents web` alone (it only writes: events wait in the outbox)
        dep = Deployment(pg, broker, smtp, tempfile.mkdtemp(dir=home), args.profile)
        deployments.append(dep)
        await dep.create()
        await dep.start_web()
        say(f"intake: `incidents web` on PostgreSQL, {args.reports} reports, "
            f"{args.clients} clients …")  # fmt: skip
        await intake(dep.url, 100, args.clients)  # warm-up, as the raw server had
        with CpuMeter(dep.pids()) as cpu:
            figures["intake"] = {"per_second": await intake(dep.url, args.reports, args.clients)}
        figures["intake"]["cpu"] = cpu
        await dep.stop()
        deployments.remove(dep)

        # 2, 3: end to end and latency, one worker then two
        dep = Deployment(pg, broker, smtp, tempfile.mkdtemp(dir=home), args.profile)
        deployments.append(dep)
        await dep.create()
        await dep.start_web()
        for workers in (1, 2):
            joined = await add_worker(dep)
            await backlog(dep, 12, 4, timeout=60)  # warm-up: the whole path works
            say(f"workers: {workers} (partitions assigned after {joined:.1f} s)")
            say(f"end to end: backlog of {args.backlog} reports, {args.clients} clients …")
            figures[f"e2e-{workers}"] = await backlog(dep, args.backlog, args.clients)
            await drain(smtp)
            say(f"latency: {args.rate:g} reports/s for {args.seconds:g} s …")
            figures[f"latency-{workers}"] = await steady(dep, args.rate, args.seconds)
            await drain(smtp)
        await dep.stop()
        deployments.remove(dep)
        figures["run_seconds"] = {"value": time.monotonic() - started}
        table(figures, args)
    finally:
        for dep in deployments:
            with contextlib.suppress(Exception):
                await dep.stop()
        for server in smtp_servers.values():
            server.stop()
        broker.stop()
        pg.stop()
        shutil.rmtree(home, ignore_errors=True)


def service_cpu_per_report(phase: dict, reports: int) -> float:
    """CPU seconds (all cores) one report cost end to end: the service's processes, PostgreSQL,
    the broker and the SMTP server; not the bench's clients, nor anything else on the machine."""
    share = phase["cpu"].share
    used = sum(v for k, v in share.items() if k not in ("bench", "other"))
    return used * phase["seconds"] / reports


def table(f: dict[str, dict], args: argparse.Namespace) -> None:
    mode = args.smtp
    cores = os.cpu_count() or 1

    def smtp_cpu(m: str) -> str:
        raw = f[f"smtp-{m}"]
        return f"client {raw['client_share']:.0%}  server {raw['server_share']:.0%}"

    smtp_limit = f[f"smtp-{mode}"]["per_second"]
    e2e_limit = smtp_limit / NOTICES_PER_REPORT
    raw_intake = f["raw-intake"]["per_second"]
    rows = [
        ("Raw limits (same machine, same run)", None, None),
        ("aiohttp + asyncpg: report + 3 obligations + 9 clocks + 4 events, 1 tx",
         f"{raw_intake:,.0f} reports/s", f["raw-intake"]["cpu"].line()),
        (f"aiosmtplib, {SMTP_CONNECTIONS} reused connections, SMTP server in a thread here",
         f"{f['smtp-thread']['per_second']:,.0f} msg/s",
         f"{f['smtp-thread']['bytes']:,} B/msg  {smtp_cpu('thread')}"),
        (f"aiosmtplib, {SMTP_CONNECTIONS} reused connections, SMTP server in its own process",
         f"{f['smtp-process']['per_second']:,.0f} msg/s", smtp_cpu("process")),
        ("aiokafka produce, 1 KB, acks=all", f"{f['kafka']['produce']:,.0f} msg/s", ""),
        ("aiokafka consume, 1 KB", f"{f['kafka']['consume']:,.0f} msg/s", ""),
        (f"end-to-end limit: SMTP ({mode}) / {NOTICES_PER_REPORT} notices",
         f"{e2e_limit:,.1f} reports/s", ""),
        ("The service", None, None),
        (f"intake, `incidents web`, PostgreSQL, {args.clients} clients",
         f"{f['intake']['per_second']:,.0f} reports/s", f["intake"]["cpu"].line()),
    ]  # fmt: skip
    for w in (1, 2):
        e = f[f"e2e-{w}"]
        rows.append(
            (f"end to end, {w} worker{'s' if w > 1 else ''}: backlog of {args.backlog}, first post "
             "-> last notice", f"{e['per_second']:,.1f} reports/s",
             f"({e['seconds']:.1f} s; posted at {e['posted_per_second']:,.0f}/s) {e['cpu'].line()}")
        )  # fmt: skip
    for w in (1, 2):
        s = f[f"latency-{w}"]
        rows.append(
            (f"latency at {args.rate:g}/s, {w} worker{'s' if w > 1 else ''}: 201 -> last notice",
             f"p50 {s['p50'] * 1000:,.0f} ms, p99 {s['p99'] * 1000:,.0f} ms",
             f"(max {s['max'] * 1000:,.0f} ms; {s['count']}/{s['sent']} complete"
             f"{'' if s['count'] == s['sent'] else ' within 60 s: a lower bound'}) "
             f"{s['cpu'].line()}")
        )  # fmt: skip
    raw = f[f"smtp-{mode}"]
    smtp_per_report = (raw["client_share"] + raw["server_share"]) / raw["per_second"]
    smtp_per_report *= NOTICES_PER_REPORT
    smtp_at_target = smtp_per_report * END_TO_END_TARGET * e2e_limit  # share of one core
    ceiling: dict[int, float] = {}  # end-to-end reports/s this machine's cores allow, at most
    rows += [
        (f"CPU per report (ms of CPU, all {cores} cores together)", None, None),
        (f"raw SMTP alone: {NOTICES_PER_REPORT} notices sent, client + server",
         f"{smtp_per_report * 1000:.2f} ms",
         f"at the end-to-end target rate, sending alone takes {smtp_at_target:.0%} of the "
         f"machine's {cores * 100}%"),
    ]  # fmt: skip
    for w in (1, 2):
        per_report = service_cpu_per_report(f[f"e2e-{w}"], args.backlog)
        ceiling[w] = cores / per_report
        rows.append(
            (f"end to end, {w} worker{'s' if w > 1 else ''}: web, workers, PostgreSQL, Kafka, SMTP "
             "server", f"{per_report * 1000:.2f} ms",
             f"{cores} cores allow at most {ceiling[w]:,.0f} reports/s = "
             f"{ceiling[w] / e2e_limit:.0%} of the end-to-end limit")
        )  # fmt: skip
    width = max(len(r[0]) for r in rows) + 2
    vwidth = max(len(r[1] or "") for r in rows) + 2
    say("")
    for label, value, note in rows:
        if value is None:
            say(f"\n{label}\n{'-' * (width + vwidth)}")
        else:
            say(f"{label:<{width}}{value:<{vwidth}}{note}")

    checks = [  # label, ratio, target, the most this machine's CPU allows (None: not computed)
        (f"intake >= {INTAKE_TARGET:.0%} of raw aiohttp+asyncpg",
         f["intake"]["per_second"] / raw_intake, INTAKE_TARGET, None),
        (f"end to end (1 worker) >= {END_TO_END_TARGET:.0%} of SMTP limit / {NOTICES_PER_REPORT}",
         f["e2e-1"]["per_second"] / e2e_limit, END_TO_END_TARGET, ceiling[1] / e2e_limit),
        (f"end to end (2 workers) >= {END_TO_END_TARGET:.0%} of SMTP limit / {NOTICES_PER_REPORT}",
         f["e2e-2"]["per_second"] / e2e_limit, END_TO_END_TARGET, ceiling[2] / e2e_limit),
    ]  # fmt: skip
    say(f"\nWhere the time goes (service timestamps, p50 / p99)\n{'-' * (width + vwidth)}")
    for phase in [f"e2e-{w}" for w in (1, 2)] + [f"latency-{w}" for w in (1, 2)]:
        for stage, p50, p99 in f[phase]["stages"]:
            say(f"{phase + ': ' + stage:<{width}}{p50 * 1000:,.0f} / {p99 * 1000:,.0f} ms")
    say(f"\nTargets (issue 3)\n{'-' * (width + vwidth)}")
    for label, ratio, target, most in checks:
        say(f"{label:<{width}}{ratio:.0%}{'':<{vwidth - len(f'{ratio:.0%}')}}"
            f"{'MET' if ratio >= target else 'NOT MET'}")  # fmt: skip
        if most is not None and ratio < target and most < target:
            say(f"{'':<{width + vwidth}}(this machine's CPU allows at most "
                f"{most:.0%}: see CPU per report)")  # fmt: skip
    for w in (1, 2):
        p99 = f[f"latency-{w}"]["p99"]
        label = (
            f"p99 < {P99_TARGET:g} s at {args.rate:g} reports/s ({w} worker{'s' if w > 1 else ''})"
        )
        say(f"{label:<{width}}{p99:.2f} s{'':<{vwidth - len(f'{p99:.2f} s')}}"
            f"{'MET' if p99 < P99_TARGET else 'NOT MET'}")  # fmt: skip
    say(
        f"\n(whole run {f['run_seconds']['value']:.0f} s; CPU: share of one core per process "
        "group over the phase; this machine has 2 cores)"
    )


if __name__ == "__main__":
    asyncio.run(main())
