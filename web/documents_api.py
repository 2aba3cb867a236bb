"""The documents as PDF: a traveler's e-ticket and receipt, an agency's invoice (AgencyAPI, FinanceAPI)."""

from __future__ import annotations

from aiohttp import web

from astro.domain.users import Role
from astro.services.documents import Document, zone_names, zone_of
from web.http import authenticate, requires
from web.keys import DOCUMENTS
from web.openapi import choice, doc


def pdf_response(document: Document) -> web.Response:
    """The file as a download under its name (the name is made safe when the document is made)."""
    return web.Response(
        body=document.content,
        content_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{document.filename}"'},
    )


@doc(
    "The traveler's e-ticket and receipt of one of their bookings, as PDF (anyone else's is 404)",
    response=bytes,
    content_type="application/pdf",
    query={"tz": choice("IANA time zone the launch time is also shown in (default UTC)", zone_names())},
)
@requires(Role.TRAVELER)
async def ticket_pdf(request: web.Request) -> web.Response:
    zone = zone_of(request.query.get("tz"))
    principal = await authenticate(request)
    document = await request.app[DOCUMENTS].ticket(principal.user_id, request.match_info["id"], zone)
    return pdf_response(document)


@doc(
    "One of the agency's invoices as PDF (another agency's is 404)",
    response=bytes,
    content_type="application/pdf",
)
@requires(Role.AGENCY)
async def agency_invoice_pdf(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    return pdf_response(await request.app[DOCUMENTS].invoice(request.match_info["id"], principal.user_id))


@doc("An invoice as PDF", response=bytes, content_type="application/pdf")
@requires(Role.FINANCE)
async def finance_invoice_pdf(request: web.Request) -> web.Response:
    return pdf_response(await request.app[DOCUMENTS].invoice(request.match_info["id"]))


def setup(app: web.Application) -> None:
    """Registered before the JSON routes: /invoices/{id}.pdf must not be read as /invoices/{id}."""
    r = app.router
    r.add_get("/api/booking/bookings/{id}/ticket.pdf", ticket_pdf, allow_head=False)
    r.add_get("/api/agency/invoices/{id}.pdf", agency_invoice_pdf, allow_head=False)
    r.add_get("/api/finance/invoices/{id}.pdf", finance_invoice_pdf, allow_head=False)
