"""I/O and entry points: API, Redis adapters, Kafka producer, settings, CLI."""
