"""The billing side's commands: ``vip-rotate``, ``techdoc`` and ``managers assign``.

Mounted by `integrations.cli.build_parser` through `add_billing_commands`. Each raises
`plugin.errors.UserError` for what an operator can fix (one line, exit 1).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

from plugin.errors import UserError

__all__ = ["add_billing_commands", "cmd_managers_assign", "cmd_techdoc", "cmd_vip_rotate"]

_STORE_HELP = "sqlite:///FILE or postgresql://... (default: $POLICYDESK_STORE, else the default store)"


def add_billing_commands(sub: Any, policies_default: str) -> None:
    """Add ``vip-rotate``, ``techdoc`` and ``managers`` to the ``policydesk`` parser."""
    vip = sub.add_parser("vip-rotate", help="give an organization a new VIP code (the old one stops working)",
                         description="Issue a new VIP code for an organization whose code was lost, e.g. when "
                                     "the billing system never received the activation's answer. The code is "
                                     "printed once and only its salted hash is stored. Refused for a plan "
                                     "without VIP codes.")
    vip.add_argument("--organization", type=int, required=True, metavar="ZAMMAD_ID",
                     help="the organization's id in Zammad")
    vip.add_argument("--store", metavar="URL", help=_STORE_HELP)
    vip.add_argument("--policies", default=policies_default, metavar="DIR", help="policy directory")
    vip.add_argument("--techdoc", metavar="FILE", help="also write the technical document with the new code")
    vip.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    vip.set_defaults(func=cmd_vip_rotate)

    doc = sub.add_parser("techdoc", help="write an organization's technical document (PDF)",
                         description="Write the PDF the customer keeps to reach support even offline: plan, "
                                     "support code, contact channels and hours, the 24/7 emergency line and its "
                                     "rules, account managers, commitment end, what is out of scope. The VIP code "
                                     "is printed only when given (policydesk keeps only its hash). Reads the "
                                     "organization's name from Zammad when ZAMMAD_URL is set.")
    doc.add_argument("--organization", type=int, required=True, metavar="ZAMMAD_ID")
    doc.add_argument("--output", required=True, metavar="FILE", help="where to write the PDF")
    doc.add_argument("--vip-code", metavar="CODE", help="the VIP code just issued, to print on the document")
    doc.add_argument("--store", metavar="URL", help=_STORE_HELP)
    doc.add_argument("--policies", default=policies_default, metavar="DIR", help="policy directory")
    doc.set_defaults(func=cmd_techdoc)

    managers = sub.add_parser("managers", help="account managers of organizations",
                              description="Reassign an organization's account manager.")
    actions = managers.add_subparsers(dest="managers_action", required=True, metavar="ACTION")
    assign = actions.add_parser("assign", help="make PERSON the organization's ROLE",
                                description="Make PERSON the organization's ROLE (a role of its plan, a person of "
                                            "the role's pool). Zammad's organization attribute is updated and the "
                                            "open tickets re-evaluated by the running service (mentions of the "
                                            "former manager are removed).")
    assign.add_argument("--organization", type=int, required=True, metavar="ZAMMAD_ID")
    assign.add_argument("--role", required=True, metavar="ROLE", help="e.g. account_manager")
    assign.add_argument("--person", required=True, metavar="EMAIL")
    assign.add_argument("--store", metavar="URL", help=_STORE_HELP)
    assign.add_argument("--policies", default=policies_default, metavar="DIR", help="policy directory")
    assign.set_defaults(func=cmd_managers_assign)


def _store(url: str | None) -> Any:
    from integrations.settings import store_url
    from integrations.store import open_store

    return open_store(store_url(url))


def _policies(directory: str) -> Any:
    from plugin.policy import load_policies

    return load_policies(directory)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def cmd_vip_rotate(args: argparse.Namespace) -> int:
    from integrations.billing import org_ref_for
    from integrations.vip import plan_has_vip, rotate_vip_code

    policies = _policies(args.policies)
    org_ref = org_ref_for(args.organization)
    with _store(args.store) as store:
        subscription = store.get_subscription(org_ref)
        if subscription is None:
            raise UserError(f"organization {args.organization} has no subscription in this store")
        if not plan_has_vip(store, policies, org_ref):
            raise UserError(f"organization {args.organization} is on plan {subscription.plan!r}, which has no VIP code")
        with store.atomic():
            code = rotate_vip_code(store, org_ref)
        written = None
        if args.techdoc:
            from integrations.techdoc import technical_document

            _write(Path(args.techdoc), technical_document(store, policies, org_ref, _zammad_record(args.organization),
                                                          code, _now()))
            written = args.techdoc
    if args.json:
        print(json.dumps({"organization": args.organization, "plan": subscription.plan, "vip_code": code,
                          "technical_document": written}))
        return 0
    print(f"new VIP code for organization {args.organization}: {code}")
    if written:
        print(f"technical document with the new code: {written}")
    print("Give it to the customer now (technical document); it is not stored and cannot be shown again.")
    return 0


def cmd_techdoc(args: argparse.Namespace) -> int:
    from integrations.billing import org_ref_for
    from integrations.techdoc import technical_document

    policies = _policies(args.policies)
    org_ref = org_ref_for(args.organization)
    record = _zammad_record(args.organization)
    with _store(args.store) as store:
        if store.get_subscription(org_ref) is None and record is None:
            raise UserError(f"organization {args.organization} is unknown (no subscription in this store, and "
                            "no Zammad to ask: set ZAMMAD_URL and ZAMMAD_TOKEN)")
        pdf = technical_document(store, policies, org_ref, record, args.vip_code, _now())
    _write(Path(args.output), pdf)
    print(f"technical document for organization {args.organization}: {args.output} ({len(pdf)} bytes)")
    return 0


def cmd_managers_assign(args: argparse.Namespace) -> int:
    from integrations.billing import org_ref_for
    from integrations.billing.managers import reassign

    policies = _policies(args.policies)
    with _store(args.store) as store:
        former = reassign(store, policies, org_ref_for(args.organization), args.role, args.person, _now(),
                          by=f"policydesk managers assign ({os.environ.get('USER') or 'unknown user'})")
    change = "unchanged" if former == args.person else f"was {former or 'nobody'}"
    print(f"organization {args.organization}: {args.role} is {args.person} ({change})")
    return 0


def _write(path: Path, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as error:
        raise UserError(f"cannot write {path}: {error.strerror or error}") from None


def _zammad_record(organization_id: int) -> dict[str, Any] | None:
    """The organization in Zammad when ZAMMAD_URL is set, else ``None``."""
    if not os.environ.get("ZAMMAD_URL"):
        return None
    from integrations.zammad.adapter import ZammadClient
    from integrations.zammad.errors import ZammadError, ZammadNotFound

    try:
        return ZammadClient.from_env().organizations.find(organization_id)
    except ZammadNotFound:
        raise UserError(f"Zammad has no organization {organization_id}") from None
    except ZammadError as error:
        raise UserError(f"Zammad: {error}") from None
