"""``policydesk statement``: what was promised and what was kept, per organization, per month.

::

    policydesk statement --organization 3 --month 2026-11            # text on the terminal
    policydesk statement --all --month 2026-11 --json                # a JSON list, one object each
    policydesk statement --organization 3 --month 2026-11 --html s.html --pdf s.pdf
    policydesk statement --from-file export.jsonl --organization "Acme AG" --month 2026-11

Tickets come from Zammad (ZAMMAD_URL, ZAMMAD_TOKEN / ZAMMAD_TOKEN_FILE) or from a replay
export (``--from-file``, the format of docs/replay.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from typing import Any

from plugin.errors import UserError

__all__ = ["add_statement_command", "cmd_statement"]


def add_statement_command(sub: Any) -> None:
    from plugin.cli import POLICIES_ENV, default_policies_dir

    p = sub.add_parser(
        "statement",
        help="an SLA statement per organization and month: first responses due and met, breaches, emergencies",
        description="Compute each organization's statement for a month from its tickets, with the same engine and "
                    "calendars as the live service: the plan(s) in force (a mid-month upgrade splits the month), "
                    "requests by channel, first responses due and met, every breach with its lateness in business "
                    "minutes, emergencies accepted and refused with the reason, out-of-scope referrals, and the trend "
                    "of the last six months. See docs/statements.md.",
    )
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--organization", action="append", metavar="ID",
                     help="the organization (Zammad id; with --from-file the name or id the export carries); "
                          "repeatable")
    who.add_argument("--all", action="store_true", help="every organization")
    p.add_argument("--month", required=True, metavar="YYYY-MM", help="the month, in the policies' time zone")
    p.add_argument("--policies", default=default_policies_dir(), metavar="DIR",
                   help=f"policy directory (default: ${POLICIES_ENV} or ./policies)")
    p.add_argument("--from-file", metavar="FILE", help="read tickets from a replay export (.jsonl/.csv) instead of Zammad")
    p.add_argument("--as-of", metavar="ISO8601", help="when the data was taken (default: now)")
    p.add_argument("--json", action="store_true", help="print a JSON list (one object per organization)")
    p.add_argument("--html", metavar="FILE", help="also write a self-contained HTML page")
    p.add_argument("--pdf", metavar="FILE", help="also write a customer-facing PDF (one page or more per organization)")
    p.set_defaults(func=cmd_statement)


def _as_of(text: str | None) -> dt.datetime:
    if not text:
        return dt.datetime.now(dt.timezone.utc)
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise UserError(f"--as-of: expected an ISO 8601 date-time such as 2026-12-01T08:00:00Z, not {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def _from_file(args: argparse.Namespace, policies: Any, month: Any, as_of: dt.datetime) -> list[Any]:
    from integrations.replay.records import RecordError, read_records
    from integrations.statement.compute import build_statement
    from integrations.replay.run import policy_version

    if not os.path.isfile(args.from_file):
        raise UserError(f"{args.from_file}: no such file")
    records = []
    for item in read_records(args.from_file):
        if isinstance(item, RecordError):
            raise UserError(str(item))
        records.append(item)
    names = sorted({r.organization for r in records if r.organization}) if args.all else list(args.organization)
    version = policy_version(policies)
    return [build_statement(records, month, policies, organization=name, policy_version=version, as_of=as_of)
            for name in names]


def _from_zammad(args: argparse.Namespace, policies: Any, month: Any, as_of: dt.datetime) -> list[Any]:
    from integrations.replay.zammad_source import ZammadExport
    from integrations.statement.source import statements_from_zammad
    from integrations.zammad.adapter import ZammadClient
    from integrations.zammad.errors import ZammadError

    ids = None
    if not args.all:
        try:
            ids = [int(i) for i in args.organization]
        except ValueError:
            raise UserError("--organization: expected Zammad organization ids (whole numbers)") from None
    client = ZammadClient.from_env()
    export = ZammadExport()
    try:
        statements = statements_from_zammad(client, policies, month, organization_ids=ids, as_of=as_of, report=export)
    except ZammadError as error:
        raise UserError(f"reading from Zammad: {error}") from None
    for note in export.notes:
        print(f"note: {note}", file=sys.stderr)
    return statements


def cmd_statement(args: argparse.Namespace) -> int:
    from integrations.statement.compute import parse_month
    from integrations.statement.render import render_text, statement_as_json
    from plugin.policy import load_policies

    month = parse_month(args.month)
    as_of = _as_of(args.as_of)
    policies = load_policies(args.policies)
    load = _from_file if args.from_file else _from_zammad
    statements = load(args, policies, month, as_of)
    if args.html:
        from integrations.statement.html import render_html

        with open(args.html, "w", encoding="utf-8") as fh:
            fh.write(render_html(statements, title=f"policydesk statement {month}"))
    if args.pdf:
        from integrations.statement.pdf import render_pdf

        with open(args.pdf, "wb") as fh:
            fh.write(render_pdf(statements))
    if args.json:
        print(json.dumps([statement_as_json(s) for s in statements], indent=2, ensure_ascii=False))
    else:
        print("\n".join(render_text(s) for s in statements) if statements else "no organization matched")
    return 0
