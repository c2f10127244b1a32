"""The `incidents policy explain` examples in the README and docs/explain-examples.md are the
command's real output: a change to a pack or the engine that alters one fails here until the docs
are rewritten with `.venv/bin/python docs/examples.py`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_explain_example_in_the_docs_is_current() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "examples.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
