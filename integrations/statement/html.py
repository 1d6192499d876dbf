"""A statement as a self-contained HTML page (no external resource; the trend is inline SVG)."""

from __future__ import annotations

import html
from typing import Sequence
from zoneinfo import ZoneInfo

from integrations.statement.compute import Figures, Month, Statement
from integrations.statement.render import local, percent, plan_title

__all__ = ["render_html", "trend_svg"]

_STYLE = """
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#1d2433;margin:2rem auto;max-width:60rem;padding:0 1rem}
h1{font-size:1.5rem;margin:0 0 .2rem} h2{font-size:1.1rem;margin:1.6rem 0 .5rem;border-bottom:1px solid #d8dde6}
.meta{color:#5b6477;font-size:.9rem} table{border-collapse:collapse;width:100%;margin:.3rem 0}
th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #eef0f4;vertical-align:top}
th{font-weight:600;color:#5b6477;font-size:.85rem} td.n{text-align:right;font-variant-numeric:tabular-nums}
.kpi{display:flex;gap:1rem;flex-wrap:wrap} .kpi div{background:#f4f6fa;border-radius:6px;padding:.6rem .9rem;min-width:9rem}
.kpi b{display:block;font-size:1.4rem} .bad{color:#b42318} .ok{color:#067647} footer{margin-top:2rem;color:#5b6477;font-size:.85rem}
"""


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value))


def trend_svg(trend: Sequence[tuple[Month, Figures]]) -> str:
    """Bars of "met % of due" per month; a month with nothing due is drawn as a dash."""
    width, height, pad, bar = 520, 170, 28, 56
    step = (width - 2 * pad) / max(1, len(trend))
    parts = [f'<svg class="chart" role="img" aria-label="first responses met, last six months" '
             f'viewBox="0 0 {width} {height}" width="{width}" height="{height}">',
             f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="#9aa3b2"/>']
    top = 16
    for index, (month, figures) in enumerate(trend):
        x = pad + index * step + (step - bar) / 2
        label = f'<text x="{x + bar / 2:.1f}" y="{height - 10}" text-anchor="middle" font-size="11">{_e(month)}</text>'
        share = figures.met_share
        if share is None:
            parts.append(f'<text x="{x + bar / 2:.1f}" y="{height - pad - 6}" text-anchor="middle" '
                         f'font-size="12" fill="#9aa3b2">–</text>{label}')
            continue
        h = share * (height - pad - top)
        colour = "#067647" if share >= 0.95 else ("#b54708" if share >= 0.8 else "#b42318")
        parts.append(f'<rect x="{x:.1f}" y="{height - pad - h:.1f}" width="{bar}" height="{h:.1f}" fill="{colour}">'
                     f"<title>{_e(month)}: {figures.met} of {figures.due} met</title></rect>"
                     f'<text x="{x + bar / 2:.1f}" y="{height - pad - h - 4:.1f}" text-anchor="middle" '
                     f'font-size="11">{share * 100:.0f}%</text>{label}')
    parts.append("</svg>")
    return "".join(parts)


def _section(s: Statement) -> str:
    zone = s.timezone
    month_name = s.month.start(ZoneInfo(zone)).strftime("%B %Y")
    rows = "".join(
        f"<tr><td>{_e(plan_title(p.plan))}</td><td>{p.start.astimezone(ZoneInfo(zone)):%d %b %H:%M} – "
        f"{p.end.astimezone(ZoneInfo(zone)):%d %b %H:%M}</td><td class=n>{f.requests}</td><td class=n>{f.due}</td>"
        f"<td class=n>{f.met}</td><td class=n>{percent(f)}</td></tr>"
        for p, f in zip(s.plans, s.per_plan, strict=True))
    breaches = "".join(
        f"<tr><td>#{_e(b.number or b.ticket)}</td><td>{_e(b.title)}</td><td>{_e(plan_title(b.plan))}</td>"
        f"<td>{_e(b.channel)}</td><td>{_e(local(b.due, zone))}</td><td>{_e(local(b.answered, zone))}</td>"
        f"<td class=n>{b.late_minutes:.0f}</td></tr>" for b in s.breaches)
    emergencies = "".join(
        f"<tr><td>#{_e(e.number or e.ticket)}</td><td>{'accepted' if e.accepted else 'refused'}</td>"
        f"<td>{_e(' '.join(e.reasons))}</td></tr>" for e in s.emergencies)
    referrals = "".join(
        f"<tr><td>#{_e(r.number or r.ticket)}</td><td>{_e(r.category)}</td><td>{_e(r.referral)}</td></tr>"
        for r in s.referrals)
    channels = ", ".join(f"{_e(c)} {n}" for c, n in s.requests_by_channel.items()) or "none"
    met_class = "ok" if (s.total.met_share or 0) >= 0.95 else "bad"
    return f"""
<section class="statement" data-organization="{_e(s.organization)}">
<h1>{_e(s.organization_name)} — {_e(month_name)}</h1>
<p class="meta">Organization {_e(s.organization)} · times in {_e(zone)}</p>
<div class="kpi">
<div><b>{s.total.requests}</b>requests ({channels})</div>
<div><b>{s.total.due}</b>first responses due</div>
<div><b class="{met_class}">{percent(s.total)}</b>met ({s.total.met} of {s.total.due})</div>
<div><b>{s.accepted_emergencies} / {s.refused_emergencies}</b>emergencies accepted / refused</div>
<div><b>{len(s.referrals)}</b>out-of-scope referrals</div>
</div>
<h2>Plan during the month</h2>
<table><tr><th>Plan</th><th>Period</th><th>Requests</th><th>Due</th><th>Met</th><th>Met %</th></tr>{rows}</table>
<h2>Breaches ({len(s.breaches)})</h2>
{"<table><tr><th>Ticket</th><th>Title</th><th>Plan</th><th>Channel</th><th>Due</th><th>Answered</th>"
 "<th>Late (business min)</th></tr>" + breaches + "</table>" if s.breaches else "<p>None: every first response due was on time.</p>"}
<h2>Emergencies</h2>
{"<table><tr><th>Ticket</th><th>Verdict</th><th>Why</th></tr>" + emergencies + "</table>" if s.emergencies else "<p>No emergency was requested.</p>"}
<h2>Out of scope</h2>
{"<table><tr><th>Ticket</th><th>Category</th><th>Referral</th></tr>" + referrals + "</table>" if s.referrals else "<p>No request was out of scope.</p>"}
<h2>Last six months</h2>
{trend_svg(s.trend)}
</section>"""


def render_html(statements: Sequence[Statement], *, title: str = "policydesk statement") -> str:
    """One page with every statement (one section each) and a footer naming the policies."""
    if not statements:
        body, footer = "<p>No organization matched.</p>", ""
    else:
        body = "\n<hr>\n".join(_section(s) for s in statements)
        first = statements[0]
        footer = (f"<footer>Computed by policydesk with policies {_e(first.policy_version)}, as of "
                  f"{_e(local(first.as_of, first.timezone))} ({_e(first.timezone)}). A first response is due within "
                  "the plan's guaranteed time counted in the opening hours of the channel the request came in by; "
                  "lateness is counted in those business minutes.</footer>")
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
            f"<style>{_STYLE}</style></head><body>{body}{footer}</body></html>\n")
