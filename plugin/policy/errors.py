"""Errors in policy files: each one points at a file, a line and a column."""

from __future__ import annotations

from collections.abc import Iterable

from plugin.errors import UserError


class PolicyError(Exception):
    """One problem in a policy file, pointing at the file, line and column (1-based)."""

    def __init__(self, file: str, line: int, column: int, path: str, message: str) -> None:
        super().__init__(file, line, column, path, message)
        self.file = file
        self.line = line
        self.column = column
        #: JSON path of the value concerned, e.g. ``$.plans.pro.first_response``.
        self.path = path
        self.message = message

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.path}: {self.message}"

    def __repr__(self) -> str:
        return f"PolicyError({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PolicyError) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def _key(self) -> tuple[str, int, int, str, str]:
        return (self.file, self.line, self.column, self.path, self.message)


class PolicyErrors(UserError):
    """Raised by `load_policies`: every problem found, sorted by file and line."""

    def __init__(self, errors: Iterable[PolicyError]) -> None:
        self.errors: list[PolicyError] = _sorted(errors)
        super().__init__(self.errors)

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


def _sorted(errors: Iterable[PolicyError]) -> list[PolicyError]:
    unique = list(dict.fromkeys(errors))  # a problem found twice is reported once
    return sorted(unique, key=lambda e: (e.file, e.line, e.column))

