"""AstroBookings: the domain, its use cases and its storage adapters (no HTTP in here)."""
