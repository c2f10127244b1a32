"""`incidents systems import` against the test's database, and the public inventory it feeds:
a good file is imported whole, approved by the administrator; a file with a bad row is refused
whole, naming the row; a system met only in a report is never on the public page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from incidents.systems import service as systems
from infra.bootstrap import Runtime
from infra.settings import Settings
from tests.support import cli

Client = TestClient[Any, Any]

# Names the demo directory does not hold (its systems are in the inventory from the start).
GOOD = """name,department,vendor,purpose,public_facing,pilot
Library Recommender,Libraries,Acme AI,Suggests books to residents' reading lists,yes,no
Pothole Spotter,Transportation,Northwind,Finds potholes in street imagery,false,TRUE
"""


def csv_file(tmp_path: Path, text: str, name: str = "systems.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


async def public_page(client: Client) -> str:
    client.session.cookie_jar.clear()  # nobody signed in
    answer = await client.get("/systems")
    text = await answer.text()
    assert answer.status == 200, text[:2000]
    return text


async def test_a_good_file_is_imported_and_listed_publicly(
    client: Client, settings: Settings, tmp_path: Path
) -> None:
    done = cli(settings, "systems", "import", str(csv_file(tmp_path, GOOD)))
    assert done.returncode == 0, done.stderr
    assert "imported 2 systems (2 new, 0 updated)" in done.stdout

    shown = await public_page(client)
    for text in (
        "Library Recommender",
        "Libraries",
        "Acme AI",
        "Suggests books to residents&#39; reading lists",
        "Pothole Spotter",
        "Transportation",
        "Northwind",
        "In use",
    ):
        assert text in shown, text
    row = shown[shown.index("Pothole Spotter") :].split("</tr>")[0]
    assert [c.split("</td>")[0] for c in row.split("<td>")[1:]] == [
        "Transportation",
        "Northwind",
        "Finds potholes in street imagery",
        "No",  # public-facing
        "Yes",  # a pilot
        "In use",
    ]

    listed = cli(settings, "systems", "list")
    assert listed.returncode == 0, listed.stderr
    [line] = [x for x in listed.stdout.splitlines() if x.startswith("Library Recommender")]
    assert line.split()[2:] == ["active", "Libraries"]

    # Again, with one changed and a system the directory had: updated in place.
    again = GOOD.replace("Acme AI", "Acme AI Inc.") + "Benefits Chatbot,Housing,,Rent relief,1,0\n"
    done = cli(settings, "systems", "import", str(csv_file(tmp_path, again, "again.csv")))
    assert done.returncode == 0, done.stderr
    assert "imported 3 systems (0 new, 3 updated)" in done.stdout
    shown = await public_page(client)
    assert "Acme AI Inc." in shown and "Rent relief" in shown


async def test_a_file_with_a_bad_row_imports_nothing_and_names_the_row(
    client: Client, settings: Settings, runtime: Runtime, tmp_path: Path
) -> None:
    bad = GOOD + "Fraud Scorer,Finance,Contoso,Flags claims,no,maybe\n,Parks,,,no,no\n"
    done = cli(settings, "systems", "import", str(csv_file(tmp_path, bad)))
    assert done.returncode == 2
    assert "row 4: pilot is 'maybe'" in done.stderr  # the header is row 1
    assert "row 5: the name is empty" in done.stderr
    assert "row 2" not in done.stderr and "row 3" not in done.stderr
    assert "nothing imported" in done.stderr

    async with runtime.uows() as uow:
        names = {s.name for s in await systems.inventory(uow=uow)}
    assert not names & {"Library Recommender", "Pothole Spotter", "Fraud Scorer"}
    shown = await public_page(client)
    assert "Library Recommender" not in shown and "Pothole Spotter" not in shown

    missing = cli(settings, "systems", "import", str(csv_file(tmp_path, "name,pilot\nX,no\n")))
    assert missing.returncode == 2 and "missing column(s)" in missing.stderr


async def test_a_system_met_only_in_a_report_is_not_on_the_public_page(
    client: Client, settings: Settings, runtime: Runtime, tmp_path: Path
) -> None:
    async with runtime.uows() as uow:
        met = await systems.register("Shadow Transcriber", uow=uow, now=runtime.now())
    assert met.approved_at is None

    done = cli(settings, "systems", "import", str(csv_file(tmp_path, GOOD)))
    assert done.returncode == 0, done.stderr
    shown = await public_page(client)
    assert "Library Recommender" in shown
    assert "Shadow Transcriber" not in shown

    listed = cli(settings, "systems", "list").stdout  # the administrator sees it, unapproved
    assert "Shadow Transcriber" in listed and "unregistered" in listed
