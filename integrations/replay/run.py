"""Replay past tickets under a set of policies: due time, met or breached, by how much.

One engine: every ticket's plan, emergency verdict, counting calendar and deadline come
from `plugin.engine.Engine` and the deadline clock `plugin.clock` (`deadline` and its inverse
`business_minutes`, the live engine's own) — never from a re-implementation.

What one ticket gets (`Outcome`):

- the ticket is seen as the live engine saw it when the first response came: the pending
  periods that started before the first response pause the clock, later ones do not
  matter (the first-response clock had stopped);
- ``status``: `MET` (answered at or before the deadline), `BREACHED` (answered after it, or
  not answered although the deadline passed before the ticket was closed or before
  ``as_of`` for a ticket still open), `NO_TARGET` (the plan guarantees no response time),
  `UNANSWERED` (no response, and the deadline had not passed when the ticket was closed /
  at ``as_of``), `PAUSED` (no deadline: still pending, target not reached);
- ``response_minutes``: business minutes of the counting calendar from creation to the
  first response, pending time excluded;
- ``margin_minutes``: business minutes (pending excluded) from the deadline to the first
  response (to the close or ``as_of`` for an unanswered breach): negative = early. A
  response after the deadline but outside opening hours is a breach by 0 minutes: the
  target was reached at the deadline, as the live escalation says.

The cache (fast path)
---------------------
`Engine.evaluate` costs tens of µs; a million tickets would take minutes. The cache rests on
one assumption, not on a list of what the built-ins read: with only the built-in plugins
registered, the Decision's plan, emergency verdict and calendar depend on what a record
says about the request — every field but its instants (created, answered, pending, closed)
and the names shown to people (id, number, title, and the organization's name: its plan is a
field of its own) — and not on when it happened or who asked; the instants only feed the
deadline clock. So the key is all the other fields of the record
(`CACHE_KEY_FIELDS`, derived from `TicketRecord`'s fields, so a new field joins the key by
itself), the engine runs once per distinct key (on the first ticket with that key) and the
clock (`plugin.clock.deadline`) once per ticket — exactly what the built-in
``policydesk_first_response_due`` computes. A test checks equality with the full engine on
a large random sample. When any other plugin is registered (or a built-in one blocked),
every ticket goes through the full engine (``exact``), since a site plugin may read
anything.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import multiprocessing
import os
import time
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, NamedTuple
from zoneinfo import ZoneInfo

import pluggy

from integrations.progress import ProgressBar
from integrations.replay.outcome import ACCEPTED, BREACHED, MET, NO_TARGET, PAUSED, REFUSED, STATUSES, UNANSWERED, Outcome
from integrations.replay.summary import Flip, GroupStats, InputErrors, ReplayResult, Summary, percentile
from integrations.replay.records import (
    RecordError,
    TicketRecord,
    check_csv_header,
    detect_format,
    open_text,
    parse_lines,
)
from plugin.engine import Engine
from plugin.hooks import BUILTIN_PLUGINS
from plugin.clock import business_minutes, deadline
from plugin.manager import get_plugin_manager
from plugin.model import Decision, Organization, Policies, Ticket

__all__ = [
    "BREACHED", "MET", "NO_TARGET", "PAUSED", "UNANSWERED", "STATUSES",
    "Outcome", "Replayer", "Summary", "GroupStats", "ReplayResult", "Flip",
    "replay_records", "replay_file", "only_builtin_plugins", "percentile", "ProgressBar",
]

def policy_version(policies: Policies) -> str:
    """A short digest naming the policies in force: ``policies.version`` when the loader gives
    one, else SHA-256 of the policy files (name and bytes, in name order), 12 hex digits."""
    given = getattr(policies, "version", None)
    if isinstance(given, str) and given:
        return given
    digest = hashlib.sha256()
    directory = Path(policies.source)
    for path in sorted(directory.glob("*.yaml")) if directory.is_dir() else ():
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def only_builtin_plugins(pm: pluggy.PluginManager) -> bool:
    """Whether exactly the built-in hook modules are registered (the cache is sound)."""
    registered = dict(pm.list_name_plugin())
    return registered.keys() == BUILTIN_PLUGINS.keys() and all(
        registered[name] is module for name, module in BUILTIN_PLUGINS.items())


#: What a record says about the request (everything but instants and labels): the cache key.
CACHE_KEY_FIELDS = tuple(f.name for f in dataclass_fields(TicketRecord)
                         if f.name not in {"id", "number", "title", "organization", "created_at",
                                           "first_response_at", "pending", "closed_at"})
#: Tickets per task sent to a worker process.
CHUNK_LINES = 10_000


class _Rule(NamedTuple):
    plan: str
    calendar_name: str
    calendar: Any
    minutes: int | None
    emergency: str


def ticket_of(record: TicketRecord) -> Ticket:
    """The `Ticket` the live engine saw when the first response came (see the module doc)."""
    paused = record.pending
    answered = record.first_response_at
    if answered is not None and paused:
        paused = tuple(p for p in paused if p[0] < answered)
    return Ticket(
        id=record.id, channel=record.channel, created_at=record.created_at, category=record.category,
        language=record.language, emergency_requested=record.emergency,
        state="open" if answered is not None else "new", first_response_at=answered, paused=paused,
    )


class Replayer:
    """Replays tickets under one set of policies; build once, call `replay` per ticket.

    :param exact: run the full engine for every ticket even when the cache is sound.
    :param as_of: when the export was taken: an unanswered ticket still open is breached
        if its deadline is before this instant (default: now).
    """

    def __init__(self, policies: Policies, pm: pluggy.PluginManager | None = None, *, exact: bool = False,
                 as_of: dt.datetime | None = None) -> None:
        self.policies = policies
        self.pm = pm if pm is not None else get_plugin_manager()
        self.engine = Engine(policies, self.pm)
        self.exact = exact or not only_builtin_plugins(self.pm)
        self.as_of = as_of or dt.datetime.now(dt.timezone.utc)
        self._rules: dict[tuple[Any, ...], _Rule] = {}
        self.zone = ZoneInfo(policies.default_timezone)

    def _decide(self, ticket: Ticket, record: TicketRecord, now: dt.datetime) -> tuple[_Rule, Any]:
        organization = Organization(id=record.organization, name=record.organization or "", plan=record.plan)
        decision = self.engine.evaluate(ticket, organization, now)
        assert decision.plan is not None and decision.calendar is not None
        emergency = decision.emergency.value if decision.emergency is not None else None
        state = "" if emergency is None or not emergency.requested else (ACCEPTED if emergency.eligible else REFUSED)
        name = decision.calendar.value
        rule = _Rule(decision.plan.value, name, self.policies.calendars[name],
                     self.policies.plans[decision.plan.value].first_response_minutes, state)
        return rule, decision

    def rule_for(self, record: TicketRecord) -> _Rule:
        key = tuple(getattr(record, name) for name in CACHE_KEY_FIELDS)
        rule = self._rules.get(key)
        if rule is None:
            ticket = Ticket(id=record.id, channel=record.channel, created_at=record.created_at,
                            category=record.category, language=record.language,
                            emergency_requested=record.emergency)
            rule = self._rules[key] = self._decide(ticket, record, record.created_at)[0]
        return rule

    def replay(self, record: TicketRecord) -> Outcome:
        if self.exact:
            return self.replay_with_decision(record)[0]
        ticket = ticket_of(record)
        rule = self.rule_for(record)
        no_target = rule.minutes is None
        due = None if no_target else deadline(rule.calendar, ticket.created_at, rule.minutes, ticket.paused)
        return self._outcome(record, ticket, rule, due, no_target)

    def replay_with_decision(self, record: TicketRecord) -> tuple[Outcome, Decision]:
        """The outcome and the full engine's `Decision` (scope, emergency reasons, ...) of one
        ticket, evaluated at its first response (else its close, else its creation)."""
        ticket = ticket_of(record)
        now = record.first_response_at or record.closed_at or record.created_at
        rule, decision = self._decide(ticket, record, now)
        verdict = decision.first_response_due
        due = None if verdict is None else verdict.value
        return self._outcome(record, ticket, rule, due, rule.minutes is None and due is None), decision

    def _outcome(self, record: TicketRecord, ticket: Ticket, rule: _Rule, due: dt.datetime | None,
                 no_target: bool) -> Outcome:
        calendar, paused = rule.calendar, ticket.paused
        answered = record.first_response_at
        response = None if answered is None else business_minutes(calendar, record.created_at, answered, paused)
        margin = None
        if no_target:
            status = NO_TARGET
        elif due is None:
            status = PAUSED
        elif answered is not None:
            if answered <= due:
                status, margin = MET, -business_minutes(calendar, answered, due, paused)
            else:
                status, margin = BREACHED, business_minutes(calendar, due, answered, paused)
        else:
            end = record.closed_at or self.as_of
            if end > due:
                status, margin = BREACHED, business_minutes(calendar, due, end, paused)
            else:
                status = UNANSWERED
        return Outcome(record.id, rule.plan, record.channel, rule.calendar_name, rule.minutes, rule.emergency, due,
                       status, response, margin, record.created_at, answered, record.organization)


# --------------------------------------------------------------------------- the work of one chunk


class _Work:
    """What a worker (or the main process, with one job) holds: the replayer(s)."""

    def __init__(self, main: Replayer, other: Replayer | None, keep_outcomes: bool) -> None:
        self.main, self.other, self.keep = main, other, keep_outcomes

    def run(self, items: Iterable[TicketRecord | RecordError]) -> dict[str, Any]:
        summary, other_summary = Summary(), (Summary() if self.other is not None else None)
        errors: list[RecordError] = []
        flips_bad: list[Flip] = []
        flips_good: list[Flip] = []
        outcomes: list[Outcome] = []
        zone = self.main.zone
        replay, add = self.main.replay, summary.add
        other = self.other
        for item in items:
            if isinstance(item, RecordError):
                errors.append(item)
                continue
            try:
                o = replay(item)
            except (ValueError, OverflowError) as error:  # e.g. a date the calendars cannot index
                errors.append(RecordError(f"ticket {item.id}: cannot replay: {error}"))
                continue
            add(o, zone)
            if self.keep:
                outcomes.append(o)
            if other is not None:
                p = other.replay(item)
                other_summary.add(p, zone)  # type: ignore[union-attr]
                if p.status == BREACHED and o.status != BREACHED:
                    flips_bad.append(Flip(o.id, o.status, p.status, o.margin_minutes, p.margin_minutes,
                                          o.organization, o.plan, o.channel))
                elif o.status == BREACHED and p.status != BREACHED:
                    flips_good.append(Flip(o.id, o.status, p.status, o.margin_minutes, p.margin_minutes,
                                           o.organization, o.plan, o.channel))
        return {"summary": summary, "other": other_summary, "errors": errors, "bad": flips_bad,
                "good": flips_good, "outcomes": outcomes}


_WORK: _Work | None = None


def _init_worker(policies_dir: str, compare_dir: str | None, exact: bool, as_of: dt.datetime,
                 keep: bool) -> None:
    global _WORK
    from plugin.policy import load_policies

    pm = get_plugin_manager()
    main = Replayer(load_policies(policies_dir), pm, exact=exact, as_of=as_of)
    other = None if compare_dir is None else Replayer(load_policies(compare_dir), pm, exact=exact, as_of=as_of)
    _WORK = _Work(main, other, keep)


def _run_chunk(task: tuple[str, str, list[str] | None, int, list[str]]) -> dict[str, Any]:
    file, fmt, header, first, lines = task
    assert _WORK is not None
    result = _WORK.run(parse_lines(lines, first, fmt, header, file))
    result["lines"] = len(lines)
    result["bytes"] = sum(len(line) for line in lines)
    return result


# --------------------------------------------------------------------------- entry points


def _chunks(file: str, fmt: str, size: int) -> Iterator[tuple[str, str, list[str] | None, int, list[str]]]:
    with open_text(file) as fh:
        header: list[str] | None = None
        line_no = 1
        if fmt == "csv":
            import csv

            first_line = fh.readline()
            if not first_line.strip():
                raise RecordError("empty file: expected a header line with the column names", file, 1)
            header = check_csv_header(next(csv.reader([first_line])), file)
            line_no = 2
        while True:
            lines = fh.readlines(size * 200)  # ~200 bytes a line: about `size` lines
            if not lines:
                return
            yield (file, fmt, header, line_no, lines)
            line_no += len(lines)


def replay_file(
    path: str | os.PathLike[str],
    policies_dir: str | os.PathLike[str],
    *,
    compare_dir: str | os.PathLike[str] | None = None,
    fmt: str | None = None,
    jobs: int | None = None,
    exact: bool = False,
    as_of: dt.datetime | None = None,
    skip_invalid: bool = False,
    keep_outcomes: bool = False,
    progress: ProgressBar | bool | None = None,
    outcomes_sink: Callable[[list[Outcome]], None] | None = None,
    pm: pluggy.PluginManager | None = None,
) -> ReplayResult:
    """Replay every ticket of a JSONL/CSV file under ``policies_dir`` (and ``compare_dir``).

    ``jobs`` worker processes (default: the CPU count; 1 = in this process, required with a
    custom ``pm``). Bad lines raise `InputErrors` listing every one, unless
    ``skip_invalid``: then they are skipped and listed in the result. ``outcomes_sink``
    receives every ticket's `Outcome`, chunk by chunk, in input order.
    """
    from plugin.policy import load_policies

    file = os.fspath(path)
    fmt = detect_format(file, fmt)
    as_of = as_of or dt.datetime.now(dt.timezone.utc)
    policies = load_policies(policies_dir)  # raises PolicyErrors before any work starts
    other_policies = load_policies(compare_dir) if compare_dir is not None else None
    if pm is not None:
        jobs = 1  # worker processes build their own plugin manager: a given one is used here only
    pm = pm if pm is not None else get_plugin_manager()
    cached = not exact and only_builtin_plugins(pm)
    jobs = jobs or os.cpu_count() or 1
    keep = keep_outcomes or outcomes_sink is not None
    size = os.path.getsize(file)
    bar = progress if isinstance(progress, ProgressBar) else ProgressBar(size, enabled=None if progress is None else bool(progress))
    bar.total = max(1, size)
    result = ReplayResult(Summary(), file, os.fspath(policies_dir), cached=cached, as_of=as_of,
                          timezone=policies.default_timezone, calendars=dict(policies.calendars),
                          policy_version=policy_version(policies),
                          compare_policy_version="" if other_policies is None else policy_version(other_policies))
    if other_policies is not None:
        result.compare = Summary()
        result.compare_policies = os.fspath(compare_dir)  # type: ignore[arg-type]
    errors: list[RecordError] = []
    done_bytes = done_tickets = 0
    started = time.perf_counter()

    def take(part: dict[str, Any]) -> None:
        nonlocal done_bytes, done_tickets
        result.summary.merge(part["summary"])
        if result.compare is not None:
            result.compare.merge(part["other"])
        errors.extend(part["errors"])
        result.newly_breached.extend(part["bad"])
        result.newly_passed.extend(part["good"])
        if outcomes_sink is not None and part["outcomes"]:
            outcomes_sink(part["outcomes"])
        done_bytes += part["bytes"]
        done_tickets += part["lines"]
        bar.update(done_bytes, done_tickets)

    tasks = _chunks(file, fmt, CHUNK_LINES)
    if jobs <= 1:
        main = Replayer(policies, pm, exact=exact, as_of=as_of)
        other = Replayer(other_policies, pm, exact=exact, as_of=as_of) if other_policies is not None else None
        work = _Work(main, other, keep)
        for task in tasks:
            part = work.run(parse_lines(task[4], task[3], task[1], task[2], task[0]))
            part["lines"] = len(task[4])
            part["bytes"] = sum(len(line) for line in task[4])
            take(part)
    else:
        context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
        init = (os.fspath(policies_dir), None if compare_dir is None else os.fspath(compare_dir), exact, as_of, keep)
        with context.Pool(jobs, initializer=_init_worker, initargs=init) as pool:
            for part in pool.imap(_run_chunk, tasks):
                take(part)
    bar.update(done_bytes, done_tickets, force=True)
    bar.close()
    result.seconds = time.perf_counter() - started
    if errors and not skip_invalid:
        raise InputErrors(errors, done_tickets)
    result.skipped = errors
    return result


def replay_records(
    records: Iterable[TicketRecord],
    policies: Policies,
    *,
    compare: Policies | None = None,
    pm: pluggy.PluginManager | None = None,
    exact: bool = False,
    as_of: dt.datetime | None = None,
    keep_outcomes: bool = True,
    source: str = "<records>",
) -> tuple[ReplayResult, list[Outcome]]:
    """Replay records in this process (tests, `--from-zammad`); returns the result and
    every ticket's `Outcome` (when ``keep_outcomes``)."""
    pm = pm if pm is not None else get_plugin_manager()
    as_of = as_of or dt.datetime.now(dt.timezone.utc)
    main = Replayer(policies, pm, exact=exact, as_of=as_of)
    other = Replayer(compare, pm, exact=exact, as_of=as_of) if compare is not None else None
    started = time.perf_counter()
    part = _Work(main, other, keep_outcomes).run(records)
    result = ReplayResult(part["summary"], source, policies.source, compare=part["other"],
                          compare_policies=None if compare is None else compare.source,
                          newly_breached=part["bad"], newly_passed=part["good"], skipped=part["errors"],
                          cached=not main.exact, seconds=time.perf_counter() - started, as_of=as_of,
                          timezone=policies.default_timezone, calendars=dict(policies.calendars),
                          policy_version=policy_version(policies),
                          compare_policy_version="" if compare is None else policy_version(compare))
    return result, part["outcomes"]
