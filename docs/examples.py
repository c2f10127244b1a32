"""Keeps the `incidents policy explain` examples in the docs true: runs the command at the top of
every `console` block that starts with `$ incidents policy explain` and puts its output below it.

    .venv/bin/python docs/examples.py          # rewrite README.md and docs/explain-examples.md
    .venv/bin/python docs/examples.py --check  # exit 1 if any example is out of date

The test suite runs the check, so an engine or pack change that alters an example fails until
the docs are rewritten.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from pathlib import Path

from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
FILES = [ROOT / "README.md", ROOT / "docs" / "explain-examples.md"]
PROMPT = "$ incidents policy explain "
BLOCK = re.compile(r"```console\n(\$ incidents policy explain [^\n]*)\n(.*?)```", re.S)


def run(command: str) -> str:
    """The output of one `incidents policy explain …` line, run in-process from the root."""
    from incidents.cli.policy import policy_app

    args = shlex.split(command.removeprefix("$ incidents policy "))
    # The examples show the packs as shipped: no deployment's overrides or holidays.
    env = {k: v for k, v in os.environ.items() if not k.startswith("INCIDENTS_")}
    cwd = Path.cwd()
    os.chdir(ROOT)
    try:
        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(env)
        result = CliRunner().invoke(policy_app, args)
    finally:
        os.environ.clear()
        os.environ.update(saved)
        os.chdir(cwd)
    if result.exit_code != 0:
        raise SystemExit(f"{command!r} failed:\n{result.output}")
    return result.output


def rewritten(text: str) -> str:
    return BLOCK.sub(lambda m: f"```console\n{m.group(1)}\n{run(m.group(1))}```", text)


def main() -> int:
    stale = []
    for path in FILES:
        text = path.read_text(encoding="utf-8")
        new = rewritten(text)
        if new != text:
            stale.append(path.relative_to(ROOT))
            if "--check" not in sys.argv:
                path.write_text(new, encoding="utf-8")
    if stale and "--check" in sys.argv:
        print(f"out of date: {', '.join(map(str, stale))}; run .venv/bin/python docs/examples.py")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
