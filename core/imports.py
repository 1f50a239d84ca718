"""``tenure import customers|orders|interactions FILE``: rows from CSV or JSON Lines through
the core services, as if each came in through the API.

- Each row runs in its own savepoint (rows are committed in batches): a row the services
  refuse is rolled back whole and reported with its line and reason; nothing is half-written.
- Each row is claimed once with an idempotency record keyed by its content, so importing the
  same file again changes nothing, and a run that stopped halfway resumes by skipping what
  it already committed. A row whose content changed is a new row: it updates the customer.
- The file must be UTF-8 (a byte-order mark is fine); anything else is refused before a row
  is read, saying where the first bad byte is.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from core import idempotency
from core.context import ServiceContext
from core.db import Database
from core.errors import UserError
from core.models import CustomerIdentity
from core.plugins import PluginManager
from core.services.customers import CustomerData, upsert_customer
from core.services.interactions import log_interaction
from core.services.orders import LineData, OrderData, record_order
from core.settings import Settings

KINDS = ("customers", "orders", "interactions")
#: The fields each kind takes, and which must be there.
FIELDS: dict[str, tuple[str, ...]] = {
    "customers": ("external_id", "name", "email", "phone", "tags", "source_channel", "birthday", "locale",
                  "consent_email", "consent_sms", "consent_push"),
    "orders": ("customer_external_id", "customer_id", "channel", "external_id", "currency", "amount", "lines",
               "placed_at", "status"),
    "interactions": ("customer_external_id", "customer_id", "kind", "channel", "occurred_at", "summary",
                     "payload", "external_id"),
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "customers": ("external_id", "name"),
    "orders": ("channel", "external_id"),
    "interactions": ("kind", "channel"),
}
LIST_SEPARATOR = ";"
BATCH = 200


class ImportError_(ValueError):
    """The file as a whole cannot be imported (encoding, format, columns); nothing was read."""


@dataclass
class Rejected:
    line: int
    reason: str


@dataclass
class ImportReport:
    kind: str
    rows: int = 0
    created: int = 0
    updated: int = 0
    already_imported: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    dry_run: bool = False

    def lines(self) -> list[str]:
        verb = "would be" if self.dry_run else "were"
        out = [f"{self.rows} rows read: {self.created} {verb} new, {self.updated} {verb} updates, "
               f"{self.already_imported} already imported, {len(self.rejected)} rejected"]
        if self.ignored_columns:
            out.append(f"ignored columns (no such field; use --map COLUMN=FIELD): {', '.join(self.ignored_columns)}")
        return out


@dataclass(frozen=True)
class Row:
    line: int
    values: dict[str, Any]
    key: str  # content digest plus its occurrence, the row's idempotency key


def decode(raw: bytes, path: Path) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise ImportError_(
            f"{path.name} is not UTF-8 (byte 0x{raw[error.start]:02x} on line {line}); convert it first, "
            f"for example: iconv -f latin1 -t utf-8 {path.name} > {path.stem}.utf8{path.suffix}"
        ) from None


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


def read_rows(path: Path, kind: str, fmt: str | None = None, mapping: dict[str, str] | None = None,
              ) -> tuple[list[Row], list[Rejected], list[str]]:
    """Every row of the file with its fields renamed, the lines that could not be parsed,
    and the columns no field takes."""
    text = decode(path.read_bytes(), path)
    fmt = file_format(path, fmt)
    mapping = mapping or {}
    raw: list[tuple[int, dict[str, Any]]] = []
    bad: list[Rejected] = []
    if fmt == "csv":
        reader = csv.DictReader(io.StringIO(text, newline=""))
        for record in reader:
            if None in record:
                bad.append(Rejected(reader.line_num, "more values than columns in the header"))
                continue
            raw.append((reader.line_num, {k: v for k, v in record.items() if v not in (None, "")}))
    else:
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as error:
                bad.append(Rejected(number, f"not valid JSON: {error.msg}"))
                continue
            if not isinstance(value, dict):
                bad.append(Rejected(number, "each line must be a JSON object"))
                continue
            raw.append((number, {k: v for k, v in value.items() if v not in (None, "")}))
    columns = list(dict.fromkeys(c for _, values in raw for c in values))
    # "Name" and "Source Channel" need no --map; anything else unknown is reported, not guessed.
    target = {c: mapping.get(c) or c.strip().lower().replace(" ", "_") for c in columns}
    ignored = [c for c in columns if target[c] not in FIELDS[kind]]
    renamed = [(line, {target[k]: v for k, v in values.items() if k not in ignored}) for line, values in raw]
    missing = [f for f in REQUIRED[kind] if renamed and all(f not in v for _, v in renamed)]
    if missing:
        raise ImportError_(f"{path.name}: no column gives {', '.join(missing)} (found: {', '.join(columns)}); "
                           "name the column with --map COLUMN=FIELD")
    seen: Counter[str] = Counter()
    rows = []
    for number, values in renamed:
        digest = hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:40]
        seen[digest] += 1
        rows.append(Row(number, values, f"{digest}:{seen[digest]}"))
    return rows, bad, ignored


# -- Values from text ------------------------------------------------------------------------


def _required(row: dict[str, Any], name: str) -> str:
    value = row.get(name)
    if value is None or not str(value).strip():
        raise UserError("must not be empty", name, "required")
    return str(value).strip()


def _int(row: dict[str, Any], name: str) -> int | None:
    value = row.get(name)
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    try:
        return int(str(value).strip())
    except ValueError:
        raise UserError(f"must be a whole number, got {value!r}", name, "invalid") from None


def _bool(row: dict[str, Any], name: str) -> bool | None:
    value = row.get(name)
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "y"):
        return True
    if text in ("0", "false", "no", "n"):
        return False
    raise UserError(f"must be true or false, got {value!r}", name, "invalid")


def _time(row: dict[str, Any], name: str) -> datetime | None:
    value = row.get(name)
    if value is None:
        return None
    try:
        return datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    except ValueError:
        raise UserError(f"must be an ISO 8601 time such as 2026-01-31T09:00:00Z, got {value!r}", name,
                        "invalid_time") from None


def _date(row: dict[str, Any], name: str) -> date | None:
    value = row.get(name)
    if value is None:
        return None
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise UserError(f"must be a date such as 1990-05-17, got {value!r}", name, "invalid_date") from None


def _list(row: dict[str, Any], name: str) -> list[str] | None:
    value = row.get(name)
    if value is None:
        return None
    if isinstance(value, list):
        return [str(v) for v in value]
    return [part.strip() for part in str(value).split(LIST_SEPARATOR) if part.strip()]


def _json_object(row: dict[str, Any], name: str) -> Any:
    value = row.get(name)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as error:
            raise UserError(f"must be JSON: {error.msg}", name, "invalid") from None
    return value


# -- One row through the services ------------------------------------------------------------


async def _customer_id(ctx: ServiceContext, row: dict[str, Any], identity_kind: str) -> int:
    if row.get("customer_id") is not None:
        return _int(row, "customer_id") or 0
    external = row.get("customer_external_id")
    if external is None:
        raise UserError("give customer_external_id or customer_id", "customer_external_id", "required")
    found = await ctx.session.scalar(select(CustomerIdentity.customer_id).where(
        CustomerIdentity.kind == identity_kind, CustomerIdentity.value == str(external).strip()))
    if found is None:
        raise UserError(f"no customer is known as {identity_kind} {external!r}; import customers first",
                        "customer_external_id", "not_found")
    return int(found)


async def _customer(ctx: ServiceContext, row: dict[str, Any], identity_kind: str) -> dict[str, Any]:
    data = CustomerData(name=row.get("name"))
    for name, target in (("email", "emails"), ("phone", "phones"), ("tags", "tags")):
        if name in row:
            setattr(data, target, _list(row, name))
    for name in ("source_channel", "locale"):
        if name in row:
            setattr(data, name, str(row[name]))
    if "birthday" in row:
        data.birthday = _date(row, "birthday")
    for name in ("consent_email", "consent_sms", "consent_push"):
        if name in row:
            setattr(data, name, _bool(row, name))
    customer, created = await upsert_customer(ctx, identity_kind, _required(row, "external_id"), data)
    return {"customerId": customer.id, "created": created}


async def _order(ctx: ServiceContext, row: dict[str, Any], identity_kind: str) -> dict[str, Any]:
    lines = []
    for n, line in enumerate(_json_object(row, "lines") or []):
        if not isinstance(line, dict):
            raise UserError("each line must be an object with sku, quantity, unit_price", f"lines[{n}]")
        lines.append(LineData(sku=str(line.get("sku", "")), quantity=_int(line, "quantity") or 0,
                              unit_price=_int(line, "unit_price") or 0, name=str(line.get("name", "")),
                              category=line.get("category")))
    currency = str(row.get("currency") or ctx.settings.currency)
    data = OrderData(customer_id=await _customer_id(ctx, row, identity_kind), channel=_required(row, "channel"),
                     external_id=_required(row, "external_id"), currency=currency,
                     amount=_int(row, "amount"), lines=lines, placed_at=_time(row, "placed_at"),
                     status=str(row.get("status") or "paid"))
    order, created = await record_order(ctx, data)
    return {"orderId": order.id, "created": created}


async def _interaction(ctx: ServiceContext, row: dict[str, Any], identity_kind: str) -> dict[str, Any]:
    interaction, created = await log_interaction(
        ctx, await _customer_id(ctx, row, identity_kind), _required(row, "kind"), _required(row, "channel"),
        _time(row, "occurred_at"), str(row.get("summary") or ""), _json_object(row, "payload"),
        str(row["external_id"]) if row.get("external_id") is not None else None)
    return {"interactionId": interaction.id, "created": created}


HANDLERS = {"customers": _customer, "orders": _order, "interactions": _interaction}


class _DryRun(Exception):
    """Rolls a dry run's savepoint back after the row went through."""


async def import_rows(
    db: Database,
    settings: Settings,
    plugins: PluginManager,
    kind: str,
    rows: list[Row],
    *,
    identity_kind: str = "external",
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Run ``rows`` through the services, each in its own savepoint; see the module notes."""
    report = ImportReport(kind, rows=len(rows), dry_run=dry_run)
    handler = HANDLERS[kind]
    for start in range(0, len(rows), BATCH):
        batch = rows[start: start + BATCH]
        async with db.transaction() as session:
            for row in batch:
                ctx = ServiceContext(session, settings, plugins, actor=f"import:{kind}")
                outcome: dict[str, Any] = {}
                try:
                    async with session.begin_nested():
                        result, ran = await idempotency.once(
                            ctx, f"import.{kind}", row.key, row.values,
                            functools.partial(handler, ctx, row.values, identity_kind))
                        outcome = {"ran": ran, **result}
                        if dry_run:
                            raise _DryRun
                except _DryRun:
                    pass
                except UserError as error:
                    report.rejected.append(Rejected(row.line, str(error)))
                    outcome = {}
                except Exception as error:  # a plugin's handler failed: the row is rolled back, the run goes on
                    report.rejected.append(Rejected(row.line, f"{type(error).__name__}: {error}"))
                    outcome = {}
                if outcome:
                    if not outcome["ran"]:
                        report.already_imported += 1
                    elif outcome.get("created"):
                        report.created += 1
                    else:
                        report.updated += 1
                if progress is not None:
                    progress(1)
            if dry_run:
                await session.rollback()
    return report


def write_rejected(path: Path, rejected: list[Rejected]) -> None:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["line", "reason"])
        writer.writerows((r.line, r.reason) for r in sorted(rejected, key=lambda r: r.line))
