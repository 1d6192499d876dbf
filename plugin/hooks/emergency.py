"""Whether a request qualifies for 24/7 emergency handling.

Granted only when all hold: the customer asked for it, the plan includes 24/7 emergency
calls, it came by a channel that may ask for it ("emergency calls": phone by default), the
request is in scope, its category is an infrastructure problem and its language is
accepted. Otherwise the request is handled on its channel's normal hours, tagged
``emergency:refused``, and the note gives the agent a ready reply in the customer's
language (the policies' ``emergency.replies``) telling why, as the contract asks.
"""

from __future__ import annotations

from plugin.hooks.memo import PolicyCache
from plugin.hookspecs import hookimpl
from plugin.model import (
    Contribution,
    Decision,
    EmergencyVerdict,
    Request,
    ScopeRules,
    Verdict,
)
from plugin.tags import EMERGENCY_REFUSED_TAG, EMERGENCY_TAG

SOURCE = "policydesk.emergency"
_NOT_REQUESTED = Verdict(EmergencyVerdict(False, False, ("no emergency handling was requested",)), SOURCE,
                         "no emergency handling was requested")


@hookimpl(trylast=True)
def policydesk_emergency(request: Request, decision: Decision) -> Verdict[EmergencyVerdict]:
    ticket = request.ticket
    if not ticket.emergency_requested:
        return _NOT_REQUESTED
    language = decision.language.value if decision.language is not None else ticket.language
    in_scope = decision.scope is None or decision.scope.value.in_scope
    key = (decision.plan.value if decision.plan is not None else None, ticket.channel, in_scope, ticket.category,
           language)
    return _CACHE.get(request.policies, key, _emergency, request, decision, language, in_scope)


_CACHE = PolicyCache()


def _emergency(request: Request, decision: Decision, language: str | None, in_scope: bool) -> Verdict[EmergencyVerdict]:
    ticket = request.ticket
    plan = request.plan_of(decision)
    rules = request.policies.scope
    granted: list[str] = []
    refused: list[str] = []
    refused_for: list[str] = []

    def check(key: str, ok: bool, yes: str, no: str) -> None:
        if ok:
            granted.append(yes)
        else:
            refused.append(no)
            refused_for.append(key)

    check("plan", plan.emergency_24_7, f"the {plan.title} plan includes 24/7 emergency calls",
          f"the {plan.title} plan does not include 24/7 emergency calls")
    channels = ", ".join(sorted(rules.emergency_channels))
    check("channel", ticket.channel in rules.emergency_channels,
          f"it came by {ticket.channel}, a channel for emergency calls",
          f"24/7 emergencies are asked for by {channels} only, not by {ticket.channel}")
    check("scope", in_scope, "the request is within the scope of support",
          "the request is outside the scope of support")
    accepted_categories = ", ".join(sorted(rules.emergency_categories))
    check("category", ticket.category in rules.emergency_categories,
          f"category {ticket.category!r} is an infrastructure problem",
          f"category {ticket.category!r} is not one that qualifies for emergencies ({accepted_categories})")
    accepted_languages = ", ".join(sorted(rules.emergency_languages))
    check("language", language in rules.emergency_languages,
          f"language {language!r} is accepted for emergencies",
          f"emergencies are handled only in {accepted_languages}, not in {language!r}")
    if not refused:
        verdict = EmergencyVerdict(True, True, tuple(granted))
        return Verdict(verdict, SOURCE, "granted: " + "; ".join(granted))
    reply, reply_language = refusal_reply(rules, tuple(refused_for), language)
    verdict = EmergencyVerdict(True, False, tuple(refused), tuple(refused_for), reply, reply_language)
    return Verdict(verdict, SOURCE, "refused: " + "; ".join(refused))


def refusal_reply(rules: ScopeRules, refused_for: tuple[str, ...], language: str | None) -> tuple[str | None, str | None]:
    """The ready reply for a refused emergency, in ``language`` when the policies have it
    (else the fallback language), and that language; ``(None, None)`` without replies."""
    lang = language if language is not None and language in rules.emergency_replies else rules.reply_fallback_language
    texts = rules.emergency_replies.get(lang)
    if not texts:
        return None, None
    reasons = [texts[key] for key in refused_for if texts.get(key)]
    parts = [texts.get("intro", ""), "; ".join(reasons) + "." if reasons else "", texts.get("closing", "")]
    return " ".join(p.strip() for p in parts if p.strip()), lang


@hookimpl(trylast=True)
def policydesk_tags(request: Request, decision: Decision) -> list[Contribution]:
    emergency = decision.emergency
    if emergency is None or not emergency.value.requested:
        return []
    tag = EMERGENCY_TAG if emergency.value.eligible else EMERGENCY_REFUSED_TAG
    return [Contribution(tag, SOURCE, emergency.reason)]


@hookimpl(trylast=True)
def policydesk_notes(request: Request, decision: Decision) -> list[Contribution]:
    emergency = decision.emergency
    if emergency is None or not emergency.value.requested:
        return []
    value = emergency.value
    if value.eligible:
        text = "24/7 emergency accepted: " + "; ".join(value.reasons) + "."
    else:
        text = ("24/7 emergency refused, handled as a normal request on normal hours. Tell the customer why: "
                + "; ".join(value.reasons) + ".")
        if value.reply:
            text += f" Ready reply ({value.reply_language}): {value.reply}"
    return [Contribution(text, SOURCE, emergency.reason)]
