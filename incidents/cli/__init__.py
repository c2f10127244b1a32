"""The `incidents` command: serve, and the administrator's tools. One module per group."""

from __future__ import annotations

import typer

from incidents.cli import admin, run
from incidents.cli.audit import audit_app
from incidents.cli.events import dlq_app, kafka_app
from incidents.cli.mail import mail_app
from incidents.cli.people import tokens_app, users_app
from incidents.cli.policy import policy_app
from incidents.cli.systems import systems_app

app = typer.Typer(
    help="Report AI incidents; notify the people a policy names, on the policy's clock.",
    no_args_is_help=True,
    add_completion=False,
)
app.command()(run.serve)
app.command("web")(run.web_only)
app.command()(run.worker)
app.command()(admin.migrate)
app.command("confirm-acquisition")(admin.confirm_acquisition)
app.add_typer(policy_app, name="policy", help="Check, list and explain policy packs.")
app.add_typer(kafka_app, name="kafka")
app.add_typer(dlq_app, name="dlq")
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")
app.add_typer(audit_app, name="audit")
app.add_typer(systems_app, name="systems")
app.add_typer(mail_app, name="mail")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
