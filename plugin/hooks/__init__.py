"""The built-in hook implementations, one concern per module.

Each module answers one part of the Decision and contributes its own tags and note
sentences; all of them are registered ``trylast`` so a site plugin overrides any of them
by answering the same hook. The engine calls them in the order of `plugin.hookspecs`:

- `tier`: which plan applies, and the ticket's priority;
- `scope`: in or out of scope of support, with the referral to partners;
- `emergency`: whether 24/7 emergency handling is granted, and why (not);
- `hours`: which calendar's opening hours count;
- `sla`: when the first response is due, and the escalation ladder;
- `account_manager`: the account-manager roles and who fills them.
"""

from types import ModuleType

from plugin.hooks import account_manager, emergency, hours, scope, sla, tier

#: Plugin name -> module, in the order they are registered.
BUILTIN_PLUGINS: dict[str, ModuleType] = {
    "policydesk.tier": tier,
    "policydesk.scope": scope,
    "policydesk.emergency": emergency,
    "policydesk.hours": hours,
    "policydesk.sla": sla,
    "policydesk.account_manager": account_manager,
}
