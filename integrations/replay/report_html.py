"""The replay's self-contained HTML report, as a support manager reads it.

No external resource at all (no CDN, no font, no script from the network): the charts are
inline SVG drawn here — achievement per plan, response-time distributions per plan against
the target, the trend per month, and an hour-of-week heat map of arrivals against each
calendar's opening hours; the breached tickets, a per-organization table and (with
``--compare``) the tickets that change verdict. A ten-line inline script only records,
after load, how many charts the browser laid out (``data-charts-rendered`` on ``<html>``),
which the browser test reads.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from typing import Any, Sequence
from zoneinfo import ZoneInfo

from integrations.replay.outcome import BREACHED, MET
from integrations.replay.report import DAYS, _min, _pct, _plan_key, _rows, _target, count, stats_of
from integrations.replay.summary import Flip, ReplayResult, percentile

__all__ = ["render_html"]


_GREEN, _RED, _BLUE, _GREY, _AMBER = "#2e7d4f", "#c8453b", "#3b6fb6", "#9aa3ad", "#d99a2b"
_BINS = (0, 5, 10, 15, 30, 45, 60, 90, 120, 180, 240, 360, 480, 720, 960, 1440, 2880)


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _achievement_chart(result: ReplayResult) -> str:
    s, c = result.summary, result.compare
    plans = [p for p in sorted(s.by_plan(), key=_plan_key)]
    by_plan, other = s.by_plan(), (c.by_plan() if c is not None else {})
    series = [("current", by_plan, _BLUE)] + ([("compared", other, _AMBER)] if c is not None else [])
    row_h = 26 * len(series) + 14
    width, left, right = 720, 110, 210
    height = 30 + row_h * len(plans)
    plot = width - left - right
    out = [f'<svg class="chart" id="achievement" role="img" viewBox="0 0 {width} {height}" width="100%" '
           f'xmlns="http://www.w3.org/2000/svg" aria-label="Achievement per plan">']
    for pct in (0, 25, 50, 75, 90, 100):
        x = left + plot * pct / 100
        out.append(f'<line x1="{x:.1f}" y1="22" x2="{x:.1f}" y2="{height - 6}" class="grid"/>')
        out.append(f'<text x="{x:.1f}" y="15" class="axis" text-anchor="middle">{pct}%</text>')
    y = 30
    for plan in plans:
        out.append(f'<text x="{left - 10}" y="{y + row_h / 2 - 2:.1f}" class="label" text-anchor="end">{_e(plan)}</text>')
        for n, (name, groups, color) in enumerate(series):
            g = groups.get(plan)
            by = y + n * 26
            if g is None or g.achievement is None:
                reason = "no guaranteed response time" if s.targets.get(plan) is None else "no ticket with a verdict"
                out.append(f'<text x="{left + 4}" y="{by + 15}" class="muted">{_e(reason)}</text>')
                continue
            w = plot * g.achievement
            tip = (f"{plan} ({name}): {g.achievement * 100:.1f}% met — {g.counts[MET]:,} met, "
                   f"{g.counts[BREACHED]:,} breached")
            out.append(f'<rect class="bar" x="{left}" y="{by}" width="{w:.1f}" height="20" rx="3" fill="{color}">'
                       f'<title>{_e(tip)}</title></rect>')
            out.append(f'<rect x="{left + w:.1f}" y="{by}" width="{plot - w:.1f}" height="20" rx="3" '
                       f'fill="{_RED}" opacity="0.18"/>')
            out.append(f'<text x="{width - right + 8}" y="{by + 15}" class="value">{g.achievement * 100:.1f}% '
                       f'<tspan class="muted">({g.counts[BREACHED]:,} breached)</tspan></text>')
        y += row_h
    out.append("</svg>")
    return "".join(out)


def _histogram(values: Sequence[float], target: int | None, plan: str, index: int) -> str:
    counts = [0] * len(_BINS)
    for v in values:
        i = 0
        # few bins: a linear scan is fast enough and keeps the edges obvious
        while i + 1 < len(_BINS) and v >= _BINS[i + 1]:
            i += 1
        counts[i] += 1
    width, height, left, bottom = 300, 170, 36, 38
    plot_w, plot_h = width - left - 8, height - bottom - 24
    top = max(counts) or 1
    bw = plot_w / len(_BINS)
    out = [f'<svg class="chart histogram" id="hist-{index}" role="img" viewBox="0 0 {width} {height}" '
           f'xmlns="http://www.w3.org/2000/svg" aria-label="Response times, {_e(plan)}">',
           f'<text x="{left}" y="14" class="label">{_e(plan)}</text>',
           f'<text x="{width - 8}" y="14" class="muted" text-anchor="end">target {_e(_target(target))}, '
           f'{len(values):,} answered</text>']
    for i, n in enumerate(counts):
        h = plot_h * n / top
        x = left + i * bw
        edge = _BINS[i]
        late = target is not None and edge >= target
        upper = f"{_BINS[i + 1]}" if i + 1 < len(_BINS) else "∞"
        tip = f"{plan}: {n:,} answered in {edge}–{upper} business minutes"
        out.append(f'<rect class="bar" x="{x + 1:.1f}" y="{24 + plot_h - h:.1f}" width="{bw - 2:.1f}" '
                   f'height="{max(h, 0.5):.1f}" fill="{_RED if late else _GREEN if target is not None else _BLUE}">'
                   f'<title>{_e(tip)}</title></rect>')
        if i % 2 == 0:
            label = f"{edge // 60}h" if edge >= 60 and edge % 60 == 0 else str(edge)
            out.append(f'<text x="{x + bw / 2:.1f}" y="{height - bottom + 14}" class="axis" '
                       f'text-anchor="middle">{label}</text>')
    if target is not None:
        i = max(k for k, edge in enumerate(_BINS) if edge <= target)
        share = (target - _BINS[i]) / (_BINS[i + 1] - _BINS[i]) if i + 1 < len(_BINS) else 0.0
        x = left + (i + share) * bw
        out.append(f'<line x1="{x:.1f}" y1="20" x2="{x:.1f}" y2="{24 + plot_h}" class="target"/>')
    out.append(f'<line x1="{left}" y1="{24 + plot_h}" x2="{width - 8}" y2="{24 + plot_h}" class="grid"/>')
    out.append(f'<text x="{left + plot_w / 2:.1f}" y="{height - 6}" class="axis" text-anchor="middle">'
               f'business minutes to first response</text>')
    out.append("</svg>")
    return "".join(out)


def _opening(calendar: Any, zone: ZoneInfo, around: dt.datetime | None) -> list[bool]:
    """Whether ``calendar`` is open at the middle of each hour of a reference week."""
    ref = (around or dt.datetime.now(dt.timezone.utc)).astimezone(zone)
    monday = (ref - dt.timedelta(days=ref.weekday())).date()
    out = []
    for how in range(168):
        day = monday + dt.timedelta(days=how // 24)
        at = dt.datetime(day.year, day.month, day.day, how % 24, 30, tzinfo=zone)
        try:
            out.append(bool(calendar.is_open(at)))
        except ValueError:
            out.append(False)
    return out


def _heatmap(name: str, hours: Sequence[int], opening: Sequence[bool], index: int) -> str:
    cell, left, top = 22, 40, 34
    width, height = left + 24 * cell + 10, top + 7 * cell + 30
    peak = max(hours) or 1
    total = sum(hours)
    inside = sum(n for n, o in zip(hours, opening) if o)
    out = [f'<svg class="chart heatmap" id="heat-{index}" role="img" viewBox="0 0 {width} {height}" width="100%" '
           f'xmlns="http://www.w3.org/2000/svg" aria-label="Arrivals by hour of week, {_e(name)}">',
           f'<text x="{left}" y="14" class="label">{_e(name)}</text>',
           f'<text x="{width - 10}" y="14" class="muted" text-anchor="end">{count(total, "arrival")}, '
           f'{(inside / total * 100) if total else 0:.0f}% inside opening hours</text>']
    for h in range(0, 24, 3):
        out.append(f'<text x="{left + h * cell + cell / 2}" y="{top - 6}" class="axis" text-anchor="middle">{h:02d}</text>')
    for d in range(7):
        out.append(f'<text x="{left - 6}" y="{top + d * cell + cell * 0.68:.1f}" class="axis" text-anchor="end">{DAYS[d]}</text>')
        for h in range(24):
            k = d * 24 + h
            n = hours[k]
            level = math.sqrt(n / peak) if n else 0.0
            fill = f"rgba(59,111,182,{0.06 + 0.94 * level:.3f})" if n else "#f4f5f7"
            state = "open" if opening[k] else "closed"
            tip = f"{DAYS[d]} {h:02d}:00–{h + 1:02d}:00: {count(n, 'arrival')} ({state})"
            cls = "cell open" if opening[k] else "cell closed"
            out.append(f'<rect class="{cls}" x="{left + h * cell}" y="{top + d * cell}" width="{cell - 2}" '
                       f'height="{cell - 2}" rx="2" fill="{fill}"><title>{_e(tip)}</title></rect>')
            if not opening[k]:
                out.append(f'<path d="M{left + h * cell + 3} {top + d * cell + cell - 5}l{cell - 8} {-(cell - 8)}" '
                           f'class="hatch"/>')
    ly = top + 7 * cell + 18
    out.append(f'<rect x="{left}" y="{ly - 10}" width="14" height="12" rx="2" fill="#fff" class="legend-open"/>'
               f'<text x="{left + 20}" y="{ly}" class="muted">open (outlined)</text>'
               f'<rect x="{left + 130}" y="{ly - 10}" width="14" height="12" rx="2" fill="#f4f5f7"/>'
               f'<path d="M{left + 132} {ly}l10 -10" class="hatch"/>'
               f'<text x="{left + 150}" y="{ly}" class="muted">closed (hatched)</text>'
               f'<text x="{width - 10}" y="{ly}" class="muted" text-anchor="end">darker = more arrivals</text>')
    out.append("</svg>")
    return "".join(out)


def _margin(minutes: float | None) -> str:
    if minutes is None:
        return ""
    return f"{abs(minutes):.0f} min " + ("late" if minutes > 0 else "early" if minutes < 0 else "on the deadline")


def _flip_table(title: str, flips: Sequence[Flip], limit: int = 500) -> str:
    if not flips:
        return f"<h3>{_e(title)}: none</h3>"
    rows = "".join(
        f"<tr><td>{_e(f.id)}</td><td>{_e(f.organization or '')}</td><td>{_e(f.plan)}</td><td>{_e(f.channel)}</td>"
        f"<td>{_e(f.before)}</td><td>{_e(f.after)}</td>"
        f"<td class=num>{_e(_margin(f.margin_before))}</td><td class=num>{_e(_margin(f.margin_after))}</td></tr>"
        for f in flips[:limit])
    more = f"<p class=muted>… and {len(flips) - limit:,} more (the JSON output lists all).</p>" if len(flips) > limit else ""
    return (f"<h3>{_e(title)}: {len(flips):,}</h3><table><thead><tr><th>ticket</th><th>organization</th><th>plan</th>"
            "<th>channel</th><th>before</th><th>after</th><th>first response before</th>"
            f"<th>first response after</th></tr></thead><tbody>{rows}</tbody></table>{more}")


def _breach_table(result: ReplayResult, limit: int = 100) -> str:
    s = result.summary
    total = len(s.breached_ids)
    if not total:
        return "<p>No ticket was breached.</p>"
    zone = ZoneInfo(result.timezone)
    when = (lambda t: "" if t is None else f"{t.astimezone(zone):%a %d %b %Y %H:%M}")
    rows = "".join(
        f"<tr><td>{_e(b.id)}</td><td>{_e(b.organization or '')}</td><td>{_e(b.plan)}</td><td>{_e(b.channel)}</td>"
        f"<td>{_e(when(b.created_at))}</td><td>{_e(when(b.due))}</td>"
        f"<td>{_e(when(b.first_response_at) or 'not answered')}</td><td class=num>{_e(_margin(b.margin_minutes))}</td></tr>"
        for b in s.breaches[:limit])
    shown = min(limit, len(s.breaches))
    more = (f"<p class=muted>The first {shown:,} of {total:,} breaches; the JSON output lists every id.</p>"
            if total > shown else "")
    return ("<table><thead><tr><th>ticket</th><th>organization</th><th>plan</th><th>channel</th><th>created</th>"
            "<th>due</th><th>answered</th><th>late by (business time)</th></tr></thead><tbody>"
            + rows + "</tbody></table>" + more)


def _organization_table(result: ReplayResult, limit: int = 200) -> str:
    orgs = sorted(result.summary.organizations.items(), key=lambda kv: (-kv[1][2], -kv[1][0], kv[0]))
    rows = "".join(
        f"<tr><td>{_e(name or '(none)')}</td><td class=num>{c[0]:,}</td><td class=num>{c[1]:,}</td>"
        f"<td class=num>{c[2]:,}</td><td class=num>{_pct(c[1] / (c[1] + c[2]) if c[1] + c[2] else None)}</td></tr>"
        for name, c in orgs[:limit])
    more = f"<p class=muted>The {limit} organizations with the most breaches of {len(orgs):,}.</p>" if len(orgs) > limit else ""
    return ("<table><thead><tr><th>organization</th><th>tickets</th><th>met</th><th>breached</th><th>achieved</th>"
            "</tr></thead><tbody>" + rows + "</tbody></table>" + more)


def _trend_chart(result: ReplayResult) -> str:
    months = sorted(result.summary.months.items())
    if not months:
        return "<p>No tickets.</p>"
    width, height, left, bottom, top = 900, 200, 40, 36, 16
    step = (width - left - 10) / len(months)
    bar = min(48.0, step * 0.7)
    out = [f'<svg class="chart" id="trend" role="img" viewBox="0 0 {width} {height}" width="100%" '
           'xmlns="http://www.w3.org/2000/svg" aria-label="First responses met per month">',
           f'<line x1="{left}" y1="{height - bottom}" x2="{width - 10}" y2="{height - bottom}" class="grid"/>']
    for pct in (50, 100):
        y = height - bottom - pct / 100 * (height - bottom - top)
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - 10}" y2="{y:.1f}" class="grid"/>'
                   f'<text x="{left - 6}" y="{y + 4:.1f}" class="axis" text-anchor="end">{pct}%</text>')
    for i, (month, (tickets, met, breached)) in enumerate(months):
        x = left + i * step + (step - bar) / 2
        label = (f'<text x="{x + bar / 2:.1f}" y="{height - bottom + 14}" class="axis" text-anchor="middle">{_e(month)}'
                 f'</text><text x="{x + bar / 2:.1f}" y="{height - bottom + 27}" class="axis" text-anchor="middle">'
                 f'{_e(count(tickets, "ticket"))}</text>')
        judged = met + breached
        if not judged:
            out.append(label)
            continue
        share = met / judged
        h = share * (height - bottom - top)
        out.append(f'<rect class="bar" x="{x:.1f}" y="{height - bottom - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                   f'fill="{_GREEN if share >= 0.95 else _AMBER if share >= 0.8 else _RED}"><title>{_e(month)}: '
                   f'{met:,} met of {judged:,} with a deadline</title></rect>'
                   f'<text x="{x + bar / 2:.1f}" y="{height - bottom - h - 4:.1f}" class="value" '
                   f'text-anchor="middle">{share * 100:.1f}%</text>{label}')
    out.append("</svg>")
    return "".join(out)


def _summary_table(result: ReplayResult) -> str:
    s = result.summary
    rows = []
    for plan, channel, g in _rows(s):
        st = stats_of(g, s.targets.get(plan))
        cls = ' class="sub"' if channel == "all" else ""
        ach = g.achievement
        bar = "" if ach is None else (f'<span class="mini"><span style="width:{ach * 100:.1f}%"></span></span>')
        rows.append(
            f"<tr{cls}><td>{_e(plan)}</td><td>{_e(channel)}</td><td class=num>{g.tickets:,}</td>"
            f"<td class=num>{_e(_target(s.targets.get(plan)) if plan != 'all' else '')}</td>"
            f"<td class=num>{st['met']:,}</td><td class=num>{st['breached']:,}</td>"
            f"<td class=num>{_pct(ach)} {bar}</td><td class=num>{_min(st['median_response_minutes'])}</td>"
            f"<td class=num>{_min(st['p90_response_minutes'])}</td></tr>")
    return ("<table><thead><tr><th>plan</th><th>channel</th><th>tickets</th><th>target</th><th>met</th>"
            "<th>breached</th><th>achieved</th><th>median</th><th>p90</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>")


_CSS = """
:root{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2933;background:#f7f8fa}
body{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:1.6rem;margin:0 0 4px}h2{font-size:1.15rem;margin:28px 0 8px}h3{font-size:1rem}
.sub{color:#52606d}.card{background:#fff;border-radius:10px;box-shadow:0 1px 3px rgba(0,0,0,.08);padding:16px 18px;margin:14px 0}
.kpis{display:flex;gap:14px;flex-wrap:wrap}.kpi{flex:1;min-width:150px;background:#fff;border-radius:10px;
box-shadow:0 1px 3px rgba(0,0,0,.08);padding:14px 16px}.kpi b{display:block;font-size:1.7rem}.kpi span{color:#52606d;font-size:.85rem}
.grid-3{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:10px}
table{border-collapse:collapse;width:100%;font-size:.9rem}th,td{padding:5px 8px;border-bottom:1px solid #e4e7eb;text-align:left}
th{color:#52606d;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}tr.sub td{font-weight:600;background:#fafbfc}
.mini{display:inline-block;width:60px;height:7px;background:#f3d6d3;border-radius:4px;vertical-align:middle;margin-left:6px}
.mini span{display:block;height:7px;background:#2e7d4f;border-radius:4px}
svg text{font-size:12px;fill:#323f4b}svg .axis{font-size:10px;fill:#7b8794}svg .muted,.muted{fill:#7b8794;color:#7b8794;font-size:11px}
svg .label{font-weight:600}svg .value{font-weight:600}svg .grid{stroke:#e4e7eb;stroke-width:1}
svg .target{stroke:#1f2933;stroke-width:1.5;stroke-dasharray:4 3}svg .cell.open{stroke:#2e7d4f;stroke-width:1.2}
svg .legend-open{stroke:#2e7d4f;stroke-width:1.2}svg .hatch{stroke:#c5cbd3;stroke-width:1}
svg rect.bar:hover{opacity:.8}svg.heatmap{display:block;max-width:760px;margin:0 auto 12px}
svg#achievement{display:block;max-width:900px}
"""

_SCRIPT = """
window.addEventListener('load', function () {
  var charts = document.querySelectorAll('svg.chart'), drawn = 0, marks = 0;
  charts.forEach(function (svg) {
    var box = svg.getBBox(), shapes = svg.querySelectorAll('rect,line,path');
    if (box.width > 0 && box.height > 0 && shapes.length > 0) { drawn += 1; marks += shapes.length; }
  });
  document.documentElement.setAttribute('data-charts', String(charts.length));
  document.documentElement.setAttribute('data-charts-rendered', String(drawn));
  document.documentElement.setAttribute('data-chart-marks', String(marks));
});
"""


def render_html(result: ReplayResult, *, title: str = "policydesk replay") -> str:
    """The self-contained HTML report."""
    s = result.summary
    total = s.total()
    zone = ZoneInfo(result.timezone)
    period = (f"{s.first_created.astimezone(zone):%d %b %Y} – {s.last_created.astimezone(zone):%d %b %Y}"
              if s.first_created and s.last_created else "no tickets")
    emergencies = [0, 0, 0]
    for e in s.emergencies.values():
        for i in range(3):
            emergencies[i] += e[i]
    kpis = [
        (f"{s.tickets:,}", "tickets replayed"),
        (_pct(total.achievement), "first responses met (tickets with a target)"),
        (f"{total.counts[BREACHED]:,}", "breaches"),
        (_min(percentile(sorted(total.responses), 0.5)), "median first response (business time)"),
        (f"{emergencies[1]:,} / {emergencies[0]:,}", "emergencies accepted / requested"),
    ]
    if result.compare is not None:
        ct = result.compare.total()
        kpis.insert(2, (_pct(ct.achievement), "met under the compared policies"))
    parts = [f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>{_e(title)}</title>"
             f"<meta name=viewport content='width=device-width,initial-scale=1'><style>{_CSS}</style></head><body>",
             f"<h1>{_e(title)}</h1><p class=sub>{s.tickets:,} tickets from <code>{_e(result.source)}</code>, "
             f"created {period}, replayed under <code>{_e(result.policies)}</code>"
             + (f" and <code>{_e(result.compare_policies)}</code>" if result.compare is not None else "")
             + f". Times in {_e(result.timezone)}.</p>",
             '<div class=kpis>' + "".join(f"<div class=kpi><b>{_e(v)}</b><span>{_e(t)}</span></div>" for v, t in kpis)
             + "</div>",
             "<h2>First responses met, per plan</h2><div class=card>" + _achievement_chart(result)
             + ("<p class=muted>Blue: current policies; amber: compared policies. Red tint: the share breached.</p>"
                if result.compare is not None else
                "<p class=muted>Share of tickets with a deadline answered in time; the red tint is the share breached.</p>")
             + "</div>",
             "<h2>How long the first response took</h2><div class='card'><div class=grid-3>"]
    by_plan = s.by_plan()
    for i, plan in enumerate(sorted(by_plan, key=_plan_key)):
        parts.append(_histogram(by_plan[plan].responses, s.targets.get(plan), plan, i))
    parts.append("</div><p class=muted>Business minutes of the counting calendar, pending time excluded. "
                 "Green: within the plan's target (dashed line); red: beyond it; blue: the plan guarantees no time."
                 "</p></div>")
    parts.append("<h2>When tickets arrive, against opening hours</h2><div class=card>")
    calendars = sorted(s.arrivals, key=lambda n: -sum(s.arrivals[n]))
    for i, name in enumerate(calendars):
        calendar = result.calendars.get(name)
        opening = _opening(calendar, zone, s.last_created) if calendar is not None else [True] * 168
        parts.append(_heatmap(f"{name} hours", s.arrivals[name], opening, i))
    parts.append("<p class=muted>Arrivals per hour of the week, by the calendar that counted for them. Outlined "
                 "cells are open hours; hatched ones are closed: tickets arriving there wait for the opening.</p></div>")
    parts.append("<h2>Per plan and channel</h2><div class=card>" + _summary_table(result))
    if s.emergencies:
        parts.append("<p>24/7 emergencies: " + "; ".join(
            f"<b>{_e(plan)}</b> {e[0]:,} requested, {e[1]:,} accepted, {e[2]:,} refused"
            for plan, e in sorted(s.emergencies.items(), key=lambda kv: _plan_key(kv[0]))) + "</p>")
    parts.append("</div>")
    parts.append("<h2>Per month</h2><div class=card>" + _trend_chart(result)
                 + "<p class=muted>Share of first responses met among the tickets with a deadline, by the month "
                   "they were created in.</p></div>")
    parts.append(f"<h2>Breached tickets: {len(s.breached_ids):,}</h2><div class=card>" + _breach_table(result)
                 + "</div>")
    parts.append("<h2>Per organization</h2><div class=card>" + _organization_table(result) + "</div>")
    if result.compare is not None:
        parts.append(f"<h2>What changes under <code>{_e(result.compare_policies)}</code></h2><div class=card>"
                     + _flip_table("Newly breached", result.newly_breached)
                     + _flip_table("Newly passed", result.newly_passed)
                     + "<p class=muted>First response: business minutes of the counting calendar between the "
                       "deadline and the first response (or the close, for one never answered), pending time "
                       "excluded — “late” after the deadline, “early” before it.</p></div>")
    if result.skipped:
        items = "".join(f"<li><code>{_e(e)}</code></li>" for e in result.skipped[:200])
        parts.append(f"<h2>Skipped input lines: {len(result.skipped):,}</h2><div class=card><ul>{items}</ul></div>")
    as_of = result.as_of.astimezone(zone).strftime("%d %b %Y %H:%M") if result.as_of else "now"
    version = f"policies {result.policy_version}" if result.policy_version else "policies"
    compared = (f"; compared with {result.compare_policy_version}" if result.compare_policy_version else "")
    parts.append(f"<footer><p class=muted>As of {_e(as_of)} ({_e(result.timezone)}) · {_e(version)}{_e(compared)} · "
                 f"generated by policydesk replay in {result.seconds:.1f} s"
                 f" ({'cached per ticket kind' if result.cached else 'full engine per ticket'}).</p></footer>")
    parts.append(f"<script>{_SCRIPT}</script></body></html>")
    return "".join(parts)
