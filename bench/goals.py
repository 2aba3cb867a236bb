"""The goals of the performance issue (DESIGN 11) and the one JSON line each scenario prints."""

from __future__ import annotations

from typing import Any, Final

from bench.common import machine, now_iso

GOALS: Final[dict[str, str]] = {
    "hot": "≥ 5x the FOR UPDATE baseline and ≥ 25 % of the ceiling; p99 ≤ 50 ms; 0 seats overbooked",
    "spread": "≥ 35 % of the bare aiohttp JSON endpoint's requests/s; 0 seats overbooked",
    "list": "≥ 60 % of the bare aiohttp JSON endpoint's requests/s",
    "ws": "p99 commit → receipt ≤ 100 ms; no watcher misses the final occupancy",
    "ws-memory": "≤ 12 KiB per idle WebSocket connection",
    "actor-memory": "≤ 2 KiB per idle launch actor (100,000 active); passivation returns it",
    "pg-tx": "≤ 0.03 PostgreSQL transactions per accepted booking",
    "nodes": "0 seats overbooked with 1 and 2 workers; the ratio 2 workers / 1 is reported, no goal",
    **{
        f"nodes-{load}-w{n}": "0 seats overbooked, stored counts equal to the bookings"
        for load in ("hot", "spread")
        for n in (1, 2)
    },
}

WHAT: Final[dict[str, str]] = {
    "hot": "durable bookings/s, one hot launch, 256 clients",
    "spread": "durable bookings/s over 1,000 launches",
    "list": "public launch list (cached), requests/s",
    "ws": "5,000 watchers of one launch at 200 bookings/s: p99 commit → receipt",
    "ws-memory": "memory per idle WebSocket connection",
    "actor-memory": "memory per idle launch actor",
    "pg-tx": "PostgreSQL transactions per accepted booking",
    "nodes": "hot bookings/s with --workers 2 / --workers 1 (spread too), with the overbooking audit",
    "nodes-hot-w1": "durable bookings/s, one hot launch, --workers 1",
    "nodes-hot-w2": "durable bookings/s, one hot launch, --workers 2",
    "nodes-spread-w1": "durable bookings/s over 1,000 launches, --workers 1",
    "nodes-spread-w2": "durable bookings/s over 1,000 launches, --workers 2",
}


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def line(
    scenario: str,
    *,
    figure: float | None,
    unit: str,
    met: bool,
    checks: dict[str, Any],
    reference: float | None = None,
    reference_is: str | None = None,
    ratio_to_reference: float | None = None,
    gap: str | None = None,
    generator: str | None = None,
    details: dict[str, Any] | None = None,
    ceiling: dict[str, Any] | None = None,
    ratio_to_ceiling: float | None = None,
) -> dict[str, Any]:
    """The figure, its reference in the same run, the ratio, the goal, met, the correctness checks; for a
    booking figure also the ceiling server measured in the same run on the same load, and the ratio."""
    return {
        "scenario": scenario,
        "what": WHAT[scenario],
        "figure": figure,
        "unit": unit,
        "reference": reference,
        "reference_is": reference_is,
        "ratio": ratio_to_reference,
        "ceiling": ceiling,
        "ratio_to_ceiling": ratio_to_ceiling,
        "goal": GOALS[scenario],
        "met": met,
        "gap": None if met else gap,
        "checks": checks,
        "generator": generator,
        "date": now_iso(),
        "machine": machine(),
        "details": details or {},
    }


def failed(scenario: str, error: BaseException) -> dict[str, Any]:
    """The line of a scenario that could not be measured."""
    out = line(
        scenario,
        figure=None,
        unit="",
        met=False,
        checks={},
        gap=f"not measured: {type(error).__name__}: {error}"[:600],
    )
    out["error"] = out["gap"]
    return out


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".") if abs(value) < 10 else f"{value:,.1f}"
    return str(value)


def ceiling_summary(figures: dict[str, Any]) -> dict[str, Any]:
    """What a line shows of the ceiling's run: bookings/s and latency (the whole run is in details)."""
    return {k: figures.get(k) for k in ("per_s", "p50_ms", "p99_ms", "generator")}


def _ceiling_cell(out: dict[str, Any]) -> str:
    found = out.get("ceiling")
    if not found or found.get("per_s") is None:
        return "-"
    return (
        f"{_cell(found['per_s'])} bookings/s (p50 {_cell(found['p50_ms'])}, p99 {_cell(found['p99_ms'])} ms)"
    )


def table(lines: list[dict[str, Any]]) -> str:
    """The Markdown table of the README: one row per figure (a row per worker setting when several)."""
    settings = {out["workers"] for out in lines if out.get("workers") is not None}
    rows = [
        "| figure | measured | reference (same run) | ratio | ceiling (same run) | ratio to ceiling "
        "| goal | met | correctness |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for out in lines:
        checks = ", ".join(f"{k} {_cell(v)}" for k, v in out["checks"].items()) or "-"
        measured = f"{_cell(out['figure'])} {out['unit']}".strip()
        reference = "-"
        if out.get("reference") is not None:
            reference = f"{_cell(out['reference'])} ({out['reference_is']})"
        met = "yes" if out["met"] else f"**no**: {out['gap']}"
        what = out["what"]
        if len(settings) > 1 and out.get("workers") is not None:
            what += f" (--workers {out['workers']})"
        rows.append(
            f"| {what} | {measured} | {reference} | {_cell(out['ratio'])} | {_ceiling_cell(out)} "
            f"| {_cell(out.get('ratio_to_ceiling'))} | {out['goal']} | {met} | {checks} |"
        )
    return "\n".join(rows)
