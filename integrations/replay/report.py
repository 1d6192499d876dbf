"""The replay's outputs for scripts and terminals: a JSON summary and a table.

The HTML report is `integrations.replay.report_html`.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Sequence

from integrations.replay.records import format_instant
from integrations.replay.outcome import BREACHED, MET, NO_TARGET, PAUSED, UNANSWERED
from integrations.replay.summary import Flip, GroupStats, ReplayResult, Summary, percentile

__all__ = ["render_table", "result_as_json", "stats_of", "PLAN_ORDER", "count"]

#: Plans listed in this order when present (others follow alphabetically).
PLAN_ORDER = ("enterprise", "pro", "plus", "standard")
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
#: How many ticket ids the terminal lists per category (JSON and HTML list them all / more).
LIST_IDS = 20


def count(n: int, one: str, many: str | None = None) -> str:
    """``1 arrival``, ``2 arrivals``: a number with its noun in the right number."""
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


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
        "breaches": [{"id": b.id, "organization": b.organization, "plan": b.plan, "channel": b.channel,
                      "created_at": _iso(b.created_at), "due": _iso(b.due), "first_response_at": _iso(b.first_response_at),
                      "late_minutes": None if b.margin_minutes is None else round(b.margin_minutes, 3)}
                     for b in summary.breaches],
        "organizations": [{"organization": name or None, "tickets": c[0], "met": c[1], "breached": c[2]}
                          for name, c in sorted(summary.organizations.items())],
        "months": [{"month": month, "tickets": c[0], "met": c[1], "breached": c[2]}
                   for month, c in sorted(summary.months.items())],
    }


def _iso(t: dt.datetime | None) -> str | None:
    return None if t is None else format_instant(t)


def _flip_json(f: Flip) -> dict[str, Any]:
    r = (lambda x: None if x is None else round(x, 3))
    return {"id": f.id, "organization": f.organization, "plan": f.plan, "channel": f.channel, "before": f.before,
            "after": f.after, "margin_before": r(f.margin_before), "margin_after": r(f.margin_after)}


def result_as_json(result: ReplayResult) -> dict[str, Any]:
    """The whole replay as one JSON object (see docs/replay.md for the fields)."""
    out: dict[str, Any] = {
        "source": result.source,
        "policies": result.policies,
        "policy_version": result.policy_version,
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
    version = f" ({result.policy_version})" if result.policy_version else ""
    lines = [f"Replayed {count(s.tickets, 'ticket')} from {result.source}{period}",
             f"policies: {result.policies}{version}"
             + (f"   compared with: {result.compare_policies}" if result.compare else ""),
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
    if result.compare is None and s.breached_ids:
        lines.append("")
        lines.append(f"breached: {count(len(s.breached_ids), 'ticket')}")
        shown = ", ".join(s.breached_ids[:LIST_IDS])
        more = f" ... and {len(s.breached_ids) - LIST_IDS:,} more (--json lists all)" if len(s.breached_ids) > LIST_IDS else ""
        lines.append("  " + shown + more)
    if result.compare is not None:
        for title, flips in (("newly breached", result.newly_breached), ("newly passed", result.newly_passed)):
            lines.append("")
            lines.append(f"{title} under {result.compare_policies}: {count(len(flips), 'ticket')}")
            if flips:
                shown = ", ".join(f.id for f in flips[:LIST_IDS])
                more = f" ... and {len(flips) - LIST_IDS:,} more (--json lists all)" if len(flips) > LIST_IDS else ""
                lines.append("  " + shown + more)
    if result.skipped:
        lines.append("")
        lines.append(f"skipped {count(len(result.skipped), 'invalid line')}:")
        lines += [f"  {e}" for e in result.skipped[:LIST_IDS]]
        if len(result.skipped) > LIST_IDS:
            lines.append(f"  ... and {len(result.skipped) - LIST_IDS:,} more (--json lists all)")
    mode = "cached per ticket kind" if result.cached else "full engine per ticket"
    lines.append("")
    lines.append(f"{count(s.tickets, 'ticket')} in {result.seconds:.1f} s ({mode}); as of {_iso(result.as_of)}")
    return "\n".join(lines)


def dumps(result: ReplayResult) -> str:
    return json.dumps(result_as_json(result), indent=2, ensure_ascii=False)
