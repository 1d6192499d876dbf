"""The replay input: one `TicketRecord` per past ticket, read from JSONL or CSV.

The format is documented by ``ticket_history.schema.json`` (next to this module) and in
``docs/replay.md``. In short, one ticket per line::

    {"id": "4711", "plan": "pro", "channel": "phone", "category": "infrastructure",
     "language": "fr", "emergency": false, "created_at": "2026-03-02T08:15:00Z",
     "first_response_at": "2026-03-02T09:01:00Z",
     "pending": [{"start": "2026-03-02T08:30:00Z", "end": "2026-03-02T08:40:00Z"}],
     "closed_at": "2026-03-03T10:00:00Z"}

CSV has the same fields as columns (header line required, any column order); ``pending``
is written ``start/end;start/end`` (an empty ``end`` is a period still running) and
``emergency`` is ``true``/``false`` (also ``1``/``0``, ``yes``/``no``, empty = false).

Instants are ISO 8601 with a UTC offset or ``Z``; a time without one is an error, because
the same wall-clock time is a different instant in every time zone.

Parsing is hand-written (a million lines through ``jsonschema`` would take minutes); a test
checks that it accepts and rejects the same documents as the schema.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Iterable, Iterator, Sequence

from plugin import timefmt
from plugin.errors import UserError

__all__ = [
    "CSV_COLUMNS",
    "FIELDS",
    "RecordError",
    "SCHEMA_PATH",
    "TicketRecord",
    "detect_format",
    "format_instant",
    "parse_csv_row",
    "parse_json_line",
    "parse_lines",
    "read_records",
    "record_to_csv_row",
    "record_to_json",
    "write_records",
]

SCHEMA_PATH = Path(__file__).with_name("ticket_history.schema.json")

#: Every field of a record, in the order the writers use (also the CSV column order).
FIELDS = ("id", "number", "title", "organization", "plan", "channel", "category", "language", "emergency",
          "created_at", "first_response_at", "pending", "closed_at")
CSV_COLUMNS = FIELDS
_REQUIRED = ("id", "channel", "created_at")
_UTC = dt.timezone.utc
_TRUE = frozenset({"true", "1", "yes", "y", "t"})
_FALSE = frozenset({"false", "0", "no", "n", "f", ""})


class RecordError(UserError, ValueError):
    """One bad input line: ``file:line: message``."""

    def __init__(self, message: str, file: str = "", line: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line

    def at(self, file: str, line: int) -> "RecordError":
        return RecordError(self.message, file, line)

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}: " if self.file else (f"line {self.line}: " if self.line else "")
        return where + self.message


@dataclass(frozen=True, slots=True)
class TicketRecord:
    """A past ticket as replay needs it (all instants timezone-aware)."""

    id: str
    #: How the request came in (``phone``, ``email``, ``web``, ...).
    channel: str
    created_at: dt.datetime
    #: The organization's plan when the ticket was created; ``None``: not set (default plan).
    plan: str | None = None
    category: str | None = None
    #: ISO 639-1 code of the customer's language.
    language: str | None = None
    #: The customer asked for 24/7 emergency handling.
    emergency: bool = False
    #: First agent response or take-charge; ``None``: never answered.
    first_response_at: dt.datetime | None = None
    #: Pending (clock paused) periods, oldest first, not overlapping; the last may have an
    #: end of ``None`` (still pending when exported).
    pending: tuple[tuple[dt.datetime, dt.datetime | None], ...] = ()
    closed_at: dt.datetime | None = None
    #: Organization name or id, for reading the results (not used by the policies).
    organization: str | None = None
    #: The helpdesk's ticket number and title, for reading the results (statements list breaches by them).
    number: str | None = None
    title: str | None = None


# --------------------------------------------------------------------------- values


def parse_instant(value: Any, field: str) -> dt.datetime:
    if not isinstance(value, str):
        raise RecordError(f"{field}: expected an ISO 8601 date-time string such as "
                          f'"2026-03-02T08:15:00Z", got {_show(value)}')
    try:
        return timefmt.parse_instant(value, None)
    except ValueError as error:
        raise RecordError(f"{field}: {error}") from None


def format_instant(t: dt.datetime) -> str:
    """``2026-03-02T08:15:00Z`` (UTC, microseconds only when there are any)."""
    text = t.astimezone(_UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, (list, dict)):
        return "a list" if isinstance(value, list) else "an object"
    return repr(value)


def _optional_text(value: Any, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise RecordError(f"{field}: expected a string or null, got {_show(value)}")
    return value.strip() or None


def _organization(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise RecordError(f"organization: expected a name or id (string or integer) or null, got {_show(value)}")
    return str(value)


def _suggest(name: str) -> str:
    import difflib

    close = difflib.get_close_matches(name, FIELDS, n=1)
    return f' (did you mean "{close[0]}"?)' if close else ""


def _build(values: dict[str, Any], pending: tuple[tuple[dt.datetime, dt.datetime | None], ...]) -> TicketRecord:
    """Check the fields common to both formats and build the record."""
    raw_id = values.get("id")
    if isinstance(raw_id, bool) or not isinstance(raw_id, (str, int)) or str(raw_id).strip() == "":
        raise RecordError(f"id: expected a non-empty string or integer, got {_show(raw_id)}")
    channel = values.get("channel")
    if not isinstance(channel, str) or not channel.strip():
        raise RecordError(f"channel: expected a channel name such as \"phone\" or \"email\", got {_show(channel)}")
    created = parse_instant(values.get("created_at"), "created_at")
    first = values.get("first_response_at")
    first_at = None if first in (None, "") else parse_instant(first, "first_response_at")
    closed = values.get("closed_at")
    closed_at = None if closed in (None, "") else parse_instant(closed, "closed_at")
    if first_at is not None and first_at < created:
        raise RecordError(f"first_response_at {format_instant(first_at)} is before created_at {format_instant(created)}")
    if closed_at is not None and closed_at < created:
        raise RecordError(f"closed_at {format_instant(closed_at)} is before created_at {format_instant(created)}")
    previous_end: dt.datetime | None = created
    for i, (start, end) in enumerate(pending):
        where = f"pending[{i}]"
        if previous_end is None:
            raise RecordError(f"{where}: only the last pending period may be open-ended (no end)")
        if start < previous_end:
            what = "created_at" if i == 0 else f"the end of pending[{i - 1}]"
            raise RecordError(f"{where}: starts {format_instant(start)}, before {what} {format_instant(previous_end)}; "
                              "periods must be in order and not overlap")
        if end is not None and end < start:
            raise RecordError(f"{where}: ends {format_instant(end)} before it starts {format_instant(start)}")
        previous_end = end
    return TicketRecord(
        id=str(raw_id).strip(),
        channel=channel.strip(),
        created_at=created,
        plan=_optional_text(values.get("plan"), "plan"),
        category=_optional_text(values.get("category"), "category"),
        language=_optional_text(values.get("language"), "language"),
        emergency=values.get("emergency", False) or False,
        first_response_at=first_at,
        pending=pending,
        closed_at=closed_at,
        organization=_organization(values.get("organization")),
        number=_optional_text(values.get("number"), "number"),
        title=_optional_text(values.get("title"), "title"),
    )


# --------------------------------------------------------------------------- JSONL


def parse_json_line(text: str) -> TicketRecord:
    """One JSONL line -> `TicketRecord`; `RecordError` (without file/line) if bad."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise RecordError(f"not valid JSON: {error.msg} at column {error.colno}") from None
    if not isinstance(data, dict):
        raise RecordError(f"expected one JSON object per line, got {_show(data)}")
    for name in data:
        if name not in FIELDS:
            raise RecordError(f'unknown field "{name}"{_suggest(name)}; the fields are: {", ".join(FIELDS)}')
    for name in _REQUIRED:
        if name not in data:
            raise RecordError(f'missing required field "{name}"')
    emergency = data.get("emergency", False)
    if not isinstance(emergency, bool):
        raise RecordError(f"emergency: expected true or false, got {_show(emergency)}")
    raw_pending = data.get("pending")
    pending: list[tuple[dt.datetime, dt.datetime | None]] = []
    if raw_pending is not None:
        if not isinstance(raw_pending, list):
            raise RecordError(f'pending: expected a list of {{"start": ..., "end": ...}}, got {_show(raw_pending)}')
        for i, period in enumerate(raw_pending):
            if not isinstance(period, dict) or "start" not in period or set(period) - {"start", "end"}:
                raise RecordError(f'pending[{i}]: expected {{"start": ..., "end": ...}} ("end" null or absent while '
                                  f"still pending), got {_show(period) if not isinstance(period, dict) else json.dumps(period)}")
            start = parse_instant(period["start"], f"pending[{i}].start")
            end_value = period.get("end")
            end = None if end_value is None else parse_instant(end_value, f"pending[{i}].end")
            pending.append((start, end))
    return _build(data, tuple(pending))


def record_to_json(record: TicketRecord) -> dict[str, Any]:
    """The record as the JSON object of one JSONL line (absent optional values omitted)."""
    out: dict[str, Any] = {"id": record.id}
    if record.number is not None:
        out["number"] = record.number
    if record.title is not None:
        out["title"] = record.title
    if record.organization is not None:
        out["organization"] = record.organization
    out["plan"] = record.plan
    out["channel"] = record.channel
    if record.category is not None:
        out["category"] = record.category
    if record.language is not None:
        out["language"] = record.language
    out["emergency"] = record.emergency
    out["created_at"] = format_instant(record.created_at)
    out["first_response_at"] = None if record.first_response_at is None else format_instant(record.first_response_at)
    if record.pending:
        out["pending"] = [{"start": format_instant(s), "end": None if e is None else format_instant(e)}
                          for s, e in record.pending]
    out["closed_at"] = None if record.closed_at is None else format_instant(record.closed_at)
    return out


# --------------------------------------------------------------------------- CSV


def _csv_bool(text: str, field: str) -> bool:
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise RecordError(f"{field}: expected true or false (or 1/0, yes/no, empty), got {text!r}")


def parse_pending_text(text: str) -> tuple[tuple[dt.datetime, dt.datetime | None], ...]:
    """``start/end;start/end`` -> periods (an empty end: still pending)."""
    periods = []
    for i, part in enumerate(p for p in text.split(";") if p.strip()):
        start, sep, end = part.strip().partition("/")
        if not sep:
            raise RecordError(f"pending[{i}]: {part.strip()!r} is not START/END (e.g. "
                              "2026-03-02T08:30:00Z/2026-03-02T09:00:00Z; periods separated by ';')")
        periods.append((parse_instant(start, f"pending[{i}].start"),
                        parse_instant(end, f"pending[{i}].end") if end.strip() else None))
    return tuple(periods)


def parse_csv_row(row: dict[str, str]) -> TicketRecord:
    """One CSV row (a ``csv.DictReader`` dict) -> `TicketRecord`."""
    values: dict[str, Any] = {k: (v.strip() if isinstance(v, str) else v) for k, v in row.items() if k is not None}
    if None in row:
        raise RecordError(f"{len(row[None]) if isinstance(row[None], list) else 1} more value(s) than header columns")  # type: ignore[index]
    for name in _REQUIRED:
        if values.get(name) in (None, ""):
            raise RecordError(f'missing value for required column "{name}"')
    for name in ("plan", "category", "language", "organization", "number", "title"):
        if values.get(name) == "":
            values[name] = None
    values["emergency"] = _csv_bool(values.get("emergency") or "", "emergency")
    return _build(values, parse_pending_text(values.get("pending") or ""))


def record_to_csv_row(record: TicketRecord) -> list[str]:
    pending = ";".join(f"{format_instant(s)}/{'' if e is None else format_instant(e)}" for s, e in record.pending)
    return [
        record.id, record.number or "", record.title or "", record.organization or "", record.plan or "", record.channel, record.category or "",
        record.language or "", "true" if record.emergency else "false", format_instant(record.created_at),
        "" if record.first_response_at is None else format_instant(record.first_response_at), pending,
        "" if record.closed_at is None else format_instant(record.closed_at),
    ]


def check_csv_header(header: Sequence[str], file: str) -> list[str]:
    """The header's column names; `RecordError` at line 1 for unknown or missing columns."""
    names = [h.strip() for h in header]
    for name in names:
        if name not in FIELDS:
            raise RecordError(f'unknown column "{name}"{_suggest(name)}; the columns are: {", ".join(FIELDS)}', file, 1)
    for name in _REQUIRED:
        if name not in names:
            raise RecordError(f'the header has no "{name}" column (required); the columns are: {", ".join(FIELDS)}',
                              file, 1)
    return names


# --------------------------------------------------------------------------- files


def detect_format(path: str | os.PathLike[str], given: str | None = None) -> str:
    """``"jsonl"`` or ``"csv"``: ``given``, else from the file name."""
    if given:
        return given
    name = os.fspath(path).lower()
    if name.endswith(".csv"):
        return "csv"
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    raise RecordError("cannot tell the format from the file name: use .jsonl or .csv, or give --format", os.fspath(path))


def parse_lines(lines: Iterable[str], first_line: int, fmt: str, header: Sequence[str] | None,
                file: str) -> Iterator[TicketRecord | RecordError]:
    """Parse consecutive lines starting at line number ``first_line``; yields each record, or
    the `RecordError` for a bad line (with file and line). Blank lines are skipped."""
    if fmt == "jsonl":
        for n, text in enumerate(lines, first_line):
            if not text.strip():
                continue
            try:
                yield parse_json_line(text)
            except RecordError as error:
                yield error.at(file, n)
        return
    assert header is not None
    for n, text in enumerate(lines, first_line):
        if not text.strip():
            continue
        try:
            row = next(csv.reader([text]))
            if len(row) > len(header):
                raise RecordError(f"{len(row)} values but the header has {len(header)} columns")
            yield parse_csv_row(dict(zip(header, row + [""] * (len(header) - len(row)))))
        except RecordError as error:
            yield error.at(file, n)
        except csv.Error as error:
            yield RecordError(f"bad CSV: {error}", file, n)


def open_text(path: str | os.PathLike[str]) -> IO[str]:
    return open(path, encoding="utf-8-sig", newline="")


def read_records(path: str | os.PathLike[str], fmt: str | None = None) -> Iterator[TicketRecord | RecordError]:
    """Every record of a file, in order; a bad line is yielded as its `RecordError`."""
    file = os.fspath(path)
    fmt = detect_format(file, fmt)
    with open_text(file) as fh:
        header = None
        first = 1
        if fmt == "csv":
            line = fh.readline()
            if not line.strip():
                raise RecordError("empty file: expected a header line with the column names", file, 1)
            header = check_csv_header(next(csv.reader([line])), file)
            first = 2
        yield from parse_lines(fh, first, fmt, header, file)


def write_records(records: Iterable[TicketRecord], path: str | os.PathLike[str] | IO[str], fmt: str | None = None) -> int:
    """Write records as JSONL or CSV; returns how many."""
    if isinstance(path, (str, os.PathLike)):
        fmt = detect_format(path, fmt)
        with open(path, "w", encoding="utf-8", newline="") as fh:
            return _write(records, fh, fmt)
    return _write(records, path, fmt or "jsonl")


def _write(records: Iterable[TicketRecord], fh: IO[str], fmt: str) -> int:
    count = 0
    if fmt == "csv":
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for record in records:
            writer.writerow(record_to_csv_row(record))
            count += 1
        return count
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    for record in records:
        fh.write(dumps(record_to_json(record)))
        fh.write("\n")
        count += 1
    return count


def records_to_text(records: Iterable[TicketRecord], fmt: str = "jsonl") -> str:
    out = io.StringIO()
    _write(records, out, fmt)
    return out.getvalue()
