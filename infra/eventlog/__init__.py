"""Where events travel: the database log (embedded), or Kafka through the outbox relay; the
commit signal that wakes readers in other processes; parked events (dead letters)."""
