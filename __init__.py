"""shoal: a durable-execution engine."""
