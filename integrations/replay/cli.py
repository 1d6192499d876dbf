"""``policydesk replay``: run the policies over past tickets (see docs/replay.md).

::

    policydesk replay tickets.jsonl                       # summary table
    policydesk replay tickets.csv --json                  # the summary as JSON
    policydesk replay tickets.jsonl --html report.html    # report with charts
    policydesk replay tickets.jsonl --compare new-policies/
    policydesk replay --from-zammad --since 90d [--out export.jsonl]
    policydesk replay --generate 100000 --seed 7 --out demo.jsonl
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
from typing import Any, IO

__all__ = ["add_replay_command", "cmd_replay"]


def add_replay_command(sub: Any) -> None:
    from plugin.cli import POLICIES_ENV, default_policies_dir

    p = sub.add_parser(
        "replay",
        help="replay past tickets under the policies: first responses met or breached, per plan and channel",
        description="Replay past tickets (a JSONL or CSV export, or straight from Zammad) under the policies, with the "
                    "same engine as the live service: each ticket's first-response deadline, met or breached and by "
                    "how many business minutes; a summary per plan x channel, JSON, an HTML report with charts, and "
                    "--compare to see which tickets a policy change would newly breach or pass. Input format: "
                    "docs/replay.md and integrations/replay/ticket_history.schema.json.",
    )
    p.add_argument("file", nargs="?", metavar="FILE", help="tickets to replay: .jsonl or .csv (one ticket per line)")
    p.add_argument("--format", choices=("jsonl", "csv"), help="input format (default: from the file name)")
    p.add_argument("--policies", default=default_policies_dir(), metavar="DIR",
                   help=f"policy directory (default: ${POLICIES_ENV} or ./policies)")
    p.add_argument("--compare", metavar="DIR", help="also replay under these policies and show the difference")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object instead of the table")
    p.add_argument("--html", metavar="FILE", help="write a self-contained HTML report with charts")
    p.add_argument("--tickets", metavar="FILE", help="write every ticket's result (.jsonl or .csv)")
    p.add_argument("--as-of", metavar="ISO8601",
                   help="when the export was taken: an unanswered open ticket is breached if its deadline is before "
                        "(default: now)")
    p.add_argument("--skip-invalid", action="store_true",
                   help="skip invalid lines (counted and listed) instead of failing")
    p.add_argument("--exact", action="store_true",
                   help="run the full engine for every ticket (no cache; slower). Automatic when site plugins are "
                        "installed")
    p.add_argument("--jobs", type=int, metavar="N", help="worker processes (default: one per CPU)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (shown only on a terminal anyway)")
    z = p.add_argument_group("from Zammad (ZAMMAD_URL and ZAMMAD_TOKEN / ZAMMAD_TOKEN_FILE)")
    z.add_argument("--from-zammad", action="store_true", help="read the tickets from Zammad instead of FILE")
    z.add_argument("--since", default="90d", metavar="AGE|DATE",
                   help="tickets created since: 90d, 12w, 36h or a date (default: 90d)")
    g = p.add_argument_group("synthetic histories")
    g.add_argument("--generate", type=int, metavar="N", help="write N realistic synthetic tickets to --out and stop")
    g.add_argument("--seed", type=int, default=0, help="random seed for --generate (default: 0)")
    g.add_argument("--days", type=int, default=90, help="period the generated tickets cover (default: 90)")
    g.add_argument("--until", metavar="DATE", help="end of the generated period (default: 2026-01-01)")
    p.add_argument("--out", metavar="FILE",
                   help="with --generate: where to write; with --from-zammad: also save the export there")
    p.set_defaults(func=cmd_replay)


def _instant(text: str, what: str) -> dt.datetime:
    from plugin.cli import UserError

    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise UserError(f"{what}: {text!r} is not an ISO 8601 date or date-time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def cmd_replay(args: argparse.Namespace) -> int:
    from plugin.cli import UserError, load

    if args.generate is not None:
        return _generate(args)
    if args.jobs is not None and args.jobs < 1:
        raise UserError("--jobs: expected 1 or more")
    as_of = _instant(args.as_of, "--as-of") if args.as_of else None
    load(args.policies)  # policy errors first, with file:line:column
    if args.compare:
        load(args.compare)
    temporary = None
    try:
        if args.from_zammad:
            if args.file:
                raise UserError("give either FILE or --from-zammad, not both")
            path = args.out
            if path is None:
                handle, path = tempfile.mkstemp(prefix="policydesk-replay-", suffix=".jsonl")
                os.close(handle)
                temporary = path
            _export_from_zammad(args, path)
            args.file, args.format = path, "jsonl"
        elif not args.file:
            raise UserError("give a FILE of tickets (.jsonl or .csv), --from-zammad, or --generate N --out FILE")
        return _replay(args, as_of)
    finally:
        if temporary is not None:
            os.unlink(temporary)


def _replay(args: argparse.Namespace, as_of: dt.datetime | None) -> int:
    from integrations.replay import report, report_html
    from integrations.replay.records import RecordError, detect_format
    from integrations.replay.run import InputErrors, replay_file
    from plugin.cli import UserError

    if not os.path.isfile(args.file):
        raise UserError(f"{args.file}: no such file")
    sink_file: IO[str] | None = None
    sink = None
    try:
        if args.tickets:
            fmt = detect_format(args.tickets)
            sink_file = open(args.tickets, "w", encoding="utf-8", newline="")
            sink = _outcome_writer(sink_file, fmt)
        result = replay_file(
            args.file, args.policies, compare_dir=args.compare, fmt=args.format, jobs=args.jobs, exact=args.exact,
            as_of=as_of, skip_invalid=args.skip_invalid, progress=False if args.no_progress else None,
            outcomes_sink=sink,
        )
    except InputErrors as errors:
        shown = [str(e) for e in errors.errors[:20]]
        more = [f"... and {len(errors.errors) - 20} more"] if len(errors.errors) > 20 else []
        raise UserError("\n".join(shown + more + [
            f"{len(errors.errors)} invalid line(s) in {args.file}: fix them, or --skip-invalid to replay the rest "
            "(skipped lines are counted and listed)"])) from None
    except RecordError as error:
        raise UserError(str(error)) from None
    except OSError as error:
        raise UserError(f"{error.filename or args.file}: {error.strerror or error}") from None
    finally:
        if sink_file is not None:
            sink_file.close()
    if args.html:
        with open(args.html, "w", encoding="utf-8") as fh:
            fh.write(report_html.render_html(result))
    if args.json:
        print(json.dumps(report.result_as_json(result), indent=2, ensure_ascii=False))
    else:
        print(report.render_table(result))
        if args.html:
            print(f"HTML report: {args.html}")
        if args.tickets:
            print(f"per-ticket results: {args.tickets}")
    return 0


def _outcome_writer(fh: IO[str], fmt: str) -> Any:
    import csv

    from integrations.replay.run import Outcome

    if fmt == "csv":
        writer = csv.writer(fh, lineterminator="\n")
        columns = [
            "id", "plan", "channel", "calendar", "target_minutes", "emergency", "created_at", "due",
            "first_response_at", "status", "response_minutes", "margin_minutes"]
        writer.writerow(columns)

        def write_csv(outcomes: list[Outcome]) -> None:
            for o in outcomes:
                row = o.as_json()
                writer.writerow(["" if row[c] is None else row[c] for c in columns])
        return write_csv

    def write_jsonl(outcomes: list[Outcome]) -> None:
        fh.writelines(json.dumps(o.as_json(), separators=(",", ":")) + "\n" for o in outcomes)
    return write_jsonl


def _generate(args: argparse.Namespace) -> int:
    from integrations.replay.generate import DEFAULT_UNTIL, generate
    from integrations.replay.records import RecordError, write_records
    from plugin.cli import UserError, load

    if not args.out:
        raise UserError("--generate needs --out FILE (.jsonl or .csv)")
    if args.generate < 0 or args.days < 1:
        raise UserError("--generate and --days must be positive")
    until = _instant(args.until, "--until") if args.until else DEFAULT_UNTIL
    policies = load(args.policies)
    try:
        count = write_records(generate(args.generate, policies, seed=args.seed, days=args.days, until=until),
                              args.out, args.format)
    except RecordError as error:
        raise UserError(str(error)) from None
    except OSError as error:
        raise UserError(f"{args.out}: {error.strerror or error}") from None
    print(f"wrote {count:,} synthetic tickets to {args.out} (seed {args.seed}, {args.days} days before "
          f"{until.date()})")
    return 0


def _export_from_zammad(args: argparse.Namespace, path: str) -> None:
    from integrations.replay.records import write_records
    from integrations.replay.zammad_source import ZammadExport, export_tickets, parse_since
    from integrations.zammad.adapter import ZammadClient, ZammadConfigError
    from integrations.zammad.errors import ZammadError
    from plugin.cli import UserError

    try:
        since = parse_since(args.since)
        client = ZammadClient.from_env()
    except (ValueError, ZammadConfigError) as error:
        raise UserError(str(error)) from None
    export = ZammadExport()
    try:
        count = write_records(export_tickets(client, since, export), path, "jsonl")
    except ZammadError as error:
        raise UserError(f"reading tickets from Zammad: {error}") from None
    print(f"read {count:,} ticket(s) created since {since.date()} from Zammad"
          + (f" into {args.out}" if args.out else ""), file=sys.stderr)
    for note in export.notes:
        print(f"note: {note}", file=sys.stderr)
