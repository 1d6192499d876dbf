"""Read one policy file: bytes, UTF-8, YAML with positions (never raises for a bad file)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plugin.policy.errors import PolicyError
from plugin.yamlsource import Path as DocPath
from plugin.yamlsource import Source, YamlSyntaxError, json_path, load_yaml


@dataclass
class Document:
    """One policy file as read: where it is, and its YAML (``None`` if unreadable)."""

    name: str
    file: str
    source: Source | None = None
    #: The file's bytes as read (for the policies' version digest).
    raw: bytes = b""

    @property
    def data(self) -> Any:
        return self.source.data if self.source is not None else None

    def error(self, path: DocPath, message: str, *, key: bool = False) -> PolicyError:
        line, column = self.source.position(path, key=key) if self.source is not None else (1, 1)
        return PolicyError(self.file, line, column, json_path(path), message)

    def line_of(self, path: DocPath, *, key: bool = False) -> int:
        return self.error(path, "", key=key).line


def read_document(directory: str, name: str) -> tuple[Document, list[PolicyError]]:
    """Read and parse one policy file; the errors say why it could not be read."""
    doc = Document(name, os.path.join(directory, name))
    try:
        raw = doc.raw = Path(doc.file).read_bytes()
    except FileNotFoundError:
        where = "" if os.path.isdir(directory) else f" (there is no directory {directory})"
        return doc, [doc.error((), f"file not found{where}")]
    except OSError as error:
        return doc, [doc.error((), f"cannot read the file: {error.strerror or error}")]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        column = error.start - (raw.rfind(b"\n", 0, error.start) + 1) + 1
        return doc, [PolicyError(doc.file, line, column, "$", "not UTF-8 text; save the file as UTF-8")]
    try:
        doc.source = load_yaml(text)
    except YamlSyntaxError as error:
        return doc, [PolicyError(doc.file, error.line, error.column, "$", error.message)]
    return doc, []
