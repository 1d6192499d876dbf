"""Partner organizations: their tickets are tagged, and a plan not open to partners is flagged.

Eligibility itself is `plugin.hookspecs.policydesk_plan_eligibility` (built-in in
`plugin.hooks.subscription`); the engine asks it for every ticket so ``explain`` shows it.
"""

from __future__ import annotations

from plugin.hookspecs import hookimpl
from plugin.model import Contribution, Decision, Request
from plugin.tags import PARTNER_TAG, PLAN_INELIGIBLE_TAG

SOURCE = "policydesk.partner"


@hookimpl(trylast=True)
def policydesk_tags(request: Request, decision: Decision) -> list[Contribution]:
    tags = []
    if request.organization.partner:
        tags.append(Contribution(PARTNER_TAG, SOURCE, "the organization is a partner"))
    eligibility = decision.eligibility
    if eligibility is not None and not eligibility.value:
        tags.append(Contribution(PLAN_INELIGIBLE_TAG, SOURCE, eligibility.reason))
    return tags


@hookimpl(trylast=True)
def policydesk_notes(request: Request, decision: Decision) -> list[Contribution]:
    eligibility = decision.eligibility
    if eligibility is None or eligibility.value:
        return []
    return [Contribution(f"Plan not open to this organization: {eligibility.reason}; billing refuses it, "
                         "check the subscription.", SOURCE, eligibility.reason)]
