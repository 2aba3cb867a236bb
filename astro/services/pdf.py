"""The PDF layouts of an e-ticket and receipt and of an invoice (fpdf2; the QR code drawn by segno).

Pure functions of their facts: no I/O, run in a worker thread by astro.services.documents."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final
from zoneinfo import ZoneInfo

import segno
from fpdf import FPDF
from fpdf.enums import XPos, YPos

from astro.domain.launches import DESTINATION_LABELS, Range

if TYPE_CHECKING:
    from astro.services.documents import InvoiceFacts, MoneyMove, Party, TicketFacts

INK: Final = (20, 24, 40)
MUTED: Final = (95, 100, 115)
ACCENT: Final = (40, 70, 160)
LINE: Final = (205, 208, 218)
# The built-in PDF fonts cover Windows-1252 only; a character outside it is written without its accent
# ("Ł" -> "L") or, failing that, as "?". Names in other scripts would need an embedded Unicode font.
ENCODING: Final = "windows-1252"
_FALLBACK: Final = {"Ł": "L", "ł": "l", "Đ": "D", "đ": "d", "Ħ": "H", "ħ": "h", "\u0131": "i", "ø": "o"}
CANCEL_REASONS: Final = {
    "traveler": "cancelled by the traveler",
    "launch_aborted": "the launch was aborted",
    "launch_failed": "the launch failed",
}
MOVE_STATUS: Final = {"done": "paid", "pending": "under way", "failed": "failed, being retried"}


def text(value: object) -> str:
    """Text the built-in fonts can show (see ENCODING)."""
    out = []
    for ch in str(value):
        try:
            ch.encode(ENCODING)
            out.append(ch)
            continue
        except UnicodeEncodeError:
            pass
        plain = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
        try:
            plain.encode(ENCODING)
            out.append(plain or "?")
        except UnicodeEncodeError:
            out.append(_FALLBACK.get(ch, "?"))
    return "".join(out)


def money(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}${cents // 100:,}.{cents % 100:02d}"


def utc(moment: datetime) -> str:
    return moment.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%d %H:%M UTC")


def local(moment: datetime, zone: ZoneInfo) -> str:
    """'Tuesday 2 March 2027, 15:00 CET (Europe/Berlin, UTC+01:00)'."""
    at = moment.astimezone(zone)
    offset = at.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    hours, mins = divmod(abs(minutes), 60)
    return (
        f"{at.strftime('%A')} {at.day} {at.strftime('%B %Y, %H:%M')} {at.tzname()} "
        f"({zone.key}, UTC{sign}{hours:02d}:{mins:02d})"
    )


def destination(code: str) -> str:
    try:
        return DESTINATION_LABELS[Range(code)]
    except ValueError:
        return code


class _Page(FPDF):
    """A4 with the platform's header line and page numbers in the footer."""

    def __init__(self, title: str, stamp: str) -> None:
        super().__init__(format="A4", unit="mm")
        self.core_fonts_encoding = ENCODING
        self.doc_title = title
        self.stamp = stamp
        self.set_margins(18, 16, 18)
        self.set_auto_page_break(True, margin=18)
        self.set_title(title)
        self.set_author("AstroBookings")
        self.set_creator("AstroBookings")
        self.alias_nb_pages()

    def footer(self) -> None:
        self.set_y(-13)
        self.set_font("helvetica", "", 8)
        self.set_text_color(*MUTED)
        self.cell(0, 5, text(f"{self.doc_title} - {self.stamp} - page {self.page_no()} of {{nb}}"), align="C")

    # -- building blocks -------------------------------------------------------------------------

    def heading(self, title: str, subtitle: str) -> None:
        self.set_text_color(*ACCENT)
        self.set_font("helvetica", "B", 10)
        self.cell(0, 5, "ASTROBOOKINGS", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_text_color(*INK)
        self.set_font("helvetica", "B", 20)
        self.cell(0, 10, text(title), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_font("helvetica", "", 10)
        self.set_text_color(*MUTED)
        self.multi_cell(0, 5, text(subtitle), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.rule()

    def rule(self) -> None:
        self.ln(2)
        self.set_draw_color(*LINE)
        self.line(self.l_margin, self.get_y(), self.w - self.r_margin, self.get_y())
        self.ln(3)

    def section(self, title: str) -> None:
        self.ln(2)
        self.set_font("helvetica", "B", 12)
        self.set_text_color(*INK)
        self.cell(0, 7, text(title), new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def facts(self, rows: list[tuple[str, str]], width: float | None = None, label: float = 42) -> None:
        """Label / value lines; a long value wraps under itself."""
        width = width or (self.w - self.l_margin - self.r_margin)
        left = self.get_x()
        for name, value in rows:
            self.set_x(left)
            self.set_font("helvetica", "", 9)
            self.set_text_color(*MUTED)
            self.cell(label, 5.5, text(name))
            self.set_font("helvetica", "", 10)
            self.set_text_color(*INK)
            self.multi_cell(width - label, 5.5, text(value), new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def grid(self, head: tuple[str, ...], rows: Sequence[tuple[str, ...]], widths: tuple[int, ...]) -> None:
        right = tuple("RIGHT" if h.lower() in ("amount", "total", "price") else "LEFT" for h in head)
        self.set_font("helvetica", "", 9.5)
        self.set_text_color(*INK)
        self.set_draw_color(*LINE)
        with self.table(
            col_widths=widths,
            text_align=right,
            line_height=6,
            borders_layout="HORIZONTAL_LINES",
            first_row_as_headings=True,
            padding=1.2,
        ) as table:
            header = table.row()
            for cell in head:
                header.cell(text(cell))
            for values in rows:
                row = table.row()
                for cell in values:
                    row.cell(text(cell))
        self.ln(2)

    def qr(self, data: str, x: float, y: float, size: float) -> None:
        """A QR code of `data`, dark modules drawn as filled rectangles (one per run of a row)."""
        code = segno.make_qr(data, error="m")
        rows = [list(r) for r in code.matrix_iter(scale=1, border=0)]
        module = size / len(rows)
        self.set_fill_color(0, 0, 0)
        for j, row in enumerate(rows):
            i = 0
            while i < len(row):
                if not row[i]:
                    i += 1
                    continue
                start = i
                while i < len(row) and row[i]:
                    i += 1
                self.rect(x + start * module, y + j * module, (i - start) * module, module, style="F")


# -- the e-ticket and receipt --------------------------------------------------------------------


def ticket(facts: TicketFacts, zone: ZoneInfo, now: datetime) -> bytes:
    """The traveler's e-ticket (launch, date in their zone and UTC, passengers, seats, a QR code of the
    reference) and receipt (amount paid, refunds)."""
    pdf = _Page(f"E-ticket {facts.booking_id}", f"issued {utc(now)}")
    pdf.add_page()
    cancelled = facts.status == "cancelled"
    pdf.heading(
        "E-ticket and receipt",
        f"{facts.mission} to {destination(facts.destination)}, operated by {facts.agency}",
    )
    top = pdf.get_y()
    size = 38.0
    pdf.qr(facts.booking_id, pdf.w - pdf.r_margin - size, top, size)
    pdf.set_xy(pdf.w - pdf.r_margin - size, top + size + 1)
    pdf.set_font("helvetica", "", 7.5)
    pdf.set_text_color(*MUTED)
    pdf.cell(size, 4, "booking reference", align="C")
    pdf.set_xy(pdf.l_margin, top)
    pdf.set_font("helvetica", "", 9)
    pdf.cell(0, 5, "Booking reference", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("courier", "B", 16)
    pdf.set_text_color(*INK)
    pdf.cell(0, 9, text(facts.booking_id), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    if cancelled:
        pdf.set_font("helvetica", "B", 11)
        pdf.set_text_color(170, 30, 30)
        pdf.cell(0, 7, "CANCELLED - not valid for boarding", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(1)
    width = pdf.w - pdf.l_margin - pdf.r_margin - size - 6
    pdf.facts(
        [
            ("Launch", facts.mission),
            ("Agency", facts.agency),
            ("Rocket", facts.rocket),
            ("Destination", destination(facts.destination)),
            ("Launch time", local(facts.scheduled_at, zone)),
            ("In UTC", utc(facts.scheduled_at)),
            ("Launch status", facts.launch_status),
            ("Traveler", f"{facts.traveler} <{facts.traveler_email}>"),
        ],
        width=width,
        label=30,
    )
    pdf.set_y(max(pdf.get_y(), top + size + 6))
    pdf.section(f"Passengers ({facts.seats} {'seat' if facts.seats == 1 else 'seats'})")
    pdf.grid(
        ("Seat", "Passenger", "Born"),
        [(str(i), p.name, p.birth_date.isoformat()) for i, p in enumerate(facts.passengers, 1)],
        (14, 110, 50),
    )
    pdf.section("Receipt")
    lines = [(f"{facts.seats} x seat", money(facts.price_cents), money(facts.total_cents))]
    pdf.grid(("Item", "Price", "Total"), lines, (110, 32, 32))
    paid = [("Booked", utc(facts.booked_at))]
    paid.append(("Amount paid", f"{money(facts.total_cents)} by card{_move(facts.charge)}"))
    if cancelled:
        why = CANCEL_REASONS.get(facts.cancel_reason or "", facts.cancel_reason or "")
        when = f" on {utc(facts.cancelled_at)}" if facts.cancelled_at else ""
        paid.append(("Cancelled", f"{why}{when}"))
        pct = f" ({facts.refund_pct} % of the total)" if facts.refund_pct is not None else ""
        paid.append(("Refund", f"{money(facts.refund_cents or 0)}{pct}{_move(facts.refund)}"))
        paid.append(("Net paid", money(facts.total_cents - (facts.refund_cents or 0))))
    else:
        paid.append(("Refunds", "none"))
    pdf.facts(paid)
    pdf.ln(4)
    pdf.set_font("helvetica", "", 8.5)
    pdf.set_text_color(*MUTED)
    pdf.multi_cell(
        0,
        4.5,
        text(
            "Show this ticket (printed or on screen) with an identity document of each passenger. "
            "Times are given in your time zone and in UTC. Amounts are in US dollars. "
            "Cancelling refunds 90 % up to 365 days before the launch, 70 % up to 90 days before, "
            "100 % if the launch was delayed after you booked or is aborted or fails."
        ),
    )
    return bytes(pdf.output())


def _move(move: MoneyMove | None) -> str:
    if move is None:
        return ""
    return f", {MOVE_STATUS.get(move.status, move.status)} ({utc(move.at)})"


# -- the invoice ---------------------------------------------------------------------------------


def invoice(facts: InvoiceFacts, now: datetime) -> bytes:
    """The invoice to an agency: both parties' legal and tax data, its line, totals, payments, due date."""
    inv = facts.invoice
    pdf = _Page(f"Invoice {inv.number}", f"printed {utc(now)}")
    pdf.add_page()
    issued, due = inv.issued_at.date().isoformat(), inv.due_at.date().isoformat()
    pdf.heading(f"Invoice {inv.number}", f"Issued {issued} - due {due}")
    half = (pdf.w - pdf.l_margin - pdf.r_margin - 8) / 2
    top = pdf.get_y()
    pdf.set_xy(pdf.l_margin, top)
    _party(pdf, "From", facts.seller, half)
    left_end = pdf.get_y()
    pdf.set_xy(pdf.l_margin + half + 8, top)
    _party(pdf, "Bill to", facts.buyer, half)
    pdf.set_xy(pdf.l_margin, max(left_end, pdf.get_y()) + 2)
    pdf.rule()
    pdf.facts(
        [
            ("Invoice number", inv.number),
            ("Issue date", inv.issued_at.date().isoformat()),
            ("Due date", inv.due_at.date().isoformat()),
            ("Status", inv.status.replace("_", " ")),
            ("Launch", f"{inv.mission} ({inv.launch_id})"),
            ("Launch date", utc(facts.launch_at)),
            ("Destination", destination(facts.destination)),
        ]
    )
    pdf.section("Lines")
    if inv.kind == "commission":
        what = (
            f"Commission on launch {inv.mission}: {inv.rate_bp / 100:g} % of its net revenue "
            f"{money(inv.net_revenue_cents)} (bookings less refunds)"
        )
    else:
        what = f"Flat fee for the aborted launch {inv.mission}"
    pdf.grid(("Description", "Amount"), [(what, money(inv.amount_cents))], (140, 34))
    totals = [
        ("Total", money(inv.amount_cents)),
        ("Paid", money(inv.paid_cents)),
        ("Balance due", money(inv.balance_cents)),
    ]
    if inv.pending_cents:
        totals.insert(2, ("Card payment under way", money(inv.pending_cents)))
    pdf.facts(totals)
    pdf.section("Payments")
    payments = inv.payments or ()
    if payments:
        pdf.grid(
            ("Date", "Method", "Reference", "Status", "Amount"),
            [
                (
                    utc(p.paid_at or p.created_at),
                    p.method,
                    p.reference or p.gateway_ref or "",
                    MOVE_STATUS.get(p.status, p.status),
                    money(p.amount_cents),
                )
                for p in payments
            ],
            (40, 22, 58, 26, 28),
        )
    else:
        pdf.set_font("helvetica", "", 10)
        pdf.cell(0, 6, "No payments yet.", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(3)
    pdf.set_font("helvetica", "", 8.5)
    pdf.set_text_color(*MUTED)
    pdf.multi_cell(
        0,
        4.5,
        text(
            f"Amounts in US dollars. Please pay the balance by {inv.due_at.date().isoformat()} by card in "
            f"AgencyWeb (Invoices) or by bank transfer quoting {inv.number}."
        ),
    )
    return bytes(pdf.output())


def _party(pdf: _Page, title: str, party: Party, width: float) -> None:
    x = pdf.get_x()
    pdf.set_font("helvetica", "B", 9)
    pdf.set_text_color(*MUTED)
    pdf.cell(width, 5, text(title.upper()), new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.set_font("helvetica", "B", 11)
    pdf.set_text_color(*INK)
    pdf.multi_cell(width, 5.5, text(party.legal_name), new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.set_font("helvetica", "", 9.5)
    lines = []
    if party.name != party.legal_name:
        lines.append(f"trading as {party.name}")
    lines.append(party.address or "address not configured (ASTRO_COMPANY_ADDRESS)")
    lines.append(f"Tax ID: {party.tax_id or 'not configured (ASTRO_COMPANY_TAX_ID)'}")
    if party.email:
        lines.append(party.email)
    for line in lines:
        pdf.set_x(x)
        pdf.multi_cell(width, 5, text(line), new_x=XPos.LEFT, new_y=YPos.NEXT)
