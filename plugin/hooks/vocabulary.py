"""The built-in part of the tag vocabulary: every tag the built-in hooks may contribute."""

from __future__ import annotations

from plugin.hookspecs import hookimpl
from plugin.model import Contribution, Policies
from plugin.tags import builtin_vocabulary

SOURCE = "policydesk.vocabulary"


@hookimpl(trylast=True)
def policydesk_tag_vocabulary(policies: Policies) -> list[Contribution]:
    return [Contribution(tag, SOURCE, why) for tag, why in builtin_vocabulary(policies).items()]
