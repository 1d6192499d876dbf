"""A statement as a customer-facing PDF (reportlab), one organization per document."""

from __future__ import annotations

import io
from typing import Sequence
from zoneinfo import ZoneInfo

from integrations.statement.compute import Statement
from integrations.statement.render import local, percent, plan_title

__all__ = ["render_pdf"]


def render_pdf(statements: Sequence[Statement]) -> bytes:
    """The statements as one PDF (each organization starts on a new page)."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle
    from xml.sax.saxutils import escape

    styles = getSampleStyleSheet()
    body, small = styles["BodyText"], styles["BodyText"].clone("small", fontSize=8, leading=10)
    grid = TableStyle([
        ("FONTSIZE", (0, 0), (-1, -1), 8),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eef0f4")),
        ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.HexColor("#c9ced8")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ])

    def table(header: list[str], rows: list[list[str]], widths: list[float]) -> Table:
        cells = [[Paragraph(escape(h), small) for h in header]]
        cells += [[Paragraph(escape(str(c)), small) for c in row] for row in rows]
        t = Table(cells, colWidths=[w * mm for w in widths], repeatRows=1)
        t.setStyle(grid)
        return t

    story: list[object] = []
    for index, s in enumerate(statements):
        if index:
            story.append(PageBreak())
        zone = s.timezone
        month_name = s.month.start(ZoneInfo(zone)).strftime("%B %Y")
        story.append(Paragraph(escape(f"Support statement — {s.organization_name}"), styles["Title"]))
        story.append(Paragraph(escape(f"{month_name} · organization {s.organization} · times in {zone}"), body))
        story.append(Spacer(1, 4 * mm))
        channels = ", ".join(f"{c} {n}" for c, n in s.requests_by_channel.items()) or "none"
        story.append(Paragraph(escape(f"Requests: {s.total.requests} ({channels})"), body))
        story.append(Paragraph(escape(
            f"First responses due: {s.total.due}, met: {s.total.met} ({percent(s.total)})"), body))
        story.append(Paragraph(escape(
            f"Emergencies: {s.accepted_emergencies} accepted, {s.refused_emergencies} refused · "
            f"out-of-scope referrals: {len(s.referrals)}"), body))
        story.append(Spacer(1, 3 * mm))
        story.append(Paragraph("Plan during the month", styles["Heading3"]))
        story.append(table(["Plan", "From", "Until", "Requests", "Due", "Met", "Met %"], [
            [plan_title(p.plan), local(p.start, zone), local(p.end, zone), str(f.requests), str(f.due), str(f.met),
             percent(f)] for p, f in zip(s.plans, s.per_plan, strict=True)], [28, 30, 30, 20, 15, 15, 20]))
        story.append(Paragraph(f"Breaches ({len(s.breaches)})", styles["Heading3"]))
        if s.breaches:
            story.append(table(["Ticket", "Title", "Channel", "Due", "Answered", "Late (business min)"], [
                [f"#{b.number or b.ticket}", b.title or "", b.channel, local(b.due, zone), local(b.answered, zone),
                 f"{b.late_minutes:.0f}"] for b in s.breaches], [18, 52, 18, 30, 30, 22]))
        else:
            story.append(Paragraph("None: every first response due was on time.", body))
        story.append(Paragraph("Emergencies", styles["Heading3"]))
        if s.emergencies:
            story.append(table(["Ticket", "Verdict", "Why"], [
                [f"#{e.number or e.ticket}", "accepted" if e.accepted else "refused", " ".join(e.reasons)]
                for e in s.emergencies], [18, 22, 130]))
        else:
            story.append(Paragraph("No emergency was requested.", body))
        if s.referrals:
            story.append(Paragraph("Out of scope", styles["Heading3"]))
            story.append(table(["Ticket", "Category", "Referral"], [
                [f"#{r.number or r.ticket}", r.category or "", r.referral or ""] for r in s.referrals], [18, 32, 120]))
        story.append(Paragraph("Last six months", styles["Heading3"]))
        story.append(table(["Month", "Requests", "Due", "Met", "Met %"], [
            [str(m), str(f.requests), str(f.due), str(f.met), percent(f)] for m, f in s.trend], [30, 25, 20, 20, 25]))
        story.append(Spacer(1, 4 * mm))
        story.append(Paragraph(escape(
            f"Policies {s.policy_version}, as of {local(s.as_of, zone)}. A first response is due within the plan's "
            "guaranteed time, counted in the opening hours of the channel the request came in by."), small))
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(buffer, pagesize=A4, title="Support statement", author="policydesk",
                            leftMargin=18 * mm, rightMargin=18 * mm, topMargin=16 * mm, bottomMargin=16 * mm)
    doc.build(story or [Paragraph("No organization matched.", body)])
    return buffer.getvalue()
