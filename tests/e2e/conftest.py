"""Real-browser end-to-end fixtures: the real service in a subprocess, Debian's Chromium driven
by Playwright (sync API).

Chromium is found from INCIDENTS_TEST_CHROMIUM, /usr/bin/chromium or `chromium` on PATH. When none
is there and we are root with apt-get, it is installed (`apt-get install -y chromium`, after
`apt-get update` if the first try fails). If there is still no browser, the tests FAIL: they are
never skipped, so a green run always means the pages were checked in a browser.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.harness.debian import apt_install, say

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO = Path(__file__).resolve().parents[2]


def _find_chromium() -> str | None:
    configured = os.environ.get("INCIDENTS_TEST_CHROMIUM")
    if configured:
        if Path(configured).is_file() and os.access(configured, os.X_OK):
            return configured
        pytest.fail(
            f"INCIDENTS_TEST_CHROMIUM={configured!r} is not an executable file", pytrace=False
        )
    if Path("/usr/bin/chromium").is_file():
        return "/usr/bin/chromium"
    return shutil.which("chromium")


def _apt_install_chromium() -> None:
    apt_install(
        "chromium",
        tag="e2e",
        why="Chromium not found; installing Debian's chromium package (this takes a minute)",
    )


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = _find_chromium()
    if path is None:
        _apt_install_chromium()
        path = _find_chromium()
        if path:
            say("e2e", f"installed Chromium at {path}")
    if path is None:
        pytest.fail(
            "No Chromium for the end-to-end tests. Install Debian's package "
            "(`apt-get install -y chromium`, as root) or set INCIDENTS_TEST_CHROMIUM to a "
            "Chromium executable. Playwright's own browser downloads are not used.",
            pytrace=False,
        )
    return path


# Package scope, not session: Playwright's sync API keeps its own event loop running in the main
# thread while it is open, and the asyncio tests after this package need that thread back.
@pytest.fixture(scope="package")
def playwright_instance() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="package")
def browser(playwright_instance, chromium_path: str):  # type: ignore[no-untyped-def]
    b = playwright_instance.chromium.launch(
        executable_path=chromium_path, args=CHROMIUM_ARGS, headless=True
    )
    yield b
    b.close()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Service:
    base_url: str
    home: Path
    log: Path

    @property
    def mail_dir(self) -> Path:
        return self.home / "outgoing-mail"

    def log_tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-4000:]
        except OSError:
            return ""


@contextmanager
def running_service(home: Path, **settings: str) -> Iterator[Service]:
    """`incidents serve` on a free loopback port with these INCIDENTS_* settings (and none of
    the environment's); mail goes to files in `home`. Stopped on leaving."""
    log = home / "serve.log"
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("INCIDENTS_")}
    env["INCIDENTS_HOME"] = str(home)
    env.update(
        {f"INCIDENTS_{k.upper()}": v.replace("{base_url}", base_url) for k, v in settings.items()}
    )
    exe = Path(sys.executable).with_name("incidents")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "incidents.cli"]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*command, "serve", "--port", str(port)],
            cwd=home,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    svc = Service(base_url=base_url, home=home, log=log)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"`incidents serve` exited ({proc.returncode}):\n{svc.log_tail()}")
            try:
                with urllib.request.urlopen(f"{svc.base_url}/healthz", timeout=1) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"`incidents serve` did not answer /healthz in 30 s:\n{svc.log_tail()}")
            time.sleep(0.1)
        yield svc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """`incidents serve` on a free loopback port; mail goes to files in its home folder.

    Every browser test signs in from one address, many times a minute: the sign-in limit a
    person would never reach (20 a minute) would refuse them, in an order that depends on how
    fast the machine is. The limits themselves are tested in tests/integration."""
    home = tmp_path_factory.mktemp("incidents-home")
    with running_service(home, rate_limits="signin=1000/minute") as svc:
        yield svc


@pytest.fixture
def context(browser):  # type: ignore[no-untyped-def]
    """A fresh JavaScript-enabled browser context (axe needs script to run)."""
    ctx = browser.new_context(locale="en-US", timezone_id="America/Los_Angeles")
    ctx.set_default_timeout(10_000)
    yield ctx
    ctx.close()


@pytest.fixture
def nojs_context(browser):  # type: ignore[no-untyped-def]
    """A browser context with JavaScript off, as some City machines have it."""
    ctx = browser.new_context(
        java_script_enabled=False, locale="en-US", timezone_id="America/Los_Angeles"
    )
    ctx.set_default_timeout(10_000)
    yield ctx
    ctx.close()
