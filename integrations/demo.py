"""`policydesk demo`: the whole loop on embedded defaults, in one process, in about a minute.

It starts the Zammad stand-in seeded with a small Swiss provider's desk (organizations on
every plan), syncs the bundled policies into it, starts the policydesk service on a fresh
SQLite file, and plays a realistic stream through the whole loop — tickets by e-mail,
phone and web, billing events (activations, an upgrade, a refused downgrade), an emergency
out of scope, and an escalation firing — printing what happened at each step.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import secrets
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

import requests

from integrations.signing import billing_signature


#: The seed's policydesk API user (see integrations/zammad_standin/seed.yaml).
POLICYDESK_TOKEN = "standin-policydesk-token"


def add_demo_command(sub: Any) -> None:
    demo = sub.add_parser(
        "demo",
        help="run the whole loop on embedded defaults: Zammad stand-in, sync, service, tickets, billing, escalation",
        description=__doc__.split("\n\n", 1)[1].replace("\n", " "),
    )
    demo.add_argument("--policies", default=None, metavar="DIR", help="policy directory (default: the bundled one)")
    demo.add_argument("--keep", action="store_true",
                      help="keep the stand-in and the service running after the demo until Ctrl-C")
    demo.add_argument("--escalation-seconds", type=int, default=12, metavar="N",
                      help="how far in the future the demo's escalation falls due (default: 12)")
    demo.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from plugin.cli import default_policies_dir

    return Demo(args.policies or default_policies_dir(), escalation_seconds=args.escalation_seconds).run(keep=args.keep)


class Demo:
    def __init__(self, policies: str, escalation_seconds: int = 12, out: Callable[[str], None] = print) -> None:
        self.policies = policies
        self.escalation_seconds = escalation_seconds
        self.out = out
        self.workdir = Path(tempfile.mkdtemp(prefix="policydesk-demo-"))
        self.webhook_token = secrets.token_hex(16)
        self.billing_secret = secrets.token_hex(16)
        self.tickets: dict[str, int] = {}

    # ------------------------------------------------------------------ the story

    def run(self, keep: bool = False) -> int:
        from integrations.zammad_standin import running_standin

        from integrations.settings import setup_logging

        setup_logging("WARNING")
        started = time.monotonic()
        with running_standin(webhook_backoff=0.5) as zammad:
            self.zammad = zammad
            self.api = requests.Session()
            self.api.headers["Authorization"] = f"Token token={zammad.admin_token}"
            self.say(f"Zammad stand-in on {zammad.url} with the bundled desk "
                     f"({len(zammad.state.all('organizations'))} organizations, {len(zammad.state.all('tickets'))} tickets).")
            service, server_thread = self.start_service()
            try:
                self.sync()
                self.activate_subscriptions()
                self.tickets_arrive()
                self.upgrade()
                self.refused_downgrade()
                self.escalation()
                self.summary()
                self.say(f"Done in {time.monotonic() - started:.0f} s. Store: {self.store_path}")
                if keep:
                    self.say(f"Still running: Zammad {zammad.url} (token {zammad.admin_token}), policydesk "
                             f"{self.service_url}. Ctrl-C to stop.")
                    while True:
                        time.sleep(3600)
            except KeyboardInterrupt:
                pass
            finally:
                self.server_stopping.set()
                server_thread.join(5)
                service.stop()
        return 0

    def start_service(self) -> tuple[Any, threading.Thread]:
        from integrations.service.config import ServiceConfig
        from integrations.service.runtime import Service
        from integrations.zammad.adapter import ZammadSettings

        self.store_path = self.workdir / "policydesk.db"
        config = ServiceConfig(store_url=f"sqlite:///{self.store_path}", host="127.0.0.1", port=0,
                               policies=self.policies, zammad_webhook_token=self.webhook_token,
                               billing_secret=self.billing_secret, workers=2, retry_base_seconds=0.5)
        service = Service.from_config(config, zammad=ZammadSettings(url=self.zammad.url, token=POLICYDESK_TOKEN))
        from integrations.serving import BackgroundServer

        self.server = BackgroundServer(service.app, threads=4)
        self.server_stopping = self.server.stopping
        self.service_url = self.server.url
        thread = threading.Thread(target=self.server.serve, daemon=True)
        thread.start()
        service.start_background()
        self.service = service
        self.say(f"policydesk service on {self.service_url}, store {self.store_path} (SQLite, WAL).")
        return service, thread

    def sync(self) -> None:
        from integrations.zammad.adapter import ZammadClient
        from integrations.zammad.sync import apply_plan, plan_sync
        from plugin.policy import load_policies

        self.step("Sync the policies into Zammad (`policydesk sync`)")
        client = ZammadClient(self.zammad.url, POLICYDESK_TOKEN)
        plan = plan_sync(load_policies(self.policies), client, endpoint=self.service_url + "/webhooks/zammad",
                         signature_token=self.webhook_token)
        apply_plan(plan, client)
        kinds: dict[str, int] = {}
        for action in plan.actions:
            kinds[action.kind] = kinds.get(action.kind, 0) + 1
        self.say("created " + ", ".join(f"{n} {kind}{'s' if n > 1 else ''}" for kind, n in sorted(kinds.items()))
                 + f"; {len(plan.warnings)} hand-made object(s) left untouched.")
        again = plan_sync(load_policies(self.policies), client, endpoint=self.service_url + "/webhooks/zammad",
                          signature_token=self.webhook_token)
        self.say(f"a second `sync --dry-run` reports: {'no changes' if not again.actions else again.render()}")

    def activate_subscriptions(self) -> None:
        self.step("The billing system activates the premium subscriptions (signed webhooks)")
        today = dt.date.today()
        for name, plan in (("Chocolaterie Léman SA", "plus"), ("Uhrwerk Digital GmbH", "pro"),
                           ("Helvetia Retail Group", "enterprise")):
            status, body = self.billing("subscription.created", name, plan, today, months=6)
            managers = ", ".join(f"{role}={who}" for role, who in body.get("account_managers", {}).items()) or "none"
            vip = "VIP code issued (shown once, for the technical document)" if body.get("vip_code") else "no VIP code"
            self.say(f"{name}: {plan} -> {status} {body.get('status')}; commitment until "
                     f"{body.get('commitment_end')}; account managers: {managers}; {vip}.")
        self.wait_queue()

    def tickets_arrive(self) -> None:
        self.step("Customers write in; Zammad's triggers call policydesk")
        self.tickets["plus e-mail"] = self.customer_ticket(
            "claire.favre@choco-leman.ch", "email", "Facture: ligne 3 incompréhensible", category="billing")
        self.tickets["pro phone"] = self.customer_ticket(
            "jonas.keller@uhrwerk.ch", "phone", "Shop answers 502 since 07:40", category="hosting")
        self.tickets["pro emergency, out of scope"] = self.customer_ticket(
            "jonas.keller@uhrwerk.ch", "phone", "URGENT: change the colours of our WordPress theme",
            category="webmastering", emergency=True)
        self.tickets["standard web"] = self.customer_ticket(
            "hans.meier@bergbahn-alpin.ch", "web", "How do I add a mailbox?", category="email")
        self.wait_queue()
        for label, ticket_id in self.tickets.items():
            self.show_ticket(label, ticket_id)

    def upgrade(self) -> None:
        self.step("Chocolaterie Léman upgrades Plus -> Pro: the deadline of its open ticket moves forward")
        before = self.ticket(self.tickets["plus e-mail"]).get("policydesk_first_response_due")
        status, body = self.billing("subscription.plan_changed", "Chocolaterie Léman SA", "pro", dt.date.today(),
                                    months=6)
        self.say(f"billing answered {status} {body.get('status')}; account managers: {body.get('account_managers')}")
        self.wait_queue()
        after = self.ticket(self.tickets["plus e-mail"]).get("policydesk_first_response_due")
        self.say(f"first response due: {before} -> {after}")

    def refused_downgrade(self) -> None:
        self.step("Helvetia Retail asks to go down to Pro inside its 6-month commitment")
        status, body = self.billing("subscription.plan_changed", "Helvetia Retail Group", "pro", dt.date.today(),
                                    months=6)
        self.say(f"billing answered {status} {body.get('status')}: {body.get('reason')}")

    def escalation(self) -> None:
        from integrations.zammad_standin.server import apply_seed

        self.step(f"An Enterprise emergency came in by phone almost an hour ago: it breaches in "
                  f"{self.escalation_seconds} s")
        created = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1) + dt.timedelta(seconds=self.escalation_seconds)
        stamp = created.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        apply_seed(self.zammad.state, {"tickets": [{
            "title": "Database cluster unreachable", "group": "Support", "customer": "it-ops@helvetia-retail.ch",
            "created_at": stamp, "updated_at": stamp,
            "article": {"type": "phone", "sender": "Customer", "subject": "DB cluster", "internal": False,
                        "body": "Our primary database cluster is unreachable from the app servers.",
                        "created_at": stamp},
        }]})
        ticket_id = max(t["id"] for t in self.zammad.state.all("tickets"))
        self.tickets["enterprise emergency"] = ticket_id
        # The agent who took the call records category and emergency: an update, so a webhook.
        self.api.put(f"{self.zammad.url}/api/v1/tickets/{ticket_id}",
                     json={"policydesk_category": "infrastructure", "policydesk_emergency": True}, timeout=10)
        self.wait_queue()
        self.show_ticket("enterprise emergency (warning already due)", ticket_id)
        deadline = time.monotonic() + self.escalation_seconds + 20
        while time.monotonic() < deadline and "sla:breached" not in self.tags(ticket_id):
            time.sleep(0.5)
        self.wait_queue()
        fired = [t for t in self.service.store.timers_of(str(ticket_id)) if t.fired_at is not None]
        for timer in fired:
            late = (timer.fired_at - timer.due_at).total_seconds()
            when = "already past when policydesk first saw the ticket" if late > 5 else f"{late:+.1f} s"
            self.say(f"step {timer.step!r} due {timer.due_at:%H:%M:%S} UTC, fired {timer.fired_at:%H:%M:%S} ({when})")
        self.show_ticket("enterprise emergency (after the breach)", ticket_id)

    def summary(self) -> None:
        self.step("What the service did")
        counts = self.service.store.counts()
        self.say("queue: " + ", ".join(f"{k}={v}" for k, v in counts.items()))
        for entry in self.service.store.audit_log(kind="plan_change_refused", limit=5):
            self.say(f"audit: {entry.kind} {entry.subject}: {json.dumps(entry.data)[:160]}")
        metrics = requests.get(self.service_url + "/metrics", timeout=5).text
        for line in metrics.splitlines():
            if line.startswith(("policydesk_events_received_total", "policydesk_events_processed_total",
                                "policydesk_escalations_fired_total")):
                self.say(line)

    # ------------------------------------------------------------------ helpers

    def step(self, title: str) -> None:
        self.out(f"\n== {title}")

    def say(self, text: str) -> None:
        self.out(f"   {text}")

    def billing(self, kind: str, organization: str, plan: str, start: dt.date, months: int) -> tuple[int, dict[str, Any]]:
        org = next(o for o in self.zammad.state.all("organizations") if o["name"] == organization)
        event = {
            "id": f"evt_demo_{secrets.token_hex(6)}", "type": kind,
            "occurred_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "organization": {"billing_account": f"acct_{org['id']:05d}", "zammad_organization_id": org["id"],
                             "name": organization},
            "subscription": {"plan": plan, "start": start.isoformat(), "commitment": {"months": months},
                             "billing_period": "annual"},
        }
        body = json.dumps(event).encode()
        response = requests.post(self.service_url + "/webhooks/billing", data=body, timeout=10, headers={
            "Content-Type": "application/json",
            "Policydesk-Signature": billing_signature(body, self.billing_secret, int(time.time())),
        })
        return response.status_code, response.json()

    def customer_ticket(self, customer: str, channel: str, title: str, category: str,
                        emergency: bool = False) -> int:
        token = self.zammad.token_for(customer)
        response = requests.post(self.zammad.url + "/api/v1/tickets", timeout=10, headers={
            "Authorization": f"Token token={token}"}, json={
            "title": title, "group": "Support", "policydesk_category": category, "policydesk_emergency": emergency,
            "article": {"type": channel, "sender": "Customer", "subject": title, "body": title, "internal": False},
        })
        response.raise_for_status()
        ticket_id = int(response.json()["id"])
        self.say(f"#{ticket_id} {customer} by {channel}: {title!r}" + (" (asks for 24/7 emergency)" if emergency else ""))
        return ticket_id

    def ticket(self, ticket_id: int) -> dict[str, Any]:
        return self.api.get(f"{self.zammad.url}/api/v1/tickets/{ticket_id}?expand=true", timeout=10).json()

    def tags(self, ticket_id: int) -> list[str]:
        return self.api.get(f"{self.zammad.url}/api/v1/tags?object=Ticket&o_id={ticket_id}", timeout=10).json()["tags"]

    def show_ticket(self, label: str, ticket_id: int) -> None:
        ticket = self.ticket(ticket_id)
        articles = self.api.get(f"{self.zammad.url}/api/v1/ticket_articles/by_ticket/{ticket_id}", timeout=10).json()
        notes = [a for a in articles if a.get("subject") == "policydesk" and a.get("internal")]
        self.say(f"#{ticket_id} {label}: priority {ticket.get('priority')}, tags {' '.join(sorted(self.tags(ticket_id)))}, "
                 f"due {ticket.get('policydesk_first_response_due') or '-'}")
        if notes:
            for line in str(notes[-1].get("body", "")).splitlines():
                self.say(f"    note: {line}")

    def wait_queue(self, timeout: float = 30.0) -> None:
        """Until Zammad has delivered its webhooks and policydesk has processed them."""
        deadline = time.monotonic() + timeout
        time.sleep(0.3)
        while time.monotonic() < deadline:
            busy = any(d.status == "pending" for d in self.zammad.deliveries) if self.zammad.deliveries else False
            counts = self.service.store.counts()
            if not busy and counts.get("pending", 0) == 0 and counts.get("claimed", 0) == 0:
                return
            time.sleep(0.2)


def main() -> int:  # pragma: no cover - `python -m integrations.demo`
    from integrations.cli import main as cli_main

    return cli_main(["demo", *sys.argv[1:]])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
