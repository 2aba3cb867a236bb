"""Use cases per bounded context."""
