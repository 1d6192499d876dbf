"""The ``policydesk sync`` subcommand.

Wire it into the main parser with ``add_sync_command(subparsers)``; ``run(argv)`` runs it
on its own (tests, ``python -m integrations.zammad.commands sync ...``).

Exit codes: 0 done (or nothing to do), 1 a user error (bad policies, Zammad unreachable,
token refused, missing settings, a name taken by an object policydesk did not create),
2 usage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from contextlib import contextmanager
from typing import Any, Iterator, Mapping, Sequence

from integrations.zammad.errors import ZammadAuthError, ZammadError, ZammadUnavailable
from plugin.errors import UserError

WEBHOOK_TOKEN_ENV = "POLICYDESK_ZAMMAD_WEBHOOK_TOKEN"
PUBLIC_URL_ENV = "POLICYDESK_PUBLIC_URL"
SERVICE_USER_ENV = "POLICYDESK_SERVICE_USER"


class SyncUserError(UserError):
    """Printed as ``policydesk sync: <message>``, exit code 1."""


def add_sync_command(subparsers: Any) -> argparse.ArgumentParser:
    from plugin.cli import POLICIES_ENV, default_policies_dir

    text = "make Zammad's configuration (attributes, calendars, SLAs, webhook, triggers) match the policies"
    parser = subparsers.add_parser(
        "sync", help=text,
        description=text[0].upper() + text[1:] + ". Objects policydesk did not create are never touched. "
                    "Zammad's token comes from ZAMMAD_TOKEN or ZAMMAD_TOKEN_FILE, the webhook signing token from "
                    f"{WEBHOOK_TOKEN_ENV} or {WEBHOOK_TOKEN_ENV}_FILE.",
    )
    parser.add_argument("--policies", default=default_policies_dir(), metavar="DIR",
                        help=f"policy directory (default: ${POLICIES_ENV} or ./policies)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print what would be created, changed or deleted, and change nothing")
    parser.add_argument("--json", action="store_true",
                        help="print the plan (with --dry-run) or what was done as one JSON object")
    parser.add_argument("--service-user", metavar="LOGIN",
                        help="the Zammad user (login, e-mail or id) the policydesk service writes as, whose changes "
                             f"the triggers leave out (default: ${SERVICE_USER_ENV}, else this token's user)")
    parser.add_argument("--zammad-url", metavar="URL", help="Zammad's URL (default: $ZAMMAD_URL)")
    parser.add_argument("--webhook-url", metavar="URL",
                        help="where Zammad sends webhooks: policydesk's /webhooks/zammad (default: "
                             f"${PUBLIC_URL_ENV} + /webhooks/zammad)")
    parser.set_defaults(func=cmd_sync)
    return parser


def _secret(env: Mapping[str, str], name: str) -> str | None:
    from integrations.settings import ConfigError, optional_secret

    try:
        return optional_secret(env, name)
    except ConfigError as error:
        raise SyncUserError(str(error)) from None


def cmd_sync(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> int:
    try:
        return _sync(args, dict(os.environ if environ is None else environ))
    except SyncUserError as error:
        print(f"policydesk sync: {error}", file=sys.stderr)
        return 1


def _sync(args: argparse.Namespace, env: dict[str, str]) -> int:
    from integrations.zammad.adapter import ZammadClient
    from integrations.zammad.sync import apply_plan, plan_sync
    from integrations.zammad.sync_objects import webhook_endpoint

    policies = _policies(args)
    webhook_url = args.webhook_url or env.get(PUBLIC_URL_ENV)
    if not webhook_url:
        raise SyncUserError(f"where should Zammad send webhooks? Give --webhook-url or set {PUBLIC_URL_ENV}")
    if not webhook_url.startswith(("http://", "https://")):
        raise SyncUserError(f"--webhook-url: expected an http(s) URL, got {webhook_url!r}")
    token = _secret(env, WEBHOOK_TOKEN_ENV)
    if not token:
        raise SyncUserError(f"no webhook signing token: set {WEBHOOK_TOKEN_ENV} or {WEBHOOK_TOKEN_ENV}_FILE")

    settings = _zammad_settings(args, env)
    client = ZammadClient.from_settings(settings)

    with _zammad_failures(settings):
        service_user = args.service_user or env.get(SERVICE_USER_ENV)
        service_user_id = _user_id(client, service_user) if service_user else None
        plan = plan_sync(policies, client, endpoint=webhook_endpoint(webhook_url), signature_token=token,
                         service_user_id=service_user_id)
        if args.dry_run:
            print(json.dumps(plan.as_json(dry_run=True), indent=2, default=str) if args.json
                  else plan.render(dry_run=True))
        else:
            result = apply_plan(plan, client, log=None)
            print(json.dumps(result.as_json(), indent=2, default=str) if args.json else result.render())
    sys.stdout.flush()
    if plan.errors:
        print(f"policydesk sync: {len(plan.errors)} object{'s' if len(plan.errors) != 1 else ''} could not be "
              "synced (see the errors above)", file=sys.stderr)
        return 1
    return 0


def add_reconcile_command(subparsers: Any) -> argparse.ArgumentParser:
    from plugin.cli import POLICIES_ENV, default_policies_dir

    text = "evaluate every open ticket (or those changed since) and bring it in line with the policies"
    parser = subparsers.add_parser(
        "reconcile", help=text,
        description=text[0].upper() + text[1:] + ": what a webhook would have done, for tickets Zammad never "
                    "delivered (a desk that had tickets before policydesk, deliveries Zammad gave up on). "
                    "Also gives every organization a support code. Changes only what differs: a repeat is a no-op.",
    )
    parser.add_argument("--policies", default=default_policies_dir(), metavar="DIR",
                        help=f"policy directory (default: ${POLICIES_ENV} or ./policies)")
    parser.add_argument("--since", metavar="DURATION",
                        help="only tickets changed within DURATION (e.g. 30m, 2h, 1d), open or not; "
                             "default: every open ticket")
    parser.add_argument("--dry-run", action="store_true", help="count what would change, change nothing")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    parser.add_argument("--store", metavar="URL",
                        help="the service's store, for pauses and timers (default: $POLICYDESK_STORE, else the "
                             "SQLite file in $POLICYDESK_HOME)")
    parser.add_argument("--zammad-url", metavar="URL", help="Zammad's URL (default: $ZAMMAD_URL)")
    parser.set_defaults(func=cmd_reconcile)
    return parser


def cmd_reconcile(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> int:
    try:
        return _reconcile(args, dict(os.environ if environ is None else environ))
    except SyncUserError as error:
        print(f"policydesk reconcile: {error}", file=sys.stderr)
        return 1


def _reconcile(args: argparse.Namespace, env: dict[str, str]) -> int:
    import datetime as dt

    from integrations.reconcile import Progress, parse_duration, reconcile
    from integrations.service.processing import Processor
    from integrations.settings import store_url
    from integrations.store import StoreError, open_store
    from integrations.zammad.adapter import ZammadAdapter, ZammadClient
    from plugin.cli import UserError
    from plugin.engine import Engine
    from plugin.manager import get_plugin_manager

    since = None
    if args.since:
        try:
            since = parse_duration(args.since)
        except ValueError as error:
            raise SyncUserError(f"--since: {error}") from None
    policies = _policies(args)
    settings = _zammad_settings(args, env)
    try:
        store = open_store(store_url(args.store, env))
    except (StoreError, UserError) as error:
        raise SyncUserError(str(error)) from None
    engine = Engine(policies, get_plugin_manager())
    with store:
        processor = Processor(ZammadAdapter(ZammadClient.from_settings(settings)), lambda: engine, store)
        with _zammad_failures(settings):
            summary = reconcile(processor, now=dt.datetime.now(dt.timezone.utc), since=since, dry_run=args.dry_run,
                                progress=Progress(enabled=None if not args.json else False))
    print(json.dumps(summary.as_json(), indent=2) if args.json else summary.render())
    return 1 if summary.failed else 0


def _policies(args: argparse.Namespace) -> Any:
    from plugin.cli import load

    try:
        return load(args.policies)
    except UserError as error:
        raise SyncUserError(f"invalid policies in {args.policies}:\n{error}") from None


def _zammad_settings(args: argparse.Namespace, env: dict[str, str]) -> Any:
    """Zammad's URL and token from the environment (``--zammad-url`` first)."""
    from integrations.zammad.adapter import ZammadConfigError, ZammadSettings

    if args.zammad_url:
        env["ZAMMAD_URL"] = args.zammad_url
    try:
        return ZammadSettings.load(env)
    except ZammadConfigError as error:
        raise SyncUserError(str(error)) from None


@contextmanager
def _zammad_failures(settings: Any) -> Iterator[None]:
    """Zammad's refusals and outages as one-line user errors. A sync that stopped half-way
    (``sync_done`` on the error) lists what it did before."""
    try:
        yield
    except ZammadAuthError as error:
        raise SyncUserError(f"Zammad at {settings.url} refused the token ({error.status} {error.message}); "
                            "check ZAMMAD_TOKEN / ZAMMAD_TOKEN_FILE (an admin's token is needed)") from None
    except ZammadUnavailable as error:
        reason = "connection refused" if "Connection refused" in error.message else error.message
        raise SyncUserError(f"cannot reach Zammad at {settings.url}: {reason}") from None
    except ZammadError as error:
        done = getattr(error, "sync_done", [])
        for line in done:
            print(line)
        raise SyncUserError(f"Zammad refused a change: {error}"
                            + (f" (after {len(done)} change{'s' if len(done) != 1 else ''}, listed above)"
                               if done else "")) from None


def _user_id(client: Any, person: str) -> int:
    """The id of the Zammad user ``person`` (id, login or e-mail)."""
    from integrations.zammad.adapter import ZammadAdapter

    user = ZammadAdapter(client).find_user(person)
    if user is None:
        raise SyncUserError(f"--service-user: Zammad has no user {person!r}")
    return int(user["id"])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="policydesk")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_sync_command(sub)
    add_reconcile_command(sub)
    return parser


def run(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Parse ``argv`` (``["sync", ...]`` or ``["reconcile", ...]``) and run it; returns the exit code."""
    args = build_parser().parse_args(argv)
    return args.func(args, environ)


if __name__ == "__main__":
    sys.exit(run())
