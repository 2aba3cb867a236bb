"""Adapters to PostgreSQL, MongoDB, Redis, SMTP and the payment gateway."""
