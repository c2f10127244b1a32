"""Adapters: settings, database, event logs, the outbox relay, clocks, and the composition root."""
