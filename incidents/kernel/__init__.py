"""The shared kernel every concept builds on: the event base class and envelope, ids, errors,
time, column types, the event log's tables, the unit of work, retries, and the vocabulary."""
