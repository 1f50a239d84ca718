"""Import files: reading CSV or JSON Lines as a stream of batches of rows (fields renamed,
lines that cannot be parsed set aside), the rejects file a user fixes and feeds back, and
the progress line of a long import. What the rows do is :mod:`tenure.core.imports`."""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, BinaryIO

KINDS = ("customers", "orders", "interactions")
#: The fields each kind takes, and which must be there.
FIELDS: dict[str, tuple[str, ...]] = {
    "customers": ("external_id", "name", "email", "phone", "tags", "source_channel", "birthday", "locale",
                  "consent_email", "consent_sms", "consent_push"),
    "orders": ("customer_external_id", "customer_id", "channel", "external_id", "currency", "amount", "lines",
               "placed_at", "status", "refunded_amount"),
    "interactions": ("customer_external_id", "customer_id", "kind", "channel", "occurred_at", "summary",
                     "payload", "external_id"),
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "customers": ("external_id", "name"),
    "orders": ("channel", "external_id"),
    "interactions": ("kind", "channel"),
}
LIST_SEPARATOR = ";"
BATCH = 1000
#: Columns the rejects file adds to a refused row; a file fed back with them imports as usual.
REJECTS_PREFIX = "rejected_"


class ImportError_(ValueError):
    """The file as a whole cannot be imported (encoding, format, columns); nothing was read."""


@dataclass
class Rejected:
    line: int
    reason: str
    source: dict[str, Any] = field(default_factory=dict, compare=False)  # the row as the file gave it


@dataclass(frozen=True)
class Row:
    line: int
    values: dict[str, Any]
    key: str  # content digest plus its occurrence, the row's idempotency key (not for orders)
    source: dict[str, Any] = field(default_factory=dict, compare=False)  # the row as the file gave it


def parse_mapping(pairs: tuple[str, ...] | list[str], kind: str) -> dict[str, str]:
    """``--map "E-Mail=email"`` pairs: source column to field."""
    mapping = {}
    for pair in pairs:
        column, sep, target = pair.partition("=")
        if not sep or not column.strip() or not target.strip():
            raise ImportError_(f"--map {pair!r}: write COLUMN=FIELD")
        if target.strip() not in FIELDS[kind]:
            raise ImportError_(f"--map {pair!r}: {kind} have no field {target.strip()!r} "
                               f"(fields: {', '.join(FIELDS[kind])})")
        mapping[column.strip()] = target.strip()
    return mapping


def file_format(path: Path, given: str | None) -> str:
    if given:
        return given
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    raise ImportError_(f"{path.name}: cannot tell the format from the extension; pass --format csv or jsonl")


@dataclass
class RowStream:
    """The rows of a file, read in batches as they are consumed. ``ignored`` and
    ``bytes_read`` grow as the file is read; ``size`` is the file's size in bytes."""

    path: Path
    kind: str
    fmt: str
    mapping: dict[str, str]
    size: int = 0
    bytes_read: int = 0
    ignored: list[str] = field(default_factory=list)
    _targets: dict[str, str] = field(default_factory=dict)
    _seen: Counter[str] = field(default_factory=Counter)

    def _target(self, column: str) -> str | None:
        """The field a column fills, or None for a column no field takes (reported once)."""
        target = self._targets.get(column)
        if target is None:
            # "Name" and "Source Channel" need no --map; anything else unknown is reported, not guessed.
            target = self.mapping.get(column) or column.strip().lower().replace(" ", "_")
            self._targets[column] = target
            if target not in FIELDS[self.kind] and not column.startswith(REJECTS_PREFIX):
                self.ignored.append(column)
        return target if target in FIELDS[self.kind] else None

    def _lines(self, raw: BinaryIO) -> Iterator[str]:
        first = True
        for line in raw:
            self.bytes_read += len(line)
            text = line.decode("utf-8")
            if first:
                text, first = text.removeprefix("\ufeff"), False
            yield text

    def _records(self) -> Iterator[tuple[int, dict[str, Any] | Rejected]]:
        with self.path.open("rb") as raw:
            if self.fmt == "csv":
                reader = csv.DictReader(self._lines(raw))
                for record in reader:
                    if None in record:
                        yield reader.line_num, Rejected(reader.line_num, "more values than columns in the header")
                        continue
                    yield reader.line_num, {k: v for k, v in record.items() if v not in (None, "")}
                return
            for number, line in enumerate(self._lines(raw), start=1):
                if not line.strip():
                    continue
                try:
                    value = json.loads(line)
                except json.JSONDecodeError as error:
                    yield number, Rejected(number, f"not valid JSON: {error.msg}")
                    continue
                if not isinstance(value, dict):
                    yield number, Rejected(number, "each line must be a JSON object")
                    continue
                yield number, {k: v for k, v in value.items() if v not in (None, "")}

    def batches(self, size: int = BATCH) -> Iterator[tuple[list[Row], list[Rejected]]]:
        """Batches of up to ``size`` rows (with the lines that could not be parsed among
        them). The first batch is checked for the required fields before it is handed out."""
        rows: list[Row] = []
        bad: list[Rejected] = []
        checked = False
        for number, record in self._records():
            if isinstance(record, Rejected):
                bad.append(record)
                continue
            values = {target: v for k, v in record.items() if (target := self._target(k)) is not None}
            key = ""
            if self.kind != "orders":  # orders are found again by channel and external id
                digest = hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:40]
                self._seen[digest] += 1
                key = f"{digest}:{self._seen[digest]}"
            rows.append(Row(number, values, key, record))
            if len(rows) >= size:
                if not checked:
                    self._check_required(rows)
                    checked = True
                yield rows, bad
                rows, bad = [], []
        if rows and not checked:
            self._check_required(rows)
        if rows or bad:
            yield rows, bad

    def _check_required(self, rows: list[Row]) -> None:
        missing = [f for f in REQUIRED[self.kind] if all(f not in row.values for row in rows)]
        if missing:
            columns = list(self._targets)
            raise ImportError_(f"{self.path.name}: no column gives {', '.join(missing)} (found: "
                               f"{', '.join(columns)}); name the column with --map COLUMN=FIELD")


def open_rows(path: Path, kind: str, fmt: str | None = None, mapping: dict[str, str] | None = None) -> RowStream:
    """The file's rows as a :class:`RowStream`, after checking that the whole file is UTF-8
    (a pass that keeps nothing)."""
    _check_utf8(path)
    return RowStream(path, kind, file_format(path, fmt), mapping or {}, size=path.stat().st_size)


def _check_utf8(path: Path) -> None:
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = newlines = 0
    with path.open("rb") as raw:
        while chunk := raw.read(1 << 20):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as error:
                bad = chunk[error.start]
                line = newlines + chunk[: error.start].count(b"\n") + 1
                raise ImportError_(
                    f"{path.name} is not UTF-8 (byte 0x{bad:02x} on line {line}); convert it first, "
                    f"for example: iconv -f latin1 -t utf-8 {path.name} > {path.stem}.utf8{path.suffix}"
                ) from None
            offset += len(chunk)
            newlines += chunk.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise ImportError_(f"{path.name} is not UTF-8 (it ends inside a character)") from None


def read_rows(path: Path, kind: str, fmt: str | None = None, mapping: dict[str, str] | None = None,
              ) -> tuple[list[Row], list[Rejected], list[str]]:
    """Every row of the file at once (small files, tests): the rows with their fields
    renamed, the lines that could not be parsed, and the columns no field takes."""
    stream = open_rows(path, kind, fmt, mapping)
    rows: list[Row] = []
    bad: list[Rejected] = []
    for batch, rejected in stream.batches():
        rows += batch
        bad += rejected
    return rows, bad, stream.ignored


class ImportProgress:
    """Rows, rate and time left of an import: one line redrawn on a terminal, a line every
    few seconds into a pipe or a log."""

    def __init__(self, kind: str, out: Any, every: float = 5.0) -> None:
        self.kind, self.out, self.every = kind, out, every
        self.started = self.shown = time.monotonic()
        self.terminal = bool(getattr(out, "isatty", lambda: False)())

    def __call__(self, rows: int, done: int, size: int) -> None:
        now = time.monotonic()
        if not self.terminal and now - self.shown < self.every and done < size:
            return
        self.shown = now
        took = max(now - self.started, 1e-9)
        left = (size - done) / (done / took) if done else 0.0
        line = (f"importing {self.kind}: {rows:,} rows, {rows / took:,.0f} rows/s, "
                f"{100 * done / max(size, 1):.0f}% of the file, about {left:,.0f} s left")
        if self.terminal:
            self.out.write(f"\r{line}\x1b[K" + ("\n" if done >= size else ""))
        else:
            self.out.write(line + "\n")
        self.out.flush()


class Rejects:
    """The rows an import refused: counted, the first :attr:`KEPT` held for the summary, and
    every one spooled to a temporary file as its batch ends (in line order), so memory stays
    flat however many rows a large file has wrong; :meth:`save` writes the rejects file from
    the spool. Reads like a list of :class:`Rejected` for the rows it holds."""

    KEPT = 1000

    def __init__(self, items: Iterable[Rejected] = ()) -> None:
        self.count = 0
        self.kept: list[Rejected] = []
        self._pending: list[Rejected] = []
        self._spool: IO[str] | None = None
        self += items

    def append(self, item: Rejected) -> None:
        self.count += 1
        if len(self.kept) < self.KEPT:
            self.kept.append(item)
        self._pending.append(item)

    def __iadd__(self, items: Iterable[Rejected]) -> Rejects:
        for item in items:
            self.append(item)
        return self

    def end_batch(self) -> None:
        """Spool the batch's refusals: a batch's lines all come before the next batch's."""
        if not self._pending:
            return
        if self._spool is None:
            # Lives as long as the report (closed by close(), or with the object).
            self._spool = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115
        for r in sorted(self._pending, key=lambda r: r.line):
            self._spool.write(json.dumps([r.line, r.reason, r.source], default=str) + "\n")
        self._pending = []

    def _spooled(self) -> Iterator[Rejected]:
        self.end_batch()
        if self._spool is None:
            return
        self._spool.seek(0)
        for text in self._spool:
            line, reason, source = json.loads(text)
            yield Rejected(line, reason, source)
        self._spool.seek(0, 2)

    def save(self, path: Path) -> None:
        """The refused rows with their own columns and two more, ``rejected_line`` and
        ``rejected_reason``: fix them in place and import the file again (the two columns are
        skipped). CSV or JSON Lines, by the extension; read back from the spool, so a file of
        any size is written in constant memory."""
        if path.suffix.lower() in (".jsonl", ".ndjson"):
            with path.open("w", encoding="utf-8") as out:
                for r in self._spooled():
                    out.write(json.dumps({**r.source, f"{REJECTS_PREFIX}line": r.line,
                                          f"{REJECTS_PREFIX}reason": r.reason}, default=str) + "\n")
            return
        columns = list(dict.fromkeys(c for r in self._spooled() for c in r.source))
        with path.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow([*columns, f"{REJECTS_PREFIX}line", f"{REJECTS_PREFIX}reason"])
            for r in self._spooled():
                writer.writerow([_cell(r.source.get(c)) for c in columns] + [r.line, r.reason])

    def close(self) -> None:
        if self._spool is not None:
            self._spool.close()
            self._spool = None

    def __len__(self) -> int:
        return self.count

    def __bool__(self) -> bool:
        return self.count > 0

    def __iter__(self) -> Iterator[Rejected]:
        return iter(self.kept)

    def __getitem__(self, index: slice) -> list[Rejected]:
        return self.kept[index]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Rejects):
            return self.count == other.count and self.kept == other.kept
        return isinstance(other, list) and self.count == len(self.kept) and self.kept == other

    __hash__ = None  # type: ignore[assignment]


def _cell(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, dict | list) else ("" if value is None else value)
