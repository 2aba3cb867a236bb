"""`python -m bench NAME [options]`: run one benchmark by name (`python -m bench booking --help`)."""

from __future__ import annotations

import sys
from collections.abc import Callable

BENCHMARKS: dict[str, str] = {
    "booking": "durable bookings per second on one hot launch and on many, against the baseline",
}


def _runner(name: str) -> Callable[[list[str] | None], int]:
    if name == "booking":
        from bench import booking

        return booking.main
    raise KeyError(name)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help") or args[0] not in BENCHMARKS:
        print("usage: python -m bench NAME [options]\n\nbenchmarks:", file=sys.stderr)
        for name, what in BENCHMARKS.items():
            print(f"  {name:<10} {what}", file=sys.stderr)
        return 0 if args and args[0] in ("-h", "--help") else 2
    return _runner(args[0])(args[1:])


if __name__ == "__main__":
    sys.exit(main())
