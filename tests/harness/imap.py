"""A real IMAP server for the tests: Debian's Dovecot, as an unprivileged process of its own.

Everything lives in a fresh temporary directory: the configuration, the runtime directories, the
log, a passwd-file with the one user, and that user's Maildir. Dovecot listens on a free port of
127.0.0.1, plain text only (no TLS), and allows plain-text login there. It has IDLE, MOVE and
UIDPLUS, as Dovecot always does.

Dovecot's login and mail processes refuse to run as root, and its user databases refuse UID 0.
So when the tests run as root the whole server is started as `nobody` (in a directory handed to
`nobody`), and otherwise as the current user; the configuration is the same in both cases, with
every internal, login and mail user set to that one account.

When `/usr/sbin/dovecot` is missing and we are root with apt-get, Debian's `dovecot-imapd` is
installed (after `apt-get update` if the first try fails). If there is still no Dovecot, the tests
that need it FAIL, saying why; they are never skipped.

The fixture `imap_server` (session scope) yields an `IMAPServer`: `.host`, `.port`, `.user`,
`.password`, `.url` (`imap://user:password@127.0.0.1:PORT/INBOX`), `.deliver(raw)` (APPEND to
INBOX), `.folder(name)` (the raw messages there), `.clear()` (empty every folder).
It is registered in tests/conftest.py.
"""

from __future__ import annotations

import grp
import imaplib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.harness.debian import apt_install
from tests.harness.kafka import free_port

DOVECOT = "/usr/sbin/dovecot"
USER = "reports"
PASSWORD = "s3cret p@ss/word"  # characters a URL must quote (passwd-file forbids ":")
# Running as root, the server runs as this account instead (Dovecot refuses root for mail).
ROOT_SUBSTITUTE = "nobody"


class IMAPUnavailable(RuntimeError):
    pass


def _apt_install_dovecot() -> None:
    apt_install(
        "dovecot-imapd",
        tag="imap",
        why="Dovecot not found; installing Debian's dovecot-imapd package",
    )


def find_or_install_dovecot() -> str:
    if not Path(DOVECOT).is_file():
        _apt_install_dovecot()
    if not Path(DOVECOT).is_file():
        raise IMAPUnavailable(
            f"no Dovecot at {DOVECOT} for the IMAP tests. Install Debian's package "
            "(`apt-get install -y dovecot-imapd`, as root); the tests need a real IMAP server "
            "and are not skipped without one."
        )
    return DOVECOT


def _config(
    *, root: Path, port: int, account: pwd.struct_passwd, group: str, version: tuple[int, ...]
) -> str:
    # 2.3 calls it disable_plaintext_auth; 2.4 renamed it auth_allow_cleartext.
    cleartext = "auth_allow_cleartext = yes" if version >= (2, 4) else "disable_plaintext_auth = no"
    return f"""\
# Written by tests/harness/imap.py for one test run.
base_dir = {root}/run
state_dir = {root}/state
instance_name = incidents-test-{port}
protocols = imap
listen = 127.0.0.1
ssl = no
{cleartext}
auth_mechanisms = plain login
# A wrong password is answered at once, not after the default 2 s.
auth_failure_delay = 0
login_trusted_networks = 127.0.0.0/8
log_path = {root}/dovecot.log
# Every process runs as the one unprivileged account we were started as.
default_internal_user = {account.pw_name}
default_internal_group = {group}
default_login_user = {account.pw_name}
first_valid_uid = 1
first_valid_gid = 1
mail_location = maildir:~/Maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {root}/passwd
}}
userdb {{
  driver = passwd-file
  args = {root}/passwd
}}
service imap-login {{
  # chroot needs root; we are not.
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
"""


def _version(binary: str) -> tuple[int, ...]:
    out = subprocess.run(
        [binary, "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    numbers = out.split()[0].split(".") if out else []
    try:
        return tuple(int(n) for n in numbers[:2])
    except ValueError:
        return (2, 3)


@dataclass
class IMAPServer:
    """Dovecot running on `host`:`port` with one user, `user`/`password`."""

    root: Path
    process: subprocess.Popen[bytes]
    host: str = "127.0.0.1"
    port: int = 0
    user: str = USER
    password: str = PASSWORD

    @property
    def url(self) -> str:
        return (
            f"imap://{quote(self.user, safe='')}:{quote(self.password, safe='')}"
            f"@{self.host}:{self.port}/INBOX"
        )

    def url_with(self, *, password: str | None = None, folder: str = "INBOX") -> str:
        """This server's URL with another password or folder (e.g. a wrong password)."""
        secret = self.password if password is None else password
        return (
            f"imap://{quote(self.user, safe='')}:{quote(secret, safe='')}"
            f"@{self.host}:{self.port}/{folder}"
        )

    def _client(self) -> imaplib.IMAP4:
        client = imaplib.IMAP4(self.host, self.port, timeout=10)
        client.login(self.user, self.password)
        return client

    def deliver(self, raw: bytes, folder: str = "INBOX") -> None:
        """Put one message into `folder`, as a mail server delivering it would."""
        client = self._client()
        try:
            status, data = client.append(folder, None, None, raw)
            if status != "OK":
                raise AssertionError(f"APPEND to {folder} failed: {data!r}")
        finally:
            client.logout()

    def folder(self, name: str) -> list[bytes]:
        """The raw messages in folder `name`, oldest first; [] when it does not exist."""
        client = self._client()
        try:
            status, _ = client.select(_quoted(name), readonly=True)
            if status != "OK":
                return []
            status, data = client.uid("SEARCH", "ALL")
            uids = data[0].split() if data and data[0] else []
            found: list[bytes] = []
            for uid in uids:
                status, parts = client.uid("FETCH", uid.decode(), "(BODY.PEEK[])")
                for part in parts:
                    if isinstance(part, tuple):
                        found.append(part[1])
            return found
        finally:
            client.logout()

    def clear(self) -> None:
        """Empty INBOX and delete every other folder, so tests don't see each other's mail."""
        client = self._client()
        try:
            _, listing = client.list()
            names = [_list_name(line) for line in listing if isinstance(line, bytes)]
            for name in names:
                if name.upper() == "INBOX":
                    _, count = client.select("INBOX")
                    if count and count[0] not in (None, b"0"):
                        client.store("1:*", "+FLAGS.SILENT", r"(\Deleted)")
                        client.expunge()
                    client.close()
                else:
                    client.delete(_quoted(name))
        finally:
            client.logout()

    def log(self) -> str:
        """Dovecot's log since the server started."""
        try:
            return (self.root / "dovecot.log").read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        shutil.rmtree(self.root, ignore_errors=True)


def _quoted(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _list_name(line: bytes) -> str:
    # `(\HasNoChildren) "." INBOX` or `(...) "." "Some Name"`
    text = line.decode()
    name = text.rsplit(" ", 1)[-1] if not text.endswith('"') else text[text.rindex('"', 0, -1) :]
    return name.strip('"')


def _wait_for_greeting(host: str, port: int, process: subprocess.Popen[bytes], root: Path) -> None:
    deadline = time.monotonic() + 15
    last: Exception | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            with socket.create_connection((host, port), timeout=1) as sock:
                if sock.recv(200).startswith(b"* OK"):
                    return
        except OSError as exc:
            last = exc
        time.sleep(0.05)
    log = (
        (root / "dovecot.log").read_text(errors="replace")
        if (root / "dovecot.log").exists()
        else ""
    )
    raise IMAPUnavailable(
        f"Dovecot did not answer on {host}:{port} (exit code {process.poll()}, last error "
        f"{last!r}). Its log:\n{log[-3000:]}"
    )


def start() -> IMAPServer:
    """Start Dovecot in a temporary directory and wait for its greeting."""
    binary = find_or_install_dovecot()
    as_root = os.geteuid() == 0
    account = pwd.getpwnam(ROOT_SUBSTITUTE) if as_root else pwd.getpwuid(os.getuid())
    group = grp.getgrgid(account.pw_gid).gr_name
    root = Path(tempfile.mkdtemp(prefix="incidents-dovecot-"))
    home = root / "home"
    for sub in ("run", "state", home):
        (root / sub).mkdir()
    port = free_port()
    (root / "passwd").write_text(
        f"{USER}:{{PLAIN}}{PASSWORD}:{account.pw_uid}:{account.pw_gid}::{home}\n"
    )
    (root / "dovecot.conf").write_text(
        _config(root=root, port=port, account=account, group=group, version=_version(binary))
    )
    if as_root:
        for path in (root, *root.rglob("*")):
            os.chown(path, account.pw_uid, account.pw_gid)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home)}
    drop = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []} if as_root else {}
    # Dovecot logs to its log file; stderr only has what goes wrong before it opens that.
    with open(root / "dovecot.log", "ab") as early:
        if as_root:
            os.chown(root / "dovecot.log", account.pw_uid, account.pw_gid)
        process = subprocess.Popen(
            [binary, "-F", "-c", str(root / "dovecot.conf")],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=early,
            start_new_session=True,
            **drop,  # type: ignore[arg-type]
        )
    try:
        _wait_for_greeting("127.0.0.1", port, process, root)
    except BaseException:
        if process.poll() is None:
            process.kill()
            process.wait(5)
        shutil.rmtree(root, ignore_errors=True)
        raise
    return IMAPServer(root=root, process=process, port=port)


@pytest.fixture(scope="session")
def imap_server() -> Iterator[IMAPServer]:
    """Dovecot for the whole run; `clear()` it at the start of a test that counts messages."""
    try:
        server = start()
    except Exception as exc:
        pytest.fail(f"no IMAP server for the tests: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()
