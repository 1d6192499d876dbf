"""The policies and JSON Schemas that ship with policydesk, read as package resources.

In a source tree the top-level ``policies/`` directory is where admins edit them; the
packaging maps it to the package ``plugin.bundled_policies`` (setup.cfg ``package_dir``),
so an installed wheel, an sdist and an editable install all find the same files through
`importlib.resources`, wherever the package lives.
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path
from typing import Any

#: The package the bundled policy files and their schemas are resources of.
PACKAGE = "plugin.bundled_policies"
POLICIES_ENV = "POLICYDESK_POLICIES"


def _files() -> Any:
    return resources.files(PACKAGE)


def schema_text(policy_file: str) -> str:
    """The JSON Schema of policy file ``policy_file`` (``plans.yaml`` -> ``plans.schema.json``)."""
    name = policy_file.replace(".yaml", ".schema.json")
    return str((_files() / name).read_text(encoding="utf-8"))


def schema(policy_file: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(schema_text(policy_file))
    return loaded


def bundled_policies_dir() -> str:
    """A directory holding the bundled policy files (the installed package's own directory)."""
    files = _files()
    path = Path(str(files))
    if not (path / "plans.yaml").is_file():  # pragma: no cover - only a zipped install
        raise FileNotFoundError(f"the bundled policies are not a directory on disk: {files}")
    return str(path)


def default_policies_dir() -> str:
    """``$POLICYDESK_POLICIES``, else ``./policies`` when it exists, else the bundled policies."""
    if os.environ.get(POLICIES_ENV):
        return os.environ[POLICIES_ENV]
    if Path("policies").is_dir():
        return "policies"
    return bundled_policies_dir()
