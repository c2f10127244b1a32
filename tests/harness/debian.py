"""Installing a Debian package the tests need (Chromium, Dovecot) when it is missing: as root with
apt-get, `apt-get update` first if the first try fails. Without root or apt-get nothing happens,
and the caller's tests fail saying what to install (they never skip)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys


def say(tag: str, message: str) -> None:
    # Straight to the terminal, past pytest's capture, so a slow install is not a silent hang.
    stream = sys.__stderr__ or sys.stderr
    stream.write(f"[{tag}] {message}\n")
    stream.flush()


def apt_install(package: str, *, tag: str, why: str) -> None:
    apt = shutil.which("apt-get")
    if apt is None or not hasattr(os, "geteuid") or os.geteuid() != 0:
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}

    def run(*args: str) -> bool:
        say(tag, f"running: {' '.join(args)}")
        done = subprocess.run(
            args, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            say(tag, f"{args[1]} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
        return done.returncode == 0

    say(tag, why)
    if not run(apt, "install", "-y", package):
        run(apt, "update")
        run(apt, "install", "-y", package)
