"""The replay's outputs: a terminal table, a JSON summary, and a self-contained HTML report.

The HTML report has no external resource at all (no CDN, no font, no script from the
network): its charts are inline SVG drawn here — achievement per plan, response-time
distributions per plan against the target, and an hour-of-week heat map of arrivals
against each calendar's opening hours. A ten-line inline script only records, after load,
how many charts the browser laid out (``data-charts-rendered`` on ``<html>``), which the
browser test reads.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import math
from typing import Any, Sequence
from zoneinfo import ZoneInfo

from integrations.replay.records import format_instant
from integrations.replay.run import (
    BREACHED,
    MET,
    NO_TARGET,
    PAUSED,
    UNANSWERED,
    Flip,
    GroupStats,
    ReplayResult,
    Summary,
    percentile,
)

__all__ = ["render_table", "result_as_json", "render_html", "stats_of", "PLAN_ORDER"]

#: Plans listed in this order when present (others follow alphabetically).
PLAN_ORDER = ("enterprise", "pro", "plus", "standard")
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
#: How many ticket ids the terminal lists per category (JSON and HTML list them all / more).
LIST_IDS = 20


def _plan_key(plan: str) -> tuple[int, str]:
    return (PLAN_ORDER.index(plan) if plan in PLAN_ORDER else len(PLAN_ORDER), plan)


def stats_of(group: GroupStats, target: int | None) -> dict[str, Any]:
    """One group's numbers as JSON (response minutes: median and p90, linear interpolation)."""
    values = sorted(group.responses)
    median, p90 = percentile(values, 0.5), percentile(values, 0.9)
    return {
        "tickets": group.tickets,
        "target_minutes": target,
        "met": group.counts[MET],
        "breached": group.counts[BREACHED],
        "no_target": group.counts[NO_TARGET],
        "unanswered": group.counts[UNANSWERED],
        "paused": group.counts[PAUSED],
        "achievement": None if group.achievement is None else round(group.achievement, 4),
        "answered": len(values),
        "median_response_minutes": None if median is None else round(median, 1),
        "p90_response_minutes": None if p90 is None else round(p90, 1),
    }


def _summary_json(summary: Summary) -> dict[str, Any]:
    groups = [{"plan": plan, "channel": channel, **stats_of(g, summary.targets.get(plan))}
              for (plan, channel), g in sorted(summary.groups.items(), key=lambda kv: (_plan_key(kv[0][0]), kv[0][1]))]
    plans = [{"plan": plan, **stats_of(g, summary.targets.get(plan))}
             for plan, g in sorted(summary.by_plan().items(), key=lambda kv: _plan_key(kv[0]))]
    return {
        "tickets": summary.tickets,
        "period": {"first_created": _iso(summary.first_created), "last_created": _iso(summary.last_created)},
        "total": stats_of(summary.total(), None),
        "plans": plans,
        "groups": groups,
        "emergencies": {plan: {"requested": e[0], "accepted": e[1], "refused": e[2]}
                        for plan, e in sorted(summary.emergencies.items(), key=lambda kv: _plan_key(kv[0]))},
        "breached_ids": summary.breached_ids,
    }


def _iso(t: dt.datetime | None) -> str | None:
    return None if t is None else format_instant(t)


def _flip_json(f: Flip) -> dict[str, Any]:
    r = (lambda x: None if x is None else round(x, 3))
    return {"id": f.id, "before": f.before, "after": f.after, "margin_before": r(f.margin_before),
            "margin_after": r(f.margin_after)}


def result_as_json(result: ReplayResult) -> dict[str, Any]:
    """The whole replay as one JSON object (see docs/replay.md for the fields)."""
    out: dict[str, Any] = {
        "source": result.source,
        "policies": result.policies,
        "as_of": _iso(result.as_of),
        "cached": result.cached,
        "seconds": round(result.seconds, 3),
        **_summary_json(result.summary),
        "skipped": [{"file": e.file, "line": e.line, "message": e.message} for e in result.skipped],
    }
    if result.compare is not None:
        out["compare"] = {
            "policies": result.compare_policies,
            **_summary_json(result.compare),
            "newly_breached": [_flip_json(f) for f in result.newly_breached],
            "newly_passed": [_flip_json(f) for f in result.newly_passed],
        }
    return out


# --------------------------------------------------------------------------- terminal


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.1f}%"


def _min(x: float | None) -> str:
    if x is None:
        return "-"
    if x >= 600:
        return f"{x / 60:.1f}h"
    return f"{x:.0f}m"


def _target(minutes: int | None) -> str:
    if minutes is None:
        return "none"
    return f"{minutes // 60}h" + (f"{minutes % 60}m" if minutes % 60 else "") if minutes >= 60 else f"{minutes}m"


def _table(rows: Sequence[Sequence[str]], right: Sequence[bool]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for n, row in enumerate(rows):
        cells = [c.rjust(w) if right[i] else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        out.append("  ".join(cells).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return out


def _rows(summary: Summary) -> list[tuple[str, str, GroupStats]]:
    rows: list[tuple[str, str, GroupStats]] = []
    plans = summary.by_plan()
    for plan in sorted(plans, key=_plan_key):
        channels = sorted((c, g) for (p, c), g in summary.groups.items() if p == plan)
        for channel, g in channels:
            rows.append((plan, channel, g))
        if len(channels) > 1:
            rows.append((plan, "all", plans[plan]))
    rows.append(("all", "all", summary.total()))
    return rows


def render_table(result: ReplayResult) -> str:
    """The terminal summary: per plan × channel, emergencies, and (compare) the flips."""
    s = result.summary
    period = ""
    if s.first_created and s.last_created:
        period = f", created {s.first_created.date()} .. {s.last_created.date()}"
    lines = [f"Replayed {s.tickets:,} tickets from {result.source}{period}",
             f"policies: {result.policies}" + (f"   compared with: {result.compare_policies}" if result.compare else ""),
             ""]
    if result.compare is None:
        header = ["plan", "channel", "tickets", "target", "met", "breached", "achieved", "median", "p90"]
        rows = [header]
        for plan, channel, g in _rows(s):
            st = stats_of(g, s.targets.get(plan))
            rows.append([plan, channel, f"{g.tickets:,}", _target(s.targets.get(plan)) if plan != "all" else "",
                         f"{st['met']:,}", f"{st['breached']:,}", _pct(g.achievement),
                         _min(st["median_response_minutes"]), _min(st["p90_response_minutes"])])
        lines += _table(rows, [False, False, True, True, True, True, True, True, True])
    else:
        c = result.compare
        header = ["plan", "channel", "tickets", "target", "target'", "breached", "breached'", "achieved",
                  "achieved'", "change", "median", "median'"]
        rows = [header]
        other = {(p, ch): g for p, ch, g in _rows(c)}
        for plan, channel, g in _rows(s):
            h = other.get((plan, channel), GroupStats())
            a, b = g.achievement, h.achievement
            change = "-" if a is None or b is None else f"{(b - a) * 100:+.1f}"
            rows.append([plan, channel, f"{g.tickets:,}", _target(s.targets.get(plan)) if plan != "all" else "",
                         _target(c.targets.get(plan)) if plan != "all" else "",
                         f"{g.counts[BREACHED]:,}", f"{h.counts[BREACHED]:,}", _pct(a), _pct(b), change,
                         _min(percentile(sorted(g.responses), 0.5)), _min(percentile(sorted(h.responses), 0.5))])
        lines += _table(rows, [False, False] + [True] * 10)
        lines.append("(' = under the compared policies; change in percentage points)")
    lines.append("")
    lines.append("median and p90: business minutes of the counting calendar to the first response, pending time "
                 "excluded; achieved = met / (met + breached)")
    emergencies = [(plan, e) for plan, e in sorted(s.emergencies.items(), key=lambda kv: _plan_key(kv[0]))]
    if emergencies:
        lines.append("")
        lines.append("24/7 emergencies requested: " + "; ".join(
            f"{plan} {e[0]:,} ({e[1]:,} accepted, {e[2]:,} refused)" for plan, e in emergencies))
    others = {k: sum(g.counts[k] for g in s.groups.values()) for k in (UNANSWERED, PAUSED)}
    if any(others.values()):
        lines.append(f"no verdict: {others[UNANSWERED]:,} unanswered before their deadline (closed, or open at "
                     f"{_iso(result.as_of)}), {others[PAUSED]:,} still pending")
    if result.compare is not None:
        for title, flips in (("newly breached", result.newly_breached), ("newly passed", result.newly_passed)):
            lines.append("")
            lines.append(f"{title} under {result.compare_policies}: {len(flips):,} ticket(s)")
            if flips:
                shown = ", ".join(f.id for f in flips[:LIST_IDS])
                more = f" ... and {len(flips) - LIST_IDS:,} more (--json lists all)" if len(flips) > LIST_IDS else ""
                lines.append("  " + shown + more)
    if result.skipped:
        lines.append("")
        lines.append(f"skipped {len(result.skipped):,} invalid line(s):")
        lines += [f"  {e}" for e in result.skipped[:LIST_IDS]]
        if len(result.skipped) > LIST_IDS:
            lines.append(f"  ... and {len(result.skipped) - LIST_IDS:,} more (--json lists all)")
    mode = "cached per ticket kind" if result.cached else "full engine per ticket"
    lines.append("")
    lines.append(f"{s.tickets:,} tickets in {result.seconds:.1f} s ({mode})")
    return "\n".join(lines)


# --------------------------------------------------------------------------- HTML

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
           f'<text x="{width - 10}" y="14" class="muted" text-anchor="end">{total:,} arrivals, '
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
            tip = f"{DAYS[d]} {h:02d}:00–{h + 1:02d}:00: {n:,} arrivals ({state})"
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


def _flip_table(title: str, flips: Sequence[Flip], limit: int = 500) -> str:
    if not flips:
        return f"<h3>{_e(title)}: none</h3>"
    rows = "".join(
        f"<tr><td>{_e(f.id)}</td><td>{_e(f.before)}</td><td>{_e(f.after)}</td>"
        f"<td class=num>{'' if f.margin_before is None else f'{f.margin_before:+.0f}'}</td>"
        f"<td class=num>{'' if f.margin_after is None else f'{f.margin_after:+.0f}'}</td></tr>"
        for f in flips[:limit])
    more = f"<p class=muted>… and {len(flips) - limit:,} more (the JSON output lists all).</p>" if len(flips) > limit else ""
    return (f"<h3>{_e(title)}: {len(flips):,}</h3><table><thead><tr><th>ticket</th><th>before</th><th>after</th>"
            f"<th>margin before</th><th>margin after</th></tr></thead><tbody>{rows}</tbody></table>{more}")


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
    if result.compare is not None:
        parts.append(f"<h2>What changes under <code>{_e(result.compare_policies)}</code></h2><div class=card>"
                     + _flip_table("Newly breached", result.newly_breached)
                     + _flip_table("Newly passed", result.newly_passed)
                     + "<p class=muted>Margins in business minutes from the deadline (negative = early).</p></div>")
    if result.skipped:
        items = "".join(f"<li><code>{_e(e)}</code></li>" for e in result.skipped[:200])
        parts.append(f"<h2>Skipped input lines: {len(result.skipped):,}</h2><div class=card><ul>{items}</ul></div>")
    parts.append(f"<p class=muted>Generated by policydesk replay in {result.seconds:.1f} s"
                 f" ({'cached per ticket kind' if result.cached else 'full engine per ticket'}).</p>")
    parts.append(f"<script>{_SCRIPT}</script></body></html>")
    return "".join(parts)


def dumps(result: ReplayResult) -> str:
    return json.dumps(result_as_json(result), indent=2, ensure_ascii=False)
