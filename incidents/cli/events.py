"""`incidents kafka init` and `incidents dlq`: the event log's topics and parked events."""

from __future__ import annotations

import asyncio

import typer

from incidents.cli.common import fail, settings, with_runtime

kafka_app = typer.Typer(help="Kafka topics, in production mode.", no_args_is_help=True)
dlq_app = typer.Typer(
    help="Events a consumer could not handle, parked with the reason.", no_args_is_help=True
)


@kafka_app.command("init")
def kafka_init(
    partitions: int = typer.Option(6, min=1, help="partitions of the events topic"),
    replication_factor: int = typer.Option(
        1, min=1, help="copies of every event; 3 on a cluster of three or more brokers"
    ),
) -> None:
    """Create the events topic and each consumer's dead-letter topic (safe to run twice)."""
    from infra.bootstrap import CONSUMER_NAMES
    from infra.eventlog.kafka import TopicSetupError, init_topics

    config = settings()
    if not config.kafka_bootstrap:
        fail("set INCIDENTS_KAFKA_BOOTSTRAP=host:port first")
    try:
        asyncio.run(
            init_topics(
                config.kafka_bootstrap,
                partitions=partitions,
                consumers=CONSUMER_NAMES,
                topic=config.kafka_topic,
                replication_factor=replication_factor,
            )
        )
    except TopicSetupError as exc:
        fail(str(exc))
    typer.echo(
        f"topics ready: {config.kafka_topic} and its dead-letter topics for {list(CONSUMER_NAMES)}"
    )


@dlq_app.command("list")
def dlq_list(consumer: str = typer.Option(None, help="only this consumer's")) -> None:
    """Show parked events: which consumer, which event, why, and whether already replayed."""
    parked = asyncio.run(with_runtime(lambda rt: rt.parked(consumer)))
    if not parked:
        typer.echo("nothing is parked")
        return
    for p in parked:
        state = "replayed" if p["replayed"] else "parked"
        typer.echo(
            f"{p['parked_at']:%Y-%m-%d %H:%M:%S}  {p['consumer']}  {state}  {p['type']}  "
            f"event {p['event_id']}  report {p['subject']}\n    after {p['attempts']} "
            f"attempt(s): {p['error']}"
        )


@dlq_app.command("replay")
def dlq_replay(consumer: str = typer.Argument(..., help="the consumer, e.g. notifier")) -> None:
    """Send a consumer's parked events back to it; one that fails again is parked again."""
    try:
        n = asyncio.run(with_runtime(lambda rt: rt.replay_parked(consumer)))
    except ValueError as exc:
        fail(str(exc))
    typer.echo(f"replayed {n} event(s) to {consumer}")
