"""The built-in hook implementations, one concern per module.

Each module answers one part of the Decision and contributes its own tags and note
sentences; all of them are registered ``trylast`` so a site plugin overrides any of them
by answering the same hook. The engine calls them in the order of `plugin.hookspecs`:

- `tier`: which plan applies, and the ticket's priority;
- `language`: the request's language and where it was read;
- `partner`: partner tickets tagged, a plan not open to the organization flagged;
- `scope`: in or out of scope of support, with the referral to partners;
- `emergency`: whether 24/7 emergency handling is granted, and why (not), with a ready reply;
- `hours`: which calendar's opening hours count;
- `sla`: when the first response is due, and the escalation ladder;
- `account_manager`: the account-manager roles and who fills them;
- `advice`: customised advice, within its hours or queued for the next window;
- `routing`: the group and owner the ticket should have;
- `notification`: who hears of an escalation step, and when;
- `vocabulary`: every tag the built-ins may contribute (so policydesk may remove it later);
- `subscription`: plan eligibility, commitment length and plan changes, for billing.
"""

from types import ModuleType

from plugin.hooks import (
    account_manager,
    advice,
    emergency,
    hours,
    language,
    notification,
    partner,
    routing,
    scope,
    sla,
    subscription,
    tier,
    vocabulary,
)

#: Plugin name -> module, in the order they are registered (and their notes are read).
BUILTIN_PLUGINS: dict[str, ModuleType] = {
    "policydesk.tier": tier,
    "policydesk.language": language,
    "policydesk.partner": partner,
    "policydesk.scope": scope,
    "policydesk.emergency": emergency,
    "policydesk.hours": hours,
    "policydesk.sla": sla,
    "policydesk.account_manager": account_manager,
    "policydesk.advice": advice,
    "policydesk.routing": routing,
    "policydesk.notification": notification,
    "policydesk.vocabulary": vocabulary,
    "policydesk.subscription": subscription,
}
