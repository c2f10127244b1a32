"""Consumers: one module per consumer group, each a handler fed by the one runner."""
