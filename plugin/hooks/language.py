"""The language of the request, and where it was read (see `plugin.language`)."""

from __future__ import annotations

from plugin.hooks.memo import PolicyCache
from plugin.hookspecs import hookimpl
from plugin.language import SOURCE_TITLES
from plugin.model import Decision, Request, Ticket, Verdict

SOURCE = "policydesk.language"


_CACHE = PolicyCache()


@hookimpl(trylast=True)
def policydesk_language(request: Request, decision: Decision) -> Verdict[str | None]:
    ticket = request.ticket
    return _CACHE.get(request.policies, (ticket.language, ticket.language_source), _verdict, ticket)


def _verdict(ticket: Ticket) -> Verdict[str | None]:
    if ticket.language is None:
        return Verdict(None, SOURCE, "no language known: no ticket attribute, no detected article language, "
                                     "no customer locale")
    where = SOURCE_TITLES.get(ticket.language_source or "", "given with the request")
    return Verdict(ticket.language, SOURCE, f"{ticket.language!r}, {where}")
