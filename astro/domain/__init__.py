"""Entities, value objects, status machines and policies; no I/O."""
