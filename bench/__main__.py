"""`python -m bench SCENARIO [options]`: the performance figures (`python -m bench all --help`)."""

from __future__ import annotations

import sys

SCENARIOS: dict[str, str] = {
    "hot": "durable bookings/s on one hot launch, against the FOR UPDATE baseline and the ceiling",
    "spread": "durable bookings/s over 1,000 launches, against bare aiohttp JSON and the ceiling",
    "list": "the cached public launch list, against a bare aiohttp JSON endpoint",
    "ws": "5,000 WebSocket watchers of one launch at 200 bookings/s: commit-to-receipt latency",
    "ws-memory": "memory of the platform per idle WebSocket connection",
    "actor-memory": "memory per idle launch actor with 100,000 active, and after passivation",
    "pg-tx": "PostgreSQL transactions per accepted booking under load",
    "nodes": "hot and spread bookings/s with --workers 1 and --workers 2, the ratio, the overbooking audit",
    "all": "every scenario above but nodes, then the table (under ten minutes; --workers 1,2: both)",
    "booking": "the earlier side-by-side booking benchmark (hot and many, aiohttp clients)",
}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help") or args[0] not in SCENARIOS:
        print("usage: python -m bench SCENARIO [options]\n\nscenarios:", file=sys.stderr)
        for name, what in SCENARIOS.items():
            print(f"  {name:<13} {what}", file=sys.stderr)
        return 0 if args and args[0] in ("-h", "--help") else 2
    if args[0] == "booking":
        from bench import booking

        return booking.main(args[1:])
    from bench import suite

    return suite.main(args)


if __name__ == "__main__":
    sys.exit(main())
