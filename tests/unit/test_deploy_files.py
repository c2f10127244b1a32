"""The deployment files (infra/deploy/) against the code they deploy.

Docker is not needed: these read the compose file, the .env template and the Dockerfile, and
check what a deployer relies on: every command the stack runs exists and accepts its options,
every INCIDENTS_* variable is a real setting and the values the containers get are accepted,
the services find each other by the names and ports they use, the roles wait for the schema and
the topics, and every instance signs with one shared key.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import typer
import yaml
from typer.testing import CliRunner

from incidents.cli import app
from infra.db import make_engine
from infra.eventlog.kafka import PARTITIONS
from infra.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "infra" / "deploy"
COMPOSE_TEXT = (DEPLOY / "compose.yaml").read_text(encoding="utf-8")
COMPOSE: dict[str, Any] = yaml.safe_load(COMPOSE_TEXT)
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
DOCKERFILE = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
ENV_EXAMPLE_TEXT = (DEPLOY / ".env.example").read_text(encoding="utf-8")
# The services that run this repository's image (the `x-incidents` block).
APP_SERVICES = sorted(
    name
    for name, service in SERVICES.items()
    if service.get("build", {}).get("dockerfile") == "infra/deploy/Dockerfile"
)
SETTING_VARIABLES = {f"INCIDENTS_{name.upper()}" for name in Settings.model_fields}
VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")

runner = CliRunner()


# --- helpers: what Compose itself does with the files --------------------------------------------


def read_env_file(text: str) -> dict[str, str]:
    """KEY=VALUE lines of a Compose .env file (comments and blank lines skipped, quotes removed)."""
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"not KEY=VALUE: {line!r}"
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


class MissingValue(Exception):
    pass


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error} and $$ substitution."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(m: re.Match[str]) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3)
        current = env.get(name)
        empty = current is None or (op is not None and op.startswith(":") and current == "")
        if op in (":-", "-"):
            return arg if empty else current  # type: ignore[return-value]
        if op in (":?", "?"):
            if empty:
                raise MissingValue(f"{name}: {arg}")
            return current  # type: ignore[return-value]
        return current or ""

    return VARIABLE.sub(one, value.replace("$$", "\0")).replace("\0", "$")


def example_env(**overrides: str) -> dict[str, str]:
    """The .env a deployer makes from the template: the two secrets filled in."""
    env = read_env_file(ENV_EXAMPLE_TEXT)
    env.update(INCIDENTS_SECRET_KEY="k3y-for-every-instance", POSTGRES_PASSWORD="pw0123456789")
    env.update(overrides)
    return env


def container_env(service: str, env: dict[str, str] | None = None) -> dict[str, str]:
    return {
        k: str(v)
        for k, v in interpolate(SERVICES[service]["environment"], env or example_env()).items()
    }


def is_group(command: Any) -> bool:
    return hasattr(command, "commands")


def cli_command(path: list[str]) -> tuple[Any, list[str], list[str]]:
    """The (click) command an argv reaches in the `incidents` app: (command, its path, its args).

    Typer vendors its own click, so the command objects are used by what they have, not by type.
    """
    command: Any = typer.main.get_command(app)
    used: list[str] = []
    args = list(path)
    while is_group(command) and args and not args[0].startswith("-"):
        sub = command.commands.get(args[0])
        assert sub is not None, f"`incidents {' '.join(used + args[:1])}` is not a command"
        command = sub
        used.append(args.pop(0))
    return command, used, args


def dockerfile_json(instruction: str) -> list[str]:
    m = re.search(rf"^{instruction}\s+(\[.*\])\s*$", DOCKERFILE, re.MULTILINE)
    assert m, f"no exec-form {instruction} in the Dockerfile"
    return json.loads(m.group(1))  # type: ignore[no-any-return]


def commands_of_the_stack() -> list[tuple[str, list[str]]]:
    runs = [
        (f"service {name}", [str(a) for a in SERVICES[name]["command"]]) for name in APP_SERVICES
    ]
    runs.append(("the image's default CMD", dockerfile_json("CMD")))
    return [(who, interpolate(argv, example_env())) for who, argv in runs]


# --- the stack -----------------------------------------------------------------------------------


def test_the_stack_has_every_part() -> None:
    assert set(SERVICES) >= {
        "postgres",
        "kafka",
        "mailcatcher",
        "migrate",
        "kafka-init",
        "web",
        "worker",
        "lb",
    }
    assert set(APP_SERVICES) == {"migrate", "kafka-init", "web", "worker"}
    assert SERVICES["postgres"]["image"].startswith("postgres:16")
    assert SERVICES["kafka"]["image"].startswith("apache/kafka:3.9")
    assert SERVICES["mailcatcher"]["image"].startswith("axllent/mailpit")
    kafka = SERVICES["kafka"]["environment"]
    assert set(kafka["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}  # KRaft
    # One node: Kafka cannot keep consumer offsets with its default replication factor of 3.
    assert int(kafka["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"]) == 1
    for role in ("web", "worker"):
        replicas = interpolate(SERVICES[role]["deploy"]["replicas"], example_env())
        assert int(replicas) == 2, role


@pytest.mark.parametrize(("who", "argv"), commands_of_the_stack(), ids=lambda x: str(x))
def test_every_command_the_stack_runs_exists_and_accepts_its_options(
    who: str, argv: list[str]
) -> None:
    command, path, args = cli_command(argv)
    assert not is_group(command), f"{who}: `incidents {' '.join(argv)}` is a group"
    # Parse the arguments exactly as the command will in the container (unknown options fail).
    with command.make_context(f"incidents {' '.join(path)}", list(args)) as ctx:
        assert ctx.command is command
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, f"{who}: {result.output}"


def test_the_subcommands_a_deployment_needs_exist() -> None:
    for argv in (
        ["migrate"],
        ["kafka", "init"],
        ["web"],
        ["worker"],
        ["serve"],
        ["dlq", "list"],
        ["dlq", "replay"],
    ):
        result = runner.invoke(app, [*argv, "--help"])
        assert result.exit_code == 0, f"incidents {' '.join(argv)}: {result.output}"
    worker, _, _ = cli_command(["worker"])
    worker.make_context("incidents worker", ["--consumer", "notifier", "--consumer", "router"])
    worker.make_context("incidents worker", ["--no-clocks"])


def test_the_image_runs_the_incidents_command_as_a_non_root_user() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "scripts"
    ]
    assert dockerfile_json("ENTRYPOINT") == ["incidents"]
    assert "incidents" in scripts
    assert dockerfile_json("CMD") == ["serve", "--host", "0.0.0.0"]
    users = re.findall(r"^USER\s+(\S+)", DOCKERFILE, re.MULTILINE)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert re.search(r"^ENV\b[\s\S]*?INCIDENTS_HOME=/var/lib/incidents", DOCKERFILE, re.MULTILINE)
    assert re.search(r'^VOLUME\s+\["/var/lib/incidents"\]', DOCKERFILE, re.MULTILINE)
    assert not re.search(r"pip install[^\n]*\[test\]", DOCKERFILE), "no test dependencies"


def test_the_image_holds_the_whole_package() -> None:
    """Every package pyproject.toml installs is copied in, and .dockerignore keeps none out."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    packages = [
        p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    ]
    copied = {
        src
        for line in re.findall(r"^COPY\s+(?!--from)(.+)$", DOCKERFILE, re.MULTILINE)
        for src in shlex.split(line)[:-1]
    }
    needed = {*packages, "pyproject.toml", pyproject["project"]["readme"]}
    assert needed <= copied, needed - copied
    ignored = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for path in needed:
        assert path not in ignored and (ROOT / path).exists(), path


# --- settings ------------------------------------------------------------------------------------


def test_every_incidents_variable_is_a_real_setting() -> None:
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    for name, text in [
        ("compose.yaml", COMPOSE_TEXT),
        (".env.example", ENV_EXAMPLE_TEXT),
        ("Dockerfile", DOCKERFILE),
        ("README.md", readme),
    ]:
        used = set(re.findall(r"\bINCIDENTS_[A-Z_]+[A-Z]\b", text))
        assert used, name
        assert used <= SETTING_VARIABLES, (
            f"{name} names no such setting: {used - SETTING_VARIABLES}"
        )


def test_the_env_template_lists_every_variable_the_compose_file_reads() -> None:
    read = {m.group(1) for m in VARIABLE.finditer(COMPOSE_TEXT.replace("$$", ""))}
    listed = set(read_env_file(ENV_EXAMPLE_TEXT))
    assert read == listed, f"read but not listed: {read - listed}; listed, unused: {listed - read}"


def test_the_settings_the_containers_get_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    from infra.bootstrap import load_policy

    for service in APP_SERVICES:
        env = container_env(service)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        settings = Settings()
        assert settings.kafka_bootstrap and settings.smtp_url and settings.database_url
        assert settings.secret_key is not None
        assert settings.database_url.get_secret_value().startswith("postgresql+asyncpg://")
        # The directory is the file mounted at INCIDENTS_DIRECTORY: load the host side of it.
        mounts = interpolate(SERVICES[service]["volumes"], example_env())
        host = {m.split(":")[1]: m.split(":")[0] for m in mounts}[str(settings.directory)]
        settings = settings.model_copy(update={"directory": (DEPLOY / host).resolve()})
        load_policy(settings)


def test_one_secret_key_for_every_instance() -> None:
    raw = {SERVICES[s]["environment"]["INCIDENTS_SECRET_KEY"] for s in APP_SERVICES}
    assert len(raw) == 1
    (expression,) = raw
    m = VARIABLE.fullmatch(expression)
    assert m and m.group(1) == "INCIDENTS_SECRET_KEY" and m.group(2) == ":?", (
        "required, with no default: a default or a per-container key breaks links across instances"
    )
    assert read_env_file(ENV_EXAMPLE_TEXT)["INCIDENTS_SECRET_KEY"] == "", "ship no usable key"
    with pytest.raises(MissingValue):
        container_env("web", example_env(INCIDENTS_SECRET_KEY=""))
    keys = {container_env(s)["INCIDENTS_SECRET_KEY"] for s in APP_SERVICES}
    assert keys == {"k3y-for-every-instance"}


# --- how the parts find and wait for each other ---------------------------------------------------


def test_the_services_reach_each_other_by_name_and_port() -> None:
    env = container_env("web")
    db = urlsplit(env["INCIDENTS_DATABASE_URL"])
    assert (db.hostname, db.port) == ("postgres", 5432)
    pg = interpolate(SERVICES["postgres"]["environment"], example_env())
    assert (db.username, db.password, db.path.lstrip("/")) == (
        pg["POSTGRES_USER"],
        pg["POSTGRES_PASSWORD"],
        pg["POSTGRES_DB"],
    )
    kafka = SERVICES["kafka"]["environment"]
    assert f"PLAINTEXT://{env['INCIDENTS_KAFKA_BOOTSTRAP']}" in kafka[
        "KAFKA_ADVERTISED_LISTENERS"
    ].split(",")
    smtp = urlsplit(env["INCIDENTS_SMTP_URL"])
    assert (smtp.scheme, smtp.hostname, smtp.port) == ("smtp", "mailcatcher", 1025)  # Mailpit's
    assert any(str(p).endswith(":8025") for p in SERVICES["mailcatcher"]["ports"])
    caddyfile = (DEPLOY / "Caddyfile").read_text(encoding="utf-8")
    web_port = SERVICES["web"]["command"][SERVICES["web"]["command"].index("--port") + 1]
    assert re.search(r"^\s*name web\s*$", caddyfile, re.MULTILINE)
    assert re.search(rf"^\s*port {web_port}\s*$", caddyfile, re.MULTILINE)
    assert "./Caddyfile:/etc/caddy/Caddyfile:ro" in SERVICES["lb"]["volumes"]


def test_the_roles_wait_for_the_schema_and_the_topics() -> None:
    # Web instances write only to the database: they take reports while Kafka is still starting.
    jobs = {"web": ("migrate",), "worker": ("migrate", "kafka-init")}
    for role, needed in jobs.items():
        needs = SERVICES[role]["depends_on"]
        assert set(needs) - {"mailcatcher"} == set(needed), role
        for job in needed:
            assert needs[job]["condition"] == "service_completed_successfully", (role, job)
    assert SERVICES["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert SERVICES["kafka-init"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    for job in ("migrate", "kafka-init"):
        assert SERVICES[job]["restart"] == "no"
    for dependency in ("postgres", "kafka"):
        assert SERVICES[dependency]["healthcheck"]["test"], dependency


def test_the_http_healthcheck_is_where_http_is_served() -> None:
    m = re.search(r"^HEALTHCHECK\b[\s\S]*?http://127\.0\.0\.1:(\d+)/healthz", DOCKERFILE, re.M)
    assert m, "the image checks /healthz"
    command = SERVICES["web"]["command"]
    assert command[command.index("--port") + 1] == m.group(1)
    assert "healthcheck" not in SERVICES["web"], "web keeps the image's healthcheck"
    for service in APP_SERVICES:
        if SERVICES[service]["command"][0] not in ("web", "serve"):
            assert SERVICES[service]["healthcheck"] == {"disable": True}, service


def test_default_size_fits_partitions_and_connections() -> None:
    env = example_env()
    partitions = int(env["KAFKA_PARTITIONS"])
    assert partitions == PARTITIONS
    assert int(env["WORKER_REPLICAS"]) <= partitions, "workers beyond the partitions stay idle"
    instances = int(env["WEB_REPLICAS"]) + int(env["WORKER_REPLICAS"]) + 1  # + one-off commands
    engine = make_engine(container_env("web")["INCIDENTS_DATABASE_URL"])  # connects to nothing
    pool = engine.sync_engine.pool
    per_instance = pool.size() + pool._max_overflow  # type: ignore[attr-defined]
    assert per_instance == 20, "the README's sizing says 20 connections per instance"
    assert int(env["POSTGRES_MAX_CONNECTIONS"]) >= instances * per_instance
    command = interpolate(SERVICES["postgres"]["command"], env)
    assert f"max_connections={env['POSTGRES_MAX_CONNECTIONS']}" in command
