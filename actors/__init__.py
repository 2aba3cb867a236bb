"""The actor runtime and the actors (launches, notifications, sync, logs, metrics)."""
