"""`incidents policy check | list | explain`: an administrator's tools for policy packs.

`explain` runs the same engine and the same JSON serializer as the service, so its output is a
faithful preview of what a report would set in motion: its obligations and, when a rule it matches
opens one, the security case with its owner, severity, on-call page and response-plan tasks; and
the sunset review of its AI system it would open, or the thresholds it counts towards. `explain`
has no database, so it counts the report alone: earlier reports about the system count too.
"""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
import yaml
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from incidents.kernel.vocabulary import DataCategory, IncidentKind, role_name
from incidents.policy.active import PolicySet
from incidents.policy.cases import PlannedCase, case_for
from incidents.policy.directory import Directory
from incidents.policy.engine import Plan, ReportFacts, plan_for
from incidents.policy.loader import (
    PolicyError,
    available_packs,
    load_pack,
    pack_path,
)
from incidents.policy.presentation import (
    EARLIER_REPORTS_NOTE,
    case_citations,
    case_json,
    decide_words,
    obligation_json,
    page_steps,
    plan_words,
    response_task,
    review_json,
    sunset_plan,
    titled,
    window_words,
)
from incidents.policy.reviews import Counting, PlannedReview, review_for
from incidents.policy.schema import Pack, Trigger

policy_app = typer.Typer(help="Check, list and explain policy packs.", no_args_is_help=True)


class Reporter(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str = ""
    email: str = ""
    department: str


class ReportFile(BaseModel):
    """The fields of the API's report body that the policy engine looks at."""

    model_config = ConfigDict(extra="ignore")

    kind: IncidentKind
    title: str = ""
    description: str = ""
    discovered_at: AwareDatetime
    reported_at: AwareDatetime | None = None
    reporter: Reporter
    ai_system: str = ""
    data_categories: list[DataCategory] = Field(default_factory=list)
    affected_count: int | None = Field(default=None, ge=0)

    def facts(self, now: datetime) -> ReportFacts:
        return ReportFacts(
            kind=self.kind,
            department=self.reporter.department,
            ai_system=self.ai_system,
            discovered_at=self.discovered_at,
            reported_at=self.reported_at or now,
            data_categories=frozenset(self.data_categories),
            affected_count=self.affected_count,
        )


@policy_app.command()
def check(
    files: Annotated[list[Path], typer.Argument(help="pack files to check")],
) -> None:
    """Check pack files; exit 1 with what to fix when one is broken."""
    broken = 0
    for path in files:
        try:
            pack = load_pack(path)
        except PolicyError as exc:
            broken += 1
            typer.echo(str(exc), err=True)
            continue
        typer.echo(f"ok: {path} ({pack.id}, {len(pack.rules)} rules)")
    if broken:
        raise typer.Exit(code=1)


@policy_app.command("list")
def list_packs() -> None:
    """The packs shipped with the service."""
    for name in available_packs():
        try:
            pack = load_pack(pack_path(name))
        except PolicyError as exc:
            typer.echo(f"{name}: BROKEN: {exc}")
            continue
        layer = f" (layers on {pack.layers_on} for {', '.join(pack.departments)})"
        typer.echo(
            f"{pack.id}: {pack.title} — {len(pack.rules)} rules, {pack.timezone}"
            + (layer if pack.layers_on else "")
        )


@policy_app.command()
def explain(
    report: Annotated[Path, typer.Option(help="report as YAML or JSON, like the API body")],
    policy: Annotated[
        str | None,
        typer.Option(help="comma-separated packs; default: INCIDENTS_POLICY"),
    ] = None,
    now: Annotated[
        str | None, typer.Option(help="the moment to plan at, ISO 8601 with offset; default: now")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="print the API's obligations JSON")
    ] = False,
    directory: Annotated[
        Path | None, typer.Option(help="directory file; default: INCIDENTS_DIRECTORY or the demo")
    ] = None,
    trigger: Annotated[
        str,
        typer.Option(help="report, or personal_information_acquired for statutory clocks"),
    ] = "report",
    since: Annotated[
        str | None,
        typer.Option(help="with personal_information_acquired: when acquisition was confirmed"),
    ] = None,
) -> None:
    """The obligations a report would get: who, by when (local and UTC), why; the security
    case it would open, if any: owner, severity, who is paged, and the response-plan tasks; and
    the sunset review of its AI system it would open (who decides, whether it is halted at once)
    or the thresholds it counts towards, this report alone counted."""
    try:
        at = _moment(now, "--now") if now else datetime.now(UTC)
        chosen = _deployment(policy, directory)
        packs, people, holidays = list(chosen.packs), chosen.directory, chosen.holidays
        facts = _read_report(report).facts(at)
        moment = _moment(since, "--since") if since else None
        plan = plan_for(
            facts,
            packs,
            people,
            at,
            trigger=_trigger(trigger),
            since=moment,
            holidays=holidays,
        )
        # A case and a review open on the report itself; a later trigger acts on what is open.
        on_report = _trigger(trigger) == "report"
        case = case_for(facts, packs, people, at, holidays=holidays) if on_report else None
        # No database here: no earlier reports about the system are known, so none are counted.
        review, counting = review_for(facts, packs, people, at) if on_report else (None, [])
    except PolicyError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(code=1) from None
    if as_json:
        out = [obligation_json(o, id=None, status="planned") for o in plan.obligations]
        body = {
            "obligations": out,
            "opens": sorted(plan.opens),
            "case": case_json(case, packs, people, at, facts.department),
            "review": review_json(review, counting, packs, earlier_counted=False),
        }
        typer.echo(json.dumps(body, indent=2, ensure_ascii=False))
        return
    text = _text(plan, packs, facts, at, people)
    if on_report:
        text += "\n\n" + _case_text(case, packs, facts, at, people)
        text += "\n\n" + _review_text(review, counting, packs, facts, at, people)
    typer.echo(text)


def _text(plan: Plan, packs: list[Pack], facts: ReportFacts, at: datetime, _: Directory) -> str:
    zone = ZoneInfo(packs[0].timezone)
    lines = [
        f"Policy: {', '.join(p.id for p in packs)}",
        f"Report: {facts.kind.value} in {facts.department}"
        + (f", system {facts.ai_system!r}" if facts.ai_system else "")
        + (
            f", data: {', '.join(sorted(c.value for c in facts.data_categories))}"
            if facts.data_categories
            else ""
        ),
        f"Discovered {_local(facts.discovered_at, zone)}; planned at {_local(at, zone)}",
        f"{len(plan.obligations)} obligation(s):",
    ]
    for n, o in enumerate(plan.obligations, 1):
        local = ZoneInfo(o.timezone)
        lines += [
            "",
            f"{n}. {role_name(o.role)} [{o.role.value}]" + ("  LATE" if o.late else ""),
            "   to:   " + ", ".join(f"{p.name} <{p.email}>" for p in o.recipients),
            f"   due:  {_local(o.due_at, local)} ({o.timezone})",
            f"         {o.due_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC",
            f"   rule: {', '.join(o.rules)}",
            f"   interpretation: {o.interpretation or 'none: the source gives the time'}",
        ]
        if o.holidays:
            lines.append(f"   holidays: the deadline moved past {'; '.join(o.holidays)}")
        if o.action:
            lines += _wrapped("   action: ", o.action)
        lines += [f"   cites: {c}" for c in o.citations]
    if plan.opens:
        lines += ["", "Opens: " + ", ".join(sorted(plan.opens))]
    return "\n".join(lines)


def _case_text(
    case: PlannedCase | None,
    packs: list[Pack],
    facts: ReportFacts,
    at: datetime,
    people: Directory,
) -> str:
    """The security case in words: plan, owner, severity and why, the page's chain, the tasks."""
    if case is None:
        return "Security case: none (no rule this report matches opens one)"
    zone = ZoneInfo(case.page.timezone)
    lines = [
        f"Security case: opened by {', '.join(case.rules)}",
        f"   plan:     {'; '.join(case.plans)}",
        f"   owner:    {role_name(case.owner)} [{case.owner.value}]",
        f"   severity: {case.severity}"
        + (f", because {'; '.join(case.because)}" if case.because else " (the plan's default)"),
        "   page:     until someone acknowledges the case:",
    ]
    for step in page_steps(case.page, people, at, facts.department):
        when = "now" if step.number == 1 else f"from {_local(step.opens_at, zone)}"
        lines += [
            f"     {step.number}. {when}: {', '.join(role_name(r) for r in step.roles)} "
            f"[{', '.join(r.value for r in step.roles)}]",
            "        to:  " + ", ".join(f"{p.name} <{p.email}>" for p in step.recipients),
            f"        ack: by {_local(step.due_at, zone)} "
            f"({step.due_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC)",
        ]
    lines += [f"   cites: {c}" for c in case_citations(case, packs)]
    lines += ["", f"{len(case.tasks)} task(s) of the response plan:"]
    for n, t in enumerate(case.tasks, 1):
        task = response_task(packs, t.rules[0])
        local = ZoneInfo(t.timezone)
        required = task is None or task.required
        lines += [
            "",
            f"T{n}. {task.title if task else t.rules[0]}" + ("" if required else "  (optional)"),
            f"   owner: {role_name(t.role)} [{t.role.value}]",
            "   to:    " + ", ".join(f"{p.name} <{p.email}>" for p in t.recipients),
            f"   due:   {_local(t.due_at, local)} ({t.timezone})",
            f"          {t.due_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC",
            f"   task:  {t.rules[0]}",
        ]
        if t.holidays:
            lines.append(f"   holidays: the deadline moved past {'; '.join(t.holidays)}")
        if task is not None:
            lines += _wrapped("   action: ", task.action)
        lines += [f"   cites: {titled(c, packs)}" for c in t.citations]
    return "\n".join(lines)


def _review_text(
    review: PlannedReview | None,
    counting: list[Counting],
    packs: list[Pack],
    facts: ReportFacts,
    at: datetime,
    people: Directory,
) -> str:
    """The sunset review in words: who decides, by when, why, whether the system is halted at
    once, what a phase-out plan addresses; or the thresholds the report counts towards."""
    system = f"{facts.ai_system!r}" if facts.ai_system else "the system (the report names none)"
    if review is None and not counting:
        return (
            "Sunset review: none (no rule this report matches opens one, and it counts towards "
            "no pack's threshold)"
        )
    lines: list[str] = []
    if review is None:
        lines.append(f"Sunset review: none opened; the report counts towards a review of {system}:")
    else:
        how, _, ref = review.opened_by.partition(":")
        by = f"rule {ref}" if how == "rule" else f"the {ref} threshold"
        found = sunset_plan(packs, review.pack)
        lines += [
            f"Sunset review of {system}: opened by {by}",
            f"   decider: {role_name(review.decider)} [{review.decider.value}]",
            "   to:      "
            + ", ".join(
                f"{p.name} <{p.email}>"
                for p in people.resolve(review.decider, facts.department, at)
            ),
        ]
        if found:
            lines += _wrapped("   decide:  ", decide_words(*found))
        lines += _wrapped("   why:     ", review.reason)
        lines.append(
            "   halt:    yes: the system is halted as the review opens"
            if review.halt
            else "   halt:    not at once: the decision says whether the system is halted"
        )
        if found and found[1].plan_sections:
            lines += _wrapped(
                "   plan:    ", f"a phase-out plan addresses {plan_words(found[1].plan_sections)}"
            )
        lines += [f"   cites: {titled(c, packs)}" for c in review.citations]
        if counting:
            lines.append("   the report also counts towards:")
    for c in counting:
        found = sunset_plan(packs, c.pack)
        threshold = found[1].threshold if found else None
        if threshold is None:
            continue
        kinds = [k.plain for k in threshold.kinds]
        kinds_words = ", ".join(kinds[:-1]) + " or " + kinds[-1] if len(kinds) > 1 else kinds[0]
        lines += [
            f"   {c.pack}: {c.counted} of {c.count} within {window_words(threshold)} "
            f"(reports of {kinds_words} about one system)",
            f"      cites: {titled(threshold.citation, packs)}",
        ]
    if counting:
        lines += _wrapped("   note: ", EARLIER_REPORTS_NOTE)
    return "\n".join(lines)


def _wrapped(label: str, text: str) -> list[str]:
    """`text` after `label`, wrapped to the terminal's usual width, continued under itself."""
    indent = " " * len(label)
    lines: list[str] = []
    for n, paragraph in enumerate(text.split("\n\n")):
        lines += textwrap.wrap(
            paragraph,
            width=100,
            initial_indent=label if n == 0 else indent,
            subsequent_indent=indent,
        )
    return lines


def _local(moment: datetime, zone: ZoneInfo) -> str:
    return f"{moment.astimezone(zone):%a %Y-%m-%d %H:%M %Z}"


def _read_report(path: Path) -> ReportFile:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))  # YAML is a superset of JSON
    except FileNotFoundError:
        raise PolicyError(f"{path}: file not found") from None
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path}: not valid YAML or JSON: {exc}") from None
    try:
        return ReportFile.model_validate(raw)
    except ValidationError as exc:
        problems = "\n".join(
            f"  - {'.'.join(str(x) for x in e['loc']) or '(top level)'}: {e['msg']}"
            for e in exc.errors()
        )
        raise PolicyError(f"{path}: not a usable report:\n{problems}") from None


def _moment(text: str, option: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise PolicyError(f"{option}: {text!r} is not an ISO 8601 date-time") from None
    if moment.tzinfo is None:
        raise PolicyError(f"{option}: {text!r} needs a UTC offset, e.g. 2026-03-08T09:30:00-08:00")
    return moment


def _trigger(text: str) -> Trigger:
    if text == "report":
        return "report"
    if text == "personal_information_acquired":
        return "personal_information_acquired"
    raise PolicyError(f"--trigger: {text!r}; use report or personal_information_acquired")


def _deployment(policy: str | None, directory: Path | None) -> PolicySet:
    """The packs, directory and holidays the running service would use, with the options given."""
    from incidents.cli.common import settings as read_settings
    from infra.bootstrap import load_policy

    settings = read_settings()  # a setting at fault is named plainly, not with a traceback
    if policy:
        settings.policy = [p.strip() for p in policy.split(",") if p.strip()]
    if directory:
        settings.directory = directory
    return load_policy(settings)


if __name__ == "__main__":
    policy_app()
