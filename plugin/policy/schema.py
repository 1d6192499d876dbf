"""Check one policy file against its JSON Schema (Draft 2020-12, checked against the metaschema)."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator

from plugin.policy.errors import PolicyError
from plugin.policy.read import Document
from plugin.yamlsource import expected, json_path, schema_problems


@cache
def _schema(name: str) -> tuple[dict[str, Any], Draft202012Validator]:
    """The schema for policy file ``name``, checked against the Draft 2020-12 metaschema."""
    from plugin.bundled import schema_text  # a package resource: works from a wheel too

    schema = json.loads(schema_text(name))
    Draft202012Validator.check_schema(schema)  # a broken schema is a bug: let it raise
    return schema, Draft202012Validator(schema)


def schema_errors(doc: Document) -> list[PolicyError]:
    """Every schema problem of a document that was read (YAML problems such as duplicate keys included)."""
    schema, validator = _schema(doc.name)
    assert doc.source is not None
    if doc.source.root is None:
        return [doc.error((), f"the file is empty; expected {expected(schema)}")]
    problems = doc.source.problems + schema_problems(doc.source, validator)
    return [PolicyError(doc.file, p.line, p.column, json_path(p.path), p.message) for p in problems]
