"""The language of a request, and where it was read.

Most trusted first: a ticket attribute an agent set (for a phone call, the language the
caller speaks), the language detected in the customer's article, the customer's locale in
Zammad (copied from whoever created the user, often an agent's ``en-us``, so the weakest).
"""

from __future__ import annotations

from plugin.model import LANGUAGE_SOURCES

#: How each source reads in `explain` and notes.
SOURCE_TITLES = {
    "ticket": "set on the ticket by an agent",
    "article": "detected in the customer's message",
    "customer": "from the customer's locale in Zammad",
}


def language_code(value: str | None) -> str | None:
    """A locale or language tag (``fr-fr``, ``en_US``, ``de-CH``, ``FR``) -> ISO 639-1 (``fr``)."""
    if not value:
        return None
    code = str(value).replace("_", "-").split("-", 1)[0].strip().lower()
    return code if code.isalpha() and 2 <= len(code) <= 3 else None


def request_language(
    ticket_attribute: str | None, article_language: str | None, customer_locale: str | None
) -> tuple[str | None, str | None]:
    """(language code, source) from the first of the three that gives one; source is one of
    `plugin.model.LANGUAGE_SOURCES` (``None`` with no language)."""
    for source, value in zip(LANGUAGE_SOURCES, (ticket_attribute, article_language, customer_locale)):
        code = language_code(value)
        if code is not None:
            return code, source
    return None, None
