"""The engine's own commands — validate, simulate, explain — and the one CLI error boundary.

The ``policydesk`` console command is built on the integrations side (`integrations.cli`):
it makes one parser, mounts these commands with `add_engine_commands` and its own next to
them, and runs it through `run_cli`. ``python -m plugin.cli`` offers the engine's commands
alone. Nothing here imports `integrations`.

Exit codes (`run_cli`): 0 success, 1 a `UserError` (one message saying what and where),
2 usage error, 130 interrupted, 141 output pipe closed (quietly), 3 a bug (traceback).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from plugin.bundled import POLICIES_ENV, default_policies_dir
from plugin.errors import UserError
from plugin.model import Decision, Organization, Policies, Ticket, Verdict
from plugin.timefmt import human_instant

__all__ = ["POLICIES_ENV", "POLICIES_HELP", "UserError", "add_engine_commands", "build_parser", "default_policies_dir",
           "load", "main", "run_cli"]


def load(directory: str) -> Policies:
    """Load policies or raise `UserError` listing every problem with file:line:column."""
    from plugin.policy import PolicyErrors, load_policies

    try:
        return load_policies(directory)
    except PolicyErrors as errors:
        raise UserError("\n".join(str(e) for e in errors.errors)) from None


# --------------------------------------------------------------------------- commands


def cmd_validate(args: argparse.Namespace) -> int:
    from plugin.policy import validate_policies

    errors = validate_policies(args.policies)
    if getattr(args, "json", False):
        print(json.dumps({
            "directory": str(args.policies),
            "valid": not errors,
            "errors": [{"file": e.file, "line": e.line, "column": e.column, "path": e.path, "message": e.message}
                       for e in errors],
        }, indent=2))
        return 1 if errors else 0
    for error in errors:
        print(error, file=sys.stderr)
    if errors:
        print(f"{len(errors)} error{'s' if len(errors) != 1 else ''} in {args.policies}", file=sys.stderr)
        return 1
    print(f"{args.policies}: policies are valid")
    return 0


def parse_instant(text: str | None, timezone: str) -> dt.datetime:
    """``--at``: with an offset it is that instant; without one, wall time in ``timezone``."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(timezone)
    if text is None:
        return dt.datetime.now(zone)
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise UserError(f"--at: {text!r} is not an ISO 8601 date-time such as 2026-11-27T21:00 or 2026-11-27T21:00+01:00") from None
    return parsed.replace(tzinfo=zone) if parsed.tzinfo is None else parsed


def simulated_request(args: argparse.Namespace, policies: Policies) -> tuple[Ticket, Organization, dt.datetime]:
    if args.plan not in policies.plans:
        raise UserError(f"--plan: unknown plan {args.plan!r}; the policies define: {', '.join(policies.plans)}")
    at = parse_instant(args.at, policies.default_timezone)
    organization = Organization(id=None, name="simulated", plan=args.plan, account_managers=dict(args.manager or []),
                                partner=getattr(args, "partner", False))
    ticket = Ticket(
        id=None,
        channel=args.channel,
        created_at=at,
        category=args.category,
        language=args.language,
        language_source=getattr(args, "language_source", "ticket") if args.language else None,
        emergency_requested=args.emergency,
    )
    return ticket, organization, at


def decide(args: argparse.Namespace) -> tuple[Decision, Policies, Ticket]:
    from plugin.engine import Engine

    policies = load(args.policies)
    ticket, organization, at = simulated_request(args, policies)
    return Engine(policies).evaluate(ticket, organization, at), policies, ticket


def cmd_simulate(args: argparse.Namespace) -> int:
    decision, _, ticket = decide(args)
    if args.json:
        print(json.dumps(decision_as_json(decision, ticket), indent=2))
    else:
        print(render_summary(decision, ticket))
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    decision, policies, ticket = decide(args)
    if getattr(args, "json", False):
        document = decision_as_json(decision, ticket)
        document["opening_hours_counted"] = [
            {"start": _iso(start), "end": _iso(end), "minutes": minutes}
            for start, end, minutes in counted_hours(decision, policies, ticket)
        ]
        print(json.dumps(document, indent=2))
    else:
        print(render_explanation(decision, policies, ticket))
    return 0


# --------------------------------------------------------------------------- output


def _iso(t: dt.datetime | None) -> str | None:
    return None if t is None else t.isoformat(timespec="seconds")


def decision_as_json(decision: Decision, ticket: Ticket) -> dict[str, Any]:
    """The Decision as plain JSON: values first, then each field's source and reason."""
    emergency = decision.emergency.value if decision.emergency else None
    scope = decision.scope.value if decision.scope else None
    escalation = decision.escalation.value if decision.escalation else None
    fields = {
        "plan": decision.plan,
        "scope": decision.scope,
        "emergency": decision.emergency,
        "calendar": decision.calendar,
        "first_response_due": decision.first_response_due,
        "account_managers": decision.account_managers,
        "escalation": decision.escalation,
        "priority": decision.priority,
        "language": decision.language,
        "eligibility": decision.eligibility,
        "advice": decision.advice,
        "routing": decision.routing,
    }
    return {
        "plan": _value(decision.plan),
        "channel": ticket.channel,
        "created_at": _iso(ticket.created_at),
        "calendar": _value(decision.calendar),
        "first_response_due": _iso(_value(decision.first_response_due)),
        "emergency": None if emergency is None else {
            "requested": emergency.requested,
            "eligible": emergency.eligible,
            "reasons": list(emergency.reasons),
            "refused_for": list(emergency.refused_for),
            "reply": emergency.reply,
            "reply_language": emergency.reply_language,
        },
        "scope": None if scope is None else {
            "in_scope": scope.in_scope,
            "category": scope.category,
            "referral": scope.referral,
        },
        "account_managers": dict(_value(decision.account_managers) or {}),
        "escalation": None if escalation is None else {
            "step": escalation.step.name if escalation.step else None,
            "due": {name: _iso(t) for name, t in escalation.due.items()},
            "next_step": escalation.next_step,
            "next_due": _iso(escalation.next_due),
        },
        "priority": _value(decision.priority),
        "language": _value(decision.language),
        "eligible_for_plan": _value(decision.eligibility),
        "advice": plain(_value(decision.advice)),
        "routing": plain(_value(decision.routing)),
        "notifications": [plain(n) for n in decision.notifications],
        "tags": list(decision.tag_names),
        "tag_sources": [{"tag": c.value, "source": c.source, "reason": c.reason} for c in decision.tags],
        "note": decision.note_text,
        "why": {
            name: {"source": v.source, "reason": v.reason} for name, v in fields.items() if v is not None
        },
    }


def counted_hours(decision: Decision, policies: Policies,
                  ticket: Ticket) -> list[tuple[dt.datetime, dt.datetime, float]]:
    """The open intervals counted towards the first-response deadline, each with its real
    elapsed minutes (an interval across a DST change is not its wall-clock difference)."""
    due = _value(decision.first_response_due)
    if due is None or decision.calendar is None:
        return []
    calendar = policies.calendars[decision.calendar.value]
    return [(start, end, (end.astimezone(dt.UTC) - start.astimezone(dt.UTC)).total_seconds() / 60)
            for start, end in calendar.open_intervals(ticket.created_at, due)]


def plain(value: Any) -> Any:
    """A model value as JSON: dataclasses as objects, instants in ISO 8601, tuples as lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dt.datetime):
        return _iso(value)
    if isinstance(value, (list, tuple, frozenset, set)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return value


def _value(verdict: Verdict[Any] | None) -> Any:
    return None if verdict is None else verdict.value


def render_summary(decision: Decision, ticket: Ticket) -> str:
    due = _value(decision.first_response_due)
    emergency = decision.emergency.value if decision.emergency else None
    lines = [
        f"plan                {_value(decision.plan)}",
        f"channel             {ticket.channel}",
        f"received            {human_instant(ticket.created_at)}",
        f"counting hours      {_value(decision.calendar)}",
        f"first response due  {human_instant(due) if due else 'no guaranteed time'}",
    ]
    if emergency is not None and emergency.requested:
        lines.append(f"emergency           {'granted' if emergency.eligible else 'refused'}: {'; '.join(emergency.reasons)}")
    lines += [
        f"priority            {_value(decision.priority)}",
        f"tags                {' '.join(decision.tag_names)}",
        "",
        "note for agents:",
        *("  " + line for line in decision.note_text.splitlines()),
    ]
    return "\n".join(lines)


def render_explanation(decision: Decision, policies: Policies, ticket: Ticket) -> str:
    """Every field of the decision with its value, the hook that set it and why."""
    out: list[str] = []

    def field(name: str, verdict: Verdict[Any] | None, shown: Callable[[Any], str] = str) -> None:
        if verdict is None:
            out.append(f"{name}: (no hook had an opinion)")
            return
        out.append(f"{name}: {shown(verdict.value)}")
        out.append(f"    set by {verdict.source}: {verdict.reason}")

    field("plan", decision.plan)
    field("language", decision.language, lambda code: code or "unknown")
    field("eligible for the plan", decision.eligibility, lambda ok: "yes" if ok else "no")
    field("scope", decision.scope, lambda s: "in scope" if s.in_scope else f"out of scope ({s.category})")
    field("emergency", decision.emergency,
          lambda e: "granted" if e.eligible else ("refused" if e.requested else "not requested"))
    if decision.emergency and decision.emergency.value.requested:
        out.extend(f"    - {reason}" for reason in decision.emergency.value.reasons)
        if decision.emergency.value.reply:
            out.append(f"    ready reply ({decision.emergency.value.reply_language}): {decision.emergency.value.reply}")
    field("calendar", decision.calendar)
    field("first response due", decision.first_response_due,
          lambda t: human_instant(t) + f" ({t.isoformat()})" if t else "no guaranteed response time")
    counted = counted_hours(decision, policies, ticket)
    if decision.calendar is not None and _value(decision.first_response_due) is not None:
        out.append(f"    opening hours counted ({policies.calendars[decision.calendar.value].timezone}):")
        for start, end, minutes in counted:
            zone = f" {end.tzname()}" if end.tzname() != start.tzname() else ""  # a DST change inside
            out.append(f"      {human_instant(start)} -> {end.strftime('%H:%M')}{zone}  ({minutes:g} min)")
    field("account managers", decision.account_managers,
          lambda m: ", ".join(f"{role}={who}" for role, who in m.items()) or "none")
    field("escalation", decision.escalation, lambda s: s.step.name if s.step else "no step reached")
    if decision.escalation is not None:
        for name, t in decision.escalation.value.due.items():
            out.append(f"    {name} due {human_instant(t)}")
    field("priority", decision.priority)
    if decision.advice is not None:
        field("customised advice", decision.advice, lambda a: "not included" if not a.included else (
            "within the advice hours" if a.queued_until is None else f"queued until {human_instant(a.queued_until)}"))
    field("routing", decision.routing, lambda r: ", ".join(
        part for part in (f"group {r.group}" if r.group else "", f"owner {r.owner}" if r.owner else "") if part)
        or "stays where it is")
    if decision.notifications:
        out.append("notifications:")
        for n in decision.notifications:
            when = "now" if n.immediate else f"at {human_instant(n.deliver_at)}"
            out.append(f"    step {n.step_id} -> {n.kind} {n.recipient} ({n.person or 'nobody'}) {when}"
                       f"  (set by {n.source}: {n.reason})")
    out.append("tags:")
    out.extend(f"    {c.value}  (set by {c.source}: {c.reason})" for c in decision.tags)
    out.append("note for agents:")
    out.extend(f"    {c.value}  [{c.source}]" for c in decision.notes)
    return "\n".join(out)


# --------------------------------------------------------------------------- parser


def _manager(text: str) -> tuple[str, str]:
    role, sep, person = text.partition("=")
    if not sep or not role or not person:
        raise argparse.ArgumentTypeError(f"expected ROLE=PERSON, e.g. account_manager=ana@example.com, not {text!r}")
    return role, person


#: Help text of every ``--policies`` option, engine's and integrations' alike.
POLICIES_HELP = f"policy directory (default: ${POLICIES_ENV} or ./policies)"


def add_engine_commands(sub: Any, policies_default: str | None = None) -> None:
    """Mount ``validate``, ``simulate`` and ``explain`` on ``sub`` (what ``add_subparsers`` returned).

    :param policies_default: the ``--policies`` default; `default_policies_dir()` when ``None``.
    """
    default = default_policies_dir() if policies_default is None else policies_default
    validate = sub.add_parser("validate", help="check the policy files; list every error with file:line:column",
                              description="Check the policy files; list every error with file:line:column. "
                                          "Exit 0 when valid, 1 when not.")
    validate.add_argument("--policies", default=default, metavar="DIR", help=POLICIES_HELP)
    validate.add_argument("--json", action="store_true",
                          help='print one JSON object: {"directory", "valid", "errors": [{file, line, column, '
                               'path, message}]}')
    validate.set_defaults(func=cmd_validate)

    for name, func, text in (
        ("simulate", cmd_simulate, "what the engine decides for such a request"),
        ("explain", cmd_explain, "the decision for such a request, field by field, with the hook that set it and why"),
    ):
        p = sub.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        p.add_argument("--plan", required=True, help="the organization's plan, e.g. standard, plus, pro, enterprise")
        p.add_argument("--channel", required=True, help="how the request came in: phone, email, web, chat, ...")
        p.add_argument("--at", metavar="ISO8601",
                       help="when the request arrived; with an offset it is that instant, without one it is "
                            "wall time in the policies' time zone (default: now)")
        p.add_argument("--emergency", action="store_true", help="the customer asks for 24/7 emergency handling")
        p.add_argument("--category", help="request category, e.g. infrastructure, webmastering")
        p.add_argument("--language", help="customer's language (ISO 639-1), e.g. fr, en, de")
        p.add_argument("--language-source", choices=("ticket", "article", "customer"), default="ticket",
                       help="where the language was read: set on the ticket by an agent (default), detected in "
                            "the article, or the customer's locale")
        p.add_argument("--partner", action="store_true", help="the organization is a partner")
        p.add_argument("--manager", action="append", type=_manager, metavar="ROLE=PERSON",
                       help="who fills an account-manager role, e.g. account_manager=ana@example.com (repeatable)")
        p.add_argument("--policies", default=default, metavar="DIR", help=POLICIES_HELP)
        p.add_argument("--json", action="store_true",
                       help="print one JSON object" + ("" if name == "simulate" else
                                                       " (simulate's, plus the opening hours counted)"))
        p.set_defaults(func=func)


def build_parser() -> argparse.ArgumentParser:
    """The engine's commands alone (``python -m plugin.cli``); ``policydesk`` has them all."""
    parser = argparse.ArgumentParser(
        prog="policydesk",
        description="Validate policies, simulate a request, explain a decision (the engine's commands; "
                    "the policydesk command has them all).",
    )
    add_engine_commands(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    return parser


# --------------------------------------------------------------------------- the error boundary


#: Exit status when stdout went away (``policydesk explain ... | head -1``): 128 + SIGPIPE.
EXIT_BROKEN_PIPE = 141


def run_cli(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen command: the one place errors become exit codes.

    `UserError` -> one ``policydesk CMD: message`` on stderr, exit 1; usage -> 2 (argparse);
    a closed output pipe -> quiet, 141; Ctrl-C -> 130; anything else is a bug: traceback, exit 3.
    """
    args = parser.parse_args(argv)
    try:
        status = int(args.func(args))
        sys.stdout.flush()  # a closed pipe shows here, inside the boundary, not at exit
        return status
    except UserError as error:
        print(f"{parser.prog} {args.command}: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # Later flushes (at exit) must not fail again: point stdout at /dev/null.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        return 130
    except Exception:
        traceback.print_exc()
        print(f"{parser.prog}: internal error (a bug): please report it with the traceback above", file=sys.stderr)
        return 3


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m plugin.cli``: the engine's commands only."""
    return run_cli(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
