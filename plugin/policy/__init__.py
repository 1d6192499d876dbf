"""Load, validate and cross-check ``policies/*.yaml`` into a `plugin.model.Policies`.

Each policy file goes the same way, one module a stage:

1. `read` - bytes, UTF-8, YAML with the position of every node (`read.read_document`);
2. `schema` - its JSON Schema (Draft 2020-12, ``policies/<name>.schema.json``, checked
   against the metaschema; `schema.schema_errors`);
3. `crosschecks` - what a schema cannot say, across values and files (`crosschecks.CrossChecks`);
4. `build` - the typed `Policies` from documents that passed every check (`build.build`).

Every problem becomes a `PolicyError` (`errors`) that points at a file, a line and a column::

    policies/plans.yaml:89:21: $.plans.pro.first_response: expected a duration like "2h", ...

`validate_policies` returns all of them; `load_policies` raises them together as
`PolicyErrors`, or builds the `Policies` when there are none.
"""

from __future__ import annotations

import hashlib
import os

from plugin.model import Policies
from plugin.policy.build import FILES, build
from plugin.policy.crosschecks import CrossChecks
from plugin.policy.errors import PolicyError, PolicyErrors, _sorted
from plugin.policy.read import Document, read_document
from plugin.policy.schema import schema_errors
from plugin.policy.values import MAX_TARGET_MINUTES, parse_duration

__all__ = [
    "FILES",
    "MAX_TARGET_MINUTES",
    "PolicyError",
    "PolicyErrors",
    "load_policies",
    "parse_duration",
    "validate_policies",
]


def validate_policies(directory: str | os.PathLike[str]) -> list[PolicyError]:
    """Every problem in the policy directory, sorted by file and line; ``[]`` when valid."""
    return _check(directory)[1]


def load_policies(directory: str | os.PathLike[str]) -> Policies:
    """Read ``hours.yaml``, ``plans.yaml`` and ``scope.yaml`` from ``directory``.

    :raises PolicyErrors: listing every problem, when there is any.
    """
    documents, errors = _check(directory)
    if errors:
        raise PolicyErrors(errors)
    return build(os.fspath(directory), {name: doc.data for name, doc in documents.items()},
                 version=policy_version(documents))


def policy_version(documents: dict[str, Document]) -> str:
    """12 hex digits of sha256 over each file's name and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(documents):
        digest.update(name.encode() + b"\0" + documents[name].raw + b"\0")
    return digest.hexdigest()[:12]


def _check(directory: str | os.PathLike[str]) -> tuple[dict[str, Document], list[PolicyError]]:
    directory = os.fspath(directory)
    documents: dict[str, Document] = {}
    errors: list[PolicyError] = []
    for name in FILES:
        doc, found = read_document(directory, name)
        if not found:
            found = schema_errors(doc)
        documents[name] = doc
        errors.extend(found)
    errors.extend(CrossChecks(documents).run())
    return documents, _sorted(errors)
