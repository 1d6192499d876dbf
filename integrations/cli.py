"""The ``policydesk`` console command: one parser with every command, one error boundary.

`build_parser` mounts the engine's own commands (`plugin.cli.add_engine_commands`:
validate, simulate, explain) and every integration command, each imported directly — a
command module that fails to import fails the program loudly, naming the import error.
`main` runs it through `plugin.cli.run_cli`, the one place errors become exit codes: a
`plugin.errors.UserError` is one line and exit 1, usage 2, a bug a traceback and exit 3.
"""

from __future__ import annotations

import argparse
import json
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
from plugin.version import __version__


STORE_HELP = "sqlite:///FILE or postgresql://... (default: $POLICYDESK_STORE, else policydesk.db in $POLICYDESK_HOME or the user data directory)"


def build_parser() -> argparse.ArgumentParser:
    """The ``policydesk`` parser: the engine's commands and every integration command."""
    parser = argparse.ArgumentParser(
        prog="policydesk",
        description="Enforce a support contract inside Zammad from declarative YAML policies.",
    )
    parser.add_argument("--version", action="version", version=f"policydesk {__version__}")
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
        help="run the webhook service next to a Zammad",
        description="Run the policydesk service: receive Zammad and billing webhooks, keep every ticket in "
                    "line with the policies, fire escalations, purge old history.",
        epilog=_settings_summary(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--policies", default=policies_default, metavar="DIR", help=policies_help)
    serve.add_argument("--listen", metavar="HOST:PORT", help="where to listen (default: $POLICYDESK_LISTEN or 127.0.0.1:8080)")
    serve.add_argument("--admin-listen", metavar="HOST:PORT",
                       help="serve /healthz and /metrics on this separate address (default: $POLICYDESK_ADMIN_LISTEN; "
                            "unset: on the webhook listener)")
    serve.add_argument("--store", metavar="URL", help=STORE_HELP)
    serve.add_argument("--log-level", metavar="LEVEL", help="DEBUG, INFO, WARNING, ERROR (default: $POLICYDESK_LOG_LEVEL or INFO)")
    serve.add_argument("--log-format", choices=("text", "json"), help="one line per event, as text or JSON "
                                                                      "(default: $POLICYDESK_LOG_FORMAT or text)")
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
    queue.add_argument("--purge", action="store_true",
                       help="delete stored webhook bodies and finished jobs older than $POLICYDESK_RETENTION_DAYS "
                            "(30) and audit rows older than $POLICYDESK_AUDIT_RETENTION_DAYS (400); parked jobs are "
                            "kept and listed")
    queue.add_argument("--json", action="store_true",
                       help='print one JSON object: {"counts": {state: n}, "parked": [{"id", "source", "delivery_id", '
                            '"attempts", "last_error"}], "requeued": {id: bool}, "purged": {table: n}}')
    queue.set_defaults(func=cmd_queue)


def _settings_summary() -> str:
    from integrations.settings import ENVIRONMENT

    width = max(len(name) for name in ENVIRONMENT)
    lines = ["settings (environment; a secret may also come from NAME_FILE, a file holding it):"]
    lines += [f"  {name:<{width}}  {meaning} [default: {default}]" for name, (default, meaning) in ENVIRONMENT.items()]
    lines.append("The deployment guide (docs/deploy.md) explains each, with a systemd unit and a gunicorn config.")
    return "\n".join(lines)


def _logging(level: str | None = None, fmt: str | None = None) -> None:
    from integrations.settings import setup_logging

    setup_logging(level, fmt)


def _store_error(error: BaseException, url: str) -> str | None:
    """A one-line reason when ``error`` is the store being unreachable (PostgreSQL down, bad file)."""
    import sqlite3

    from integrations.logsetup import mask_secrets

    if isinstance(error, sqlite3.Error) or any(cls.__module__.split(".")[0] in ("psycopg", "psycopg_pool")
                                               for cls in type(error).__mro__):
        reason = " ".join(str(error).split())[:300] or type(error).__name__
        return f"cannot open the store {mask_secrets(url)}: {mask_secrets(reason)}"
    return None


def cmd_serve(args: argparse.Namespace) -> int:
    from integrations.service.config import ServiceConfig
    from integrations.service.runtime import serve

    env = dict(os.environ)
    for option, name in (("listen", "POLICYDESK_LISTEN"), ("admin_listen", "POLICYDESK_ADMIN_LISTEN"),
                         ("store", "POLICYDESK_STORE")):
        if getattr(args, option, None):
            env[name] = getattr(args, option)
    _logging(getattr(args, "log_level", None), getattr(args, "log_format", None))
    # Settings, store, listener and policy errors are `UserError`s: the boundary (`main`) words them.
    config = ServiceConfig.from_env(env, policies=args.policies)
    try:
        serve(config)
    except UserError:
        raise
    except Exception as error:  # the database driver's own errors: PostgreSQL down, a file it cannot open
        reason = _store_error(error, config.store_url)
        if reason is None:
            raise
        raise UserError(reason) from None
    return 0


#: The seed's API user for policydesk (integrations/zammad_standin/seed.yaml).
SANDBOX_BOT_LOGIN = "policydesk@example.com"


def cmd_sandbox(args: argparse.Namespace) -> int:
    import signal
    import threading

    from integrations.serving import ListenError
    from integrations.settings import setup_logging
    from integrations.zammad_standin import StandIn

    setup_logging()
    try:
        standin = StandIn(args.seed, host=args.host, port=args.port, webhook_backoff=args.webhook_backoff)
    except (ListenError, OSError) as error:
        raise UserError(f"cannot listen on {args.host}:{args.port}: {getattr(error, 'strerror', None) or error}") from None
    try:
        bot = standin.token_for(SANDBOX_BOT_LOGIN)
    except KeyError:  # a seed of one's own without the bot user
        bot = None
    print(f"Zammad stand-in at {standin.url} (API {standin.api_url})")
    if bot:
        print(f"  policydesk's token (the bot user {SANDBOX_BOT_LOGIN}): {bot}")
        print(f"      give it to policydesk: ZAMMAD_URL={standin.url} ZAMMAD_TOKEN={bot} policydesk serve")
        print("      (policydesk recognises its own updates by this user; never give it a person's token)")
    print(f"  admin token (for trying things by hand, e.g. creating tickets with curl): {standin.admin_token}")
    print(f"      curl -H 'Authorization: Token token={standin.admin_token}' {standin.api_url}/tickets")
    print("Stop with Ctrl-C.", flush=True)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    standin.start()
    try:
        while not stopping.wait(0.5):
            pass
    finally:
        standin.stop()
    return 0


def _purge(store: Any, quiet: bool = False) -> dict[str, int]:
    from integrations.service.retention import Retention, purge
    from integrations.settings import env_float, setup_logging

    setup_logging()
    retention = Retention(days=env_float(os.environ, "POLICYDESK_RETENTION_DAYS", 30.0),
                          audit_days=env_float(os.environ, "POLICYDESK_AUDIT_RETENTION_DAYS", 400.0))
    counts = purge(store, retention)
    if quiet:
        return dict(counts)
    print(f"purged {sum(counts.values())} row(s) older than {retention.days:g} days (audit: "
          f"{retention.audit_days:g} days): " + (", ".join(f"{t}={n}" for t, n in sorted(counts.items())) or "nothing"))
    return dict(counts)


def cmd_queue(args: argparse.Namespace) -> int:
    from integrations.settings import store_url
    from integrations.store import open_store

    store = open_store(store_url(args.store))
    with store:
        purged = _purge(store, quiet=args.json) if getattr(args, "purge", False) else None
        requeued = {job_id: store.requeue(job_id) for job_id in args.requeue or []}
        counts = store.counts()
        parked = store.parked()
        if args.json:
            print(json.dumps({
                "counts": counts,
                "parked": [{"id": job.id, "source": job.source, "delivery_id": job.delivery_id,
                            "attempts": job.attempts, "last_error": job.last_error} for job in parked],
                "requeued": {str(job_id): done for job_id, done in requeued.items()},
                "purged": purged,
            }, indent=2))
            return 0
        for job_id, done in requeued.items():
            print(f"job {job_id}: {'requeued' if done else 'not parked, nothing done'}")
        print("  ".join(f"{state}={n}" for state, n in counts.items()))
        for job in parked:
            print(f"parked job {job.id} ({job.source} {job.delivery_id}), {job.attempts} attempt(s): {job.last_error}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
