"""FinanceAPI /api/finance, and the agency's own invoices in AgencyAPI."""

from __future__ import annotations

from dataclasses import asdict

from aiohttp import web

from astro.domain.errors import InvalidInput
from astro.domain.invoices import SHOWN_STATUSES
from astro.domain.payments import GatewayPayment
from astro.domain.reconciliation import GatewayUnanswered
from astro.domain.users import Role
from astro.schemas.finance import (
    AgencyReport,
    AgencyReportOne,
    AnnualReport,
    CardPaymentIn,
    InvoiceEnvelope,
    InvoiceOut,
    InvoicePage,
    InvoiceRequest,
    ReconciliationOut,
    TransferIn,
    UninvoicedPage,
)
from astro.services.finance import AnnualFigures, InvoiceView, annual_csv, totals
from astro.services.reconciliation import Mismatch, Report
from web.http import (
    authenticate,
    decode_cursor,
    encode_cursor,
    idempotent,
    page_of,
    query_date,
    query_limit,
    read_body,
    requires,
    respond,
)
from web.keys import CLOCK, FINANCE, RECONCILIATION
from web.openapi import PAGE, Param, choice, day, doc, text

STATUS = choice("invoices in this status", SHOWN_STATUSES)
YEAR = Param("YYYY (default: this year)", {"type": "integer", "minimum": 2000, "maximum": 2200})

PREFIX = "/api/finance"
finance_only = requires(Role.FINANCE)


def invoice_out(invoice: InvoiceView) -> InvoiceOut:
    """An invoice as the API shows it: its rate in percent and its open balance."""
    return InvoiceOut.model_validate(
        {**asdict(invoice), "rate_pct": invoice.rate_bp / 100, "balance_cents": invoice.balance_cents}
    )


def annual_out(report: AnnualFigures) -> AnnualReport:
    return AnnualReport.model_validate(
        {
            **asdict(report),
            "total_actual_cents": report.total_actual_cents,
            "total_pending_cents": report.total_pending_cents,
        }
    )


def _year(request: web.Request, default: int | None = None) -> int | None:
    raw = request.query.get("year")
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit() and 2000 <= int(raw) <= 2200):
        raise InvalidInput("year must be a year like 2027", {"fields": {"year": raw}})
    return int(raw)


async def _invoice_page(request: web.Request, agency_id: str | None) -> web.Response:
    status = request.query.get("status") or None
    if status is not None and status not in SHOWN_STATUSES:
        raise InvalidInput(
            f"status must be one of {', '.join(SHOWN_STATUSES)}", {"fields": {"status": status}}
        )
    limit = query_limit(request)
    rows = await request.app[FINANCE].invoices(
        agency_id=agency_id, status=status, year=_year(request), after=decode_cursor(request), limit=limit + 1
    )
    rows, cursor = page_of(rows, limit, lambda r: r.number)
    return respond(InvoicePage(items=[invoice_out(r) for r in rows], next_cursor=cursor))


@doc(
    "Invoices, by number",
    response=InvoicePage,
    query={"agency_id": text("one agency's invoices"), "status": STATUS, "year": YEAR, **PAGE},
)
@finance_only
async def list_invoices(request: web.Request) -> web.Response:
    return await _invoice_page(request, request.query.get("agency_id") or None)


@doc("One invoice with its payments", response=InvoiceEnvelope)
@finance_only
async def get_invoice(request: web.Request) -> web.Response:
    return respond(
        InvoiceEnvelope(invoice=invoice_out(await request.app[FINANCE].invoice(request.match_info["id"])))
    )


@doc(
    "Issue the invoice of a finished launch that has none (409 invoice_exists)",
    body=InvoiceRequest,
    response=InvoiceEnvelope,
    status=201,
    errors={404: "no such launch"},
)
@finance_only
async def create_invoice(request: web.Request) -> web.Response:
    data = await read_body(request, InvoiceRequest)
    invoice = await request.app[FINANCE].create_invoice(data.launch_id)
    return respond(InvoiceEnvelope(invoice=invoice_out(invoice)), status=201)


@doc(
    "Finished launches (successful or aborted) without their invoice, by launch id: what POST /invoices "
    "may issue on demand",
    response=UninvoicedPage,
    query=PAGE,
)
@finance_only
async def uninvoiced_launches(request: web.Request) -> web.Response:
    limit = query_limit(request)
    found = await request.app[FINANCE].uninvoiced_launches(decode_cursor(request), limit + 1)
    rows, cursor = page_of(found, limit, lambda r: r.launch_id)
    return respond(UninvoicedPage.model_validate({"items": [asdict(r) for r in rows], "next_cursor": cursor}))


@doc(
    "Record an offline transfer (Idempotency-Key honoured)",
    body=TransferIn,
    response=InvoiceEnvelope,
    status=201,
)
@finance_only
@idempotent
async def record_transfer(request: web.Request) -> web.Response:
    data = await read_body(request, TransferIn)
    invoice = await request.app[FINANCE].record_transfer(
        invoice_id=request.match_info["id"],
        amount_cents=data.amount_cents,
        reference=data.reference,
        user_id=(await authenticate(request)).user_id,
    )
    return respond(InvoiceEnvelope(invoice=invoice_out(invoice)), status=201)


@doc(
    "Every agency's figures for launches scheduled in [from, to)",
    response=AgencyReport,
    query={"from": day("first launch date"), "to": day("the day after the last")},
)
@finance_only
async def agencies_report(request: web.Request) -> web.Response:
    items = await request.app[FINANCE].agency_report(
        None, query_date(request, "from"), query_date(request, "to")
    )
    return respond(
        AgencyReport.model_validate({"items": [asdict(i) for i in items], "totals": totals(items)})
    )


@doc(
    "One agency's figures for launches scheduled in [from, to)",
    response=AgencyReportOne,
    query={"from": day("first launch date"), "to": day("the day after the last")},
)
@finance_only
async def agency_report(request: web.Request) -> web.Response:
    figures = await request.app[FINANCE].agency_figures(
        request.match_info["id"], query_date(request, "from"), query_date(request, "to")
    )
    return respond(AgencyReportOne.model_validate({"report": asdict(figures)}))


@doc(
    "Revenue per month: actual (paid) and pending (issued, unpaid), with totals; format=csv for CSV",
    response=AnnualReport,
    query={"year": YEAR, "format": choice("json (default) or csv", ("json", "csv"))},
    also=("text/csv",),
)
@finance_only
async def annual_report(request: web.Request) -> web.StreamResponse:
    fmt = request.query.get("format") or "json"
    if fmt not in ("json", "csv"):
        raise InvalidInput("format must be json or csv", {"fields": {"format": fmt}})
    year = _year(request, request.app[CLOCK].now().year)
    assert year is not None
    report = await request.app[FINANCE].annual(year)
    if fmt == "csv":
        return web.Response(
            text=annual_csv(report),
            content_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="revenue-{year}.csv"'},
        )
    return respond(annual_out(report))


def _mismatch(m: Mismatch) -> dict[str, object]:
    """One attempt that disagrees: our side, the gateway's, and the problems found."""
    attempt, booking, gateway = m.side.attempt, m.side.booking, m.gateway
    return {
        "attempt_id": attempt.id,
        "booking_id": attempt.booking_id,
        "traveler_id": attempt.traveler_id,
        "launch_id": attempt.launch_id,
        "amount_cents": attempt.amount_cents,
        "state": attempt.state.value,
        "created_at": attempt.created_at,
        "deadline": attempt.deadline,
        "booking": None
        if booking is None
        else {
            "id": booking.id,
            "status": booking.status,
            "total_cents": booking.total_cents,
            "refund_due_cents": booking.refund_due_cents,
            "refunded_cents": booking.refunds_paid_cents,
            "refund_pending_cents": booking.refunds_pending_cents,
        },
        "gateway": (
            {"answered": False, "error": gateway.error}
            if isinstance(gateway, GatewayUnanswered)
            else {"answered": True, **(_payment(gateway) if gateway is not None else {})}
        ),
        "problems": [{"code": p.code.value, "what": p.what, "action": p.action} for p in m.problems],
    }


def _payment(payment: GatewayPayment) -> dict[str, object]:
    return {
        "state": payment.state.value,
        "ref": payment.ref,
        "amount_cents": payment.amount_cents,
        "refunded_cents": payment.refunded_cents,
        "booking_id": payment.booking_id,
    }


def reconciliation_out(report: Report) -> ReconciliationOut:
    return ReconciliationOut.model_validate(
        {
            "from": report.start,
            "to": report.end,
            "checked": report.checked,
            "in_flight": report.in_flight,
            "items": [_mismatch(m) for m in report.mismatches],
            "next_cursor": encode_cursor(report.next_cursor) if report.next_cursor else None,
            "totals": {**asdict(report.totals), "difference_cents": report.totals.difference_cents},
            "states": {state.value: n for state, n in report.states.items()},
        }
    )


@doc(
    "Payment attempts created in [from, to) whose gateway payment and booking disagree (expected: none), "
    "and the period's totals. `limit` bounds the attempts checked per page: the gateway is asked once "
    "per attempt; follow next_cursor to check the whole period",
    response=ReconciliationOut,
    query={
        "from": day("first day (default: 30 days before `to`)"),
        "to": day("the day after the last (default: tomorrow, or 30 days after `from`); at most 366 days on"),
        **PAGE,
    },
    errors={422: "invalid_range: to is not after from, or the period is longer than 366 days"},
)
@finance_only
async def reconciliation(request: web.Request) -> web.Response:
    report = await request.app[RECONCILIATION].report(
        start=query_date(request, "from"),
        end=query_date(request, "to"),
        cursor=decode_cursor(request),
        limit=query_limit(request),
    )
    return respond(reconciliation_out(report))


# -- the agency's side ---------------------------------------------------------------------------


@doc(
    "The agency's invoices",
    response=InvoicePage,
    query={"status": STATUS, "year": YEAR, **PAGE},
)
@requires(Role.AGENCY)
async def agency_invoices(request: web.Request) -> web.Response:
    return await _invoice_page(request, (await authenticate(request)).user_id)


@doc(
    "Pay (part of) an invoice by card (Idempotency-Key honoured)",
    body=CardPaymentIn,
    response=InvoiceEnvelope,
    status=201,
    errors={402: "the card was declined"},
)
@requires(Role.AGENCY)
@idempotent
async def agency_pay(request: web.Request) -> web.Response:
    data = await read_body(request, CardPaymentIn)
    principal = await authenticate(request)
    invoice = await request.app[FINANCE].pay_by_card(
        agency_id=principal.user_id,
        invoice_id=request.match_info["id"],
        amount_cents=data.amount_cents,
        card_token=data.card_token,
        user_id=principal.user_id,
    )
    return respond(InvoiceEnvelope(invoice=invoice_out(invoice)), status=201)


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get(f"{PREFIX}/invoices", list_invoices, allow_head=False)
    r.add_post(f"{PREFIX}/invoices", create_invoice)
    r.add_get(f"{PREFIX}/invoices/{{id}}", get_invoice, allow_head=False)
    r.add_post(f"{PREFIX}/invoices/{{id}}/payments", record_transfer)
    r.add_get(f"{PREFIX}/reports/agencies", agencies_report, allow_head=False)
    r.add_get(f"{PREFIX}/reports/agencies/{{id}}", agency_report, allow_head=False)
    r.add_get(f"{PREFIX}/reports/annual", annual_report, allow_head=False)
    r.add_get(f"{PREFIX}/reconciliation", reconciliation, allow_head=False)
    r.add_get(f"{PREFIX}/launches/uninvoiced", uninvoiced_launches, allow_head=False)
    r.add_get("/api/agency/invoices", agency_invoices, allow_head=False)
    r.add_post("/api/agency/invoices/{id}/payments", agency_pay)
