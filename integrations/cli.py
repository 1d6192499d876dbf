"""The ``policydesk`` console command: one parser with every command, one error boundary.

`build_parser` mounts the engine's own commands (`plugin.cli.add_engine_commands`:
validate, simulate, explain) and every integration command, each imported directly — a
command module that fails to import fails the program loudly, naming the import error.
`main` runs it through `plugin.cli.run_cli`, the one place errors become exit codes: a
`plugin.errors.UserError` is one line and exit 1, usage 2, a bug a traceback and exit 3.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Sequence

from integrations.billing.commands import add_billing_commands
from integrations.demo import add_demo_command
from integrations.replay.cli import add_replay_command
from integrations.statement.cli import add_statement_command
from integrations.zammad.commands import add_reconcile_command, add_sync_command
from plugin.cli import POLICIES_HELP, add_engine_commands, default_policies_dir, run_cli
from plugin.errors import UserError


STORE_HELP = "sqlite:///FILE or postgresql://... (default: $POLICYDESK_STORE, else policydesk.db in $POLICYDESK_HOME or the user data directory)"


def build_parser() -> argparse.ArgumentParser:
    """The ``policydesk`` parser: the engine's commands and every integration command."""
    parser = argparse.ArgumentParser(
        prog="policydesk",
        description="Enforce a support contract inside Zammad from declarative YAML policies.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    policies_default = default_policies_dir()
    add_engine_commands(sub, policies_default)
    add_service_commands(sub, policies_default)
    add_billing_commands(sub, policies_default)
    add_sync_command(sub)
    add_reconcile_command(sub)
    add_demo_command(sub)
    add_replay_command(sub)
    add_statement_command(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The ``policydesk`` console entry point."""
    return run_cli(build_parser(), argv)


def add_service_commands(sub: Any, policies_default: str, policies_help: str = POLICIES_HELP) -> None:
    """``serve``, ``zammad-sandbox`` and ``queue`` (``vip-rotate``: `integrations.billing.commands`)."""
    serve = sub.add_parser(
        "serve",
        help="run the webhook service next to a Zammad (waitress)",
        description="Run the policydesk service: receive Zammad and billing webhooks, keep every ticket in "
                    "line with the policies, fire escalations. Settings come from the environment "
                    "(see integrations/service/config.py and the README).",
    )
    serve.add_argument("--policies", default=policies_default, metavar="DIR", help=policies_help)
    serve.add_argument("--listen", metavar="HOST:PORT", help="where to listen (default: $POLICYDESK_LISTEN or 127.0.0.1:8080)")
    serve.add_argument("--store", metavar="URL", help="sqlite:///FILE or postgresql://... (default: $POLICYDESK_STORE "
                                                      "or policydesk.db in $POLICYDESK_HOME / the user data directory)")
    serve.set_defaults(func=cmd_serve)

    sandbox = sub.add_parser(
        "zammad-sandbox",
        help="run the Zammad stand-in (a local imitation of Zammad's REST API) for demos and tests",
        description="Serve the Zammad stand-in seeded with a realistic desk; prints its URL and admin token.",
    )
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=3000)
    sandbox.add_argument("--seed", metavar="FILE", help="YAML/JSON seed (default: the bundled desk; 'empty' for none)")
    sandbox.add_argument("--webhook-backoff", type=float, default=10.0, metavar="SECONDS",
                         help="seconds times the attempt number between webhook retries (Zammad: 10)")
    sandbox.set_defaults(func=cmd_sandbox)

    queue = sub.add_parser("queue", help="show the work queue; list or requeue parked events",
                           description="Show the durable work queue's counts and parked events (with their "
                                       "last error); --requeue ID puts a parked event back in the queue.")
    queue.add_argument("--store", metavar="URL", help=STORE_HELP)
    queue.add_argument("--requeue", type=int, metavar="JOB_ID", action="append", help="requeue a parked job (repeatable)")
    queue.set_defaults(func=cmd_queue)


def _logging() -> None:
    from integrations.settings import setup_logging

    setup_logging()


def cmd_serve(args: argparse.Namespace) -> int:
    from integrations.service.config import ServiceConfig
    from integrations.service.runtime import serve

    env = dict(os.environ)
    if args.listen:
        env["POLICYDESK_LISTEN"] = args.listen
    if args.store:
        env["POLICYDESK_STORE"] = args.store
    _logging()
    # Settings, store, listener and policy errors are `UserError`s: the boundary (`main`) words them.
    config = ServiceConfig.from_env(env, policies=args.policies)
    serve(config)
    return 0


def cmd_sandbox(args: argparse.Namespace) -> int:
    from integrations.zammad_standin.__main__ import main as standin_main

    return standin_main(["--host", args.host, "--port", str(args.port), "--webhook-backoff", str(args.webhook_backoff)]
                        + (["--seed", args.seed] if args.seed else []))


def cmd_queue(args: argparse.Namespace) -> int:
    from integrations.settings import store_url
    from integrations.store import open_store

    store = open_store(store_url(args.store))
    with store:
        for job_id in args.requeue or []:
            print(f"job {job_id}: {'requeued' if store.requeue(job_id) else 'not parked, nothing done'}")
        counts = store.counts()
        print("  ".join(f"{state}={n}" for state, n in counts.items()))
        for job in store.parked():
            print(f"parked job {job.id} ({job.source} {job.delivery_id}), {job.attempts} attempt(s): {job.last_error}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
