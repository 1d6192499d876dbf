"""The technical document: one PDF with everything a customer needs to reach support.

"Keep the PDF document ... This procedure allows you to contact [the provider] in all
cases, even if our site or your Internet connection were to be temporarily unavailable."

`document_content` gathers, from the policies and the store, the organization, its plan,
its support code, the VIP code (only when it was just issued or rotated: policydesk keeps
only its hash), every contact channel with its opening hours, the 24/7 emergency line
with its rules, the account managers with their hours, the commitment end and what is
out of scope; `render_pdf` lays it out with reportlab. The billing answer that issues a VIP
code carries the document base64-encoded (`document_for_billing`); ``policydesk
techdoc`` writes it to a file.

reportlab's built-in Helvetica covers Latin-1; characters outside it (a name in another
script) print as boxes.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from integrations.support_code import support_code
from plugin.model import Policies

__all__ = ["DocumentContent", "document_content", "document_for_billing", "hours_text", "render_pdf",
           "technical_document"]

_DAY_NAMES = {"mon": "Mon", "tue": "Tue", "wed": "Wed", "thu": "Thu", "fri": "Fri", "sat": "Sat", "sun": "Sun"}
_CHANNEL_NAMES = {"phone": "Phone", "email": "E-mail", "web": "Web form", "chat": "Chat", "sms": "SMS"}
_LANGUAGES = {"fr": "French", "en": "English", "de": "German", "it": "Italian"}


@dataclass(frozen=True)
class DocumentContent:
    """What the document says: a title and sections of (heading, lines)."""

    title: str
    sections: Sequence[tuple[str, Sequence[str]]] = field(default_factory=tuple)

    def text(self) -> str:
        """The document as plain text (what a PDF text extractor should find)."""
        parts = [self.title]
        for heading, lines in self.sections:
            parts.append(heading)
            parts.extend(lines)
        return "\n".join(parts)


def _day_label(days: str) -> str:
    return "-".join(_DAY_NAMES.get(d, d) for d in str(days).split("-"))


def hours_text(policies: Policies, calendar_name: str) -> str:
    """A calendar's opening hours as people say them: ``Mon-Fri 06:00-19:00 (Europe/Zurich)``."""
    hours = policies.documents.get("hours.yaml") or {}
    spec = (hours.get("calendars") or {}).get(calendar_name) or {}
    zone = spec.get("timezone") or hours.get("timezone") or policies.default_timezone
    weekly = spec.get("weekly")
    if weekly == "24/7":
        text = "24 hours a day, 7 days a week"
    elif isinstance(weekly, Mapping) and weekly:
        text = "; ".join(
            f"{_day_label(days)} " + ", ".join(f"{w.get('open')}-{w.get('close')}" for w in windows or [])
            if windows else f"{_day_label(days)} closed"
            for days, windows in weekly.items())
    else:
        text = "see the provider"
    extra = " (closed on public holidays)" if spec.get("holidays") else ""
    return f"{text} ({zone}){extra}"


def _channel_lines(policies: Policies, plan: Any) -> list[str]:
    by_calendar: dict[str, list[str]] = {}
    for channel, calendar in (getattr(plan, "channel_calendars", {}) or {}).items():
        by_calendar.setdefault(calendar, []).append(_CHANNEL_NAMES.get(channel, channel.capitalize()))
    lines = [f"{', '.join(names)}: {hours_text(policies, cal)}" for cal, names in by_calendar.items()]
    default = getattr(plan, "default_calendar", None)
    if default:
        lines.append(f"Any other written channel: {hours_text(policies, default)}")
    return lines


def _emergency_lines(policies: Policies, plan: Any) -> list[str]:
    scope = policies.scope
    titles = (policies.documents.get("scope.yaml") or {}).get("categories") or {}
    categories = ", ".join(str(titles.get(c, c)) for c in sorted(scope.emergency_categories)) or "none"
    languages = " and ".join(_LANGUAGES.get(code, code) for code in sorted(scope.emergency_languages,
                                                                             key=lambda c: (c != "fr", c)))
    channels = getattr(scope, "emergency_channels", None) or ("phone",)
    eligible = [name for name, spec in sorted(policies.plans.items(), key=lambda i: i[1].rank) if spec.emergency_24_7]
    lines = [f"Included in your plan: {'yes' if plan.emergency_24_7 else 'no'}"
             f" (plans with the 24/7 emergency line: {', '.join(policies.plans[p].title for p in eligible) or 'none'})",
             f"Hours: {hours_text(policies, scope.emergency_calendar)}",
             f"How: {' or '.join(_CHANNEL_NAMES.get(c, c) for c in channels)} only (emergency calls)",
             f"Only for: {categories}",
             f"Languages: {languages} only",
             "Any other request is handled as a normal request within the normal opening hours."]
    return lines


def document_content(policies: Policies, organization_id: int, *, name: str = "", plan_name: str | None = None,
                     commitment_end: dt.date | None = None, managers: Mapping[str, str] | None = None,
                     vip_code: str | None = None, issued: dt.date | None = None) -> DocumentContent:
    """The document's text for one organization (pure: everything comes in as arguments)."""
    plan_name = plan_name if plan_name in policies.plans else policies.default_plan
    plan = policies.plans[plan_name]
    label = name or f"Organization {organization_id}"
    identity = [f"Organization: {label} (id {organization_id})",
                f"Plan: {plan.title} ({plan_name})",
                f"Support code: {support_code(organization_id)}"]
    if vip_code:
        identity.append(f"VIP code: {vip_code}  (give it when you call the technical contact; keep it secret)")
    elif plan.vip_code:
        identity.append("VIP code: printed only on the document issued with it (policydesk keeps only its hash)")
    else:
        identity.append("VIP code: not included in this plan")
    guarantee = (f"Guaranteed first response: within {plan.first_response_minutes // 60} h"
                 f"{'' if plan.first_response_minutes % 60 == 0 else ' ' + str(plan.first_response_minutes % 60) + ' min'}"
                 " of opening hours") if plan.first_response_minutes else "Guaranteed first response: none (answered promptly)"
    identity.append(guarantee)
    sections: list[tuple[str, Sequence[str]]] = [("Your identification", identity),
                                                ("Contact channels and opening hours", _channel_lines(policies, plan)),
                                                ("24/7 emergency line", _emergency_lines(policies, plan))]
    manager_lines = []
    for role_name in plan.account_manager_roles:
        role = policies.roles.get(role_name)
        title = role.title if role is not None else role_name
        person = (managers or {}).get(role_name) or "to be assigned"
        hours = hours_text(policies, role.calendar) if role is not None else ""
        manager_lines.append(f"{title}: {person}, {hours}")
    sections.append(("Account managers", manager_lines or ["No designated account manager in this plan."]))
    if plan.customised_advice:
        technical = policies.roles.get("technical_account_manager")
        advice = getattr(policies, "advice_calendar", None) or (technical.calendar if technical else "account_manager")
        sections.append(("Customised advice", [f"Included: {hours_text(policies, advice)}"]))
    sections.append(("Commitment", [
        f"Commitment end: {commitment_end.isoformat()}" if commitment_end else "Commitment end: none (no commitment)",
        "No termination or refund before the end of the commitment; plans can be upgraded, never downgraded."]))
    out = [f"{category}: {rule.referral}" for category, rule in sorted(policies.scope.out_of_scope.items())]
    sections.append(("Out of scope", out or ["Nothing is excluded."]))
    if issued is not None:
        sections.append(("Document", [f"Issued {issued.isoformat()}. Keep it where you can read it offline."]))
    return DocumentContent(f"Technical document - {label}", tuple(sections))


def render_pdf(content: DocumentContent) -> bytes:
    """The document as PDF bytes (reportlab, A4)."""
    import io
    from xml.sax.saxutils import escape

    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer

    styles = getSampleStyleSheet()
    out = io.BytesIO()
    document = SimpleDocTemplate(out, pagesize=A4, title=content.title, author="policydesk", creator="policydesk",
                                 leftMargin=18 * mm, rightMargin=18 * mm, topMargin=16 * mm, bottomMargin=16 * mm)
    story: list[Any] = [Paragraph(escape(content.title), styles["Title"])]
    for heading, lines in content.sections:
        story.append(Spacer(1, 2 * mm))
        story.append(Paragraph(escape(heading), styles["Heading3"]))
        story.extend(Paragraph(escape(line), styles["BodyText"]) for line in lines)
    document.build(story)
    return out.getvalue()


def technical_document(store: Any, policies: Policies, org_ref: str, record: Mapping[str, Any] | None = None,
                       vip_code: str | None = None, now: dt.datetime | None = None) -> bytes:
    """The PDF for the organization ``org_ref``, from the store (plan, commitment, managers)
    and, when given, its Zammad record (name; plan and commitment when the store has none)."""
    from integrations.zammad import mapping

    organization = mapping.organization_from_record(record) if record else None
    subscription = store.get_subscription(org_ref) if store is not None else None
    plan = subscription.plan if subscription is not None else (organization.plan if organization else None)
    end = subscription.commitment_end.date() if subscription is not None and subscription.commitment_end else (
        organization.commitment_end if organization is not None and subscription is None else None)
    managers = store.managers_of(org_ref) if store is not None else {}
    if not managers and organization is not None:
        managers = dict(organization.account_managers)
    content = document_content(policies, int(org_ref), name=(organization.name if organization else ""),
                               plan_name=plan, commitment_end=end, managers=managers, vip_code=vip_code,
                               issued=(now or dt.datetime.now(dt.timezone.utc)).date())
    return render_pdf(content)


def document_for_billing(store: Any, policies: Policies, org_ref: str, record: Mapping[str, Any] | None,
                         vip_code: str, now: dt.datetime) -> dict[str, Any]:
    """The ``technical_document`` member of a billing answer: the PDF, base64 (RFC 4648)."""
    pdf = technical_document(store, policies, org_ref, record, vip_code, now)
    return {"filename": f"technical-document-{org_ref}.pdf", "content_type": "application/pdf",
            "encoding": "base64", "data": base64.b64encode(pdf).decode("ascii")}
