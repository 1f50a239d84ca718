"""``tenure import customers|orders|interactions FILE``: rows from CSV or JSON Lines, read
as a stream (memory stays flat whatever the file's size) and written in batches.

- Orders go set-based: a batch of rows is validated, then recorded by the same batched
  path as the API's ``recordOrders`` (a few statements per batch, the plugins answering the
  whole batch at once). They are history: points, expiry, tiers and churn figures count as
  of each order's time, and nothing is sent for the past (no message, survey, task or
  per-order webhook; subscribers get one ``import.completed`` event). A row of status
  cancelled, refunded or partially_refunded (with ``refunded_amount``) is recorded, then
  cancelled or refunded, as if both had come through the API.
- Customers new to Tenure are created together, a batch in a few statements; customers it
  knows already are updated row by row. Interactions go row by row through the services,
  each in its own savepoint. Every customer and interaction row is claimed once with an
  idempotency record keyed by its content.
- Each batch commits on its own: a run that stopped (even killed) resumes by running the
  same file again, and what was committed is found and skipped (orders by channel and
  external id), so nothing is lost or doubled.
- A refused row is reported with its line and reason, and written to the rejects file
  with its own columns, to be fixed and fed back as it is.
- The file must be UTF-8 (a byte-order mark is fine); anything else is refused before a row
  is read, saying where the first bad byte is.
"""

from __future__ import annotations

import codecs
import csv
import functools
import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import insert, select

from core import idempotency
from core.context import ServiceContext
from core.db import Database
from core.errors import UserError
from core.events import Publication, publish_many
from core.models import CustomerIdentity, IdempotencyRecord, OrderStatus
from core.plugins import PluginManager
from core.services.customers import CustomerData, create_customers, identity, upsert_customer
from core.services.interactions import log_interaction
from core.services.orders import LineData, OrderData, cancel_order, record_orders, refund_order
from core.settings import Settings

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


def _customer_data(row: dict[str, Any]) -> tuple[str, CustomerData]:
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
    return _required(row, "external_id"), data


async def _customer(ctx: ServiceContext, row: dict[str, Any], identity_kind: str) -> dict[str, Any]:
    external_id, data = _customer_data(row)
    customer, created = await upsert_customer(ctx, identity_kind, external_id, data)
    return {"customerId": customer.id, "created": created}


async def _import_customers(ctx: ServiceContext, rows: list[Row], identity_kind: str, report: ImportReport,
                            dry_run: bool) -> None:
    """A batch of customer rows: rows imported before are skipped (their claims read at
    once), new customers are created together (:func:`create_customers`), and customers
    known already are updated one by one."""
    operation = "import.customers"
    claimed = set(await ctx.session.scalars(select(IdempotencyRecord.key).where(
        IdempotencyRecord.operation == operation, IdempotencyRecord.key.in_([r.key for r in rows]))))
    fresh = [r for r in rows if r.key not in claimed]
    report.already_imported += len(rows) - len(fresh)
    parsed: list[tuple[Row, str, CustomerData]] = []
    for row in fresh:
        try:
            external_id, data = _customer_data(row.values)
            parsed.append((row, identity(identity_kind, external_id)[1], data))
        except UserError as error:
            report.rejected.append(Rejected(row.line, str(error), row.source))
    kind = identity_kind.strip().lower()
    known = set(await ctx.session.scalars(select(CustomerIdentity.value).where(
        CustomerIdentity.kind == kind, CustomerIdentity.value.in_([value for _, value, _ in parsed]))))
    new: list[tuple[Row, str, CustomerData]] = []
    later: list[Row] = []
    for row, value, data in parsed:
        if value in known:
            later.append(row)  # an update, or a second row for the same customer
        else:
            known.add(value)
            data.identities = [(kind, value)]
            new.append((row, value, data))
    claims: list[dict[str, Any]] = []
    for (row, _, _), outcome in zip(new, await create_customers(ctx, [d for _, _, d in new]), strict=True):
        if isinstance(outcome, UserError):
            report.rejected.append(Rejected(row.line, str(outcome), row.source))
            continue
        report.created += 1
        claims.append({"operation": operation, "key": row.key, "request_hash": idempotency.request_hash(row.values),
                       "result": {"customerId": outcome.id, "created": True}, "created_at": ctx.now()})
    if claims:
        await ctx.session.execute(insert(_CLAIMS), claims)
    await _import_one_by_one(ctx.session, ctx.settings, ctx.plugins, "customers", later, report, identity_kind,
                             dry_run)


def _order_lines(row: dict[str, Any]) -> list[LineData]:
    lines = []
    for n, line in enumerate(_json_object(row, "lines") or []):
        if not isinstance(line, dict):
            raise UserError("each line must be an object with sku, quantity, unit_price", f"lines[{n}]")
        lines.append(LineData(sku=str(line.get("sku", "")), quantity=_int(line, "quantity") or 0,
                              unit_price=_int(line, "unit_price") or 0, name=str(line.get("name", "")),
                              category=line.get("category")))
    return lines


#: The claims' table itself: a batch's claims go as one executemany, without the ORM.
_CLAIMS: Any = IdempotencyRecord.__table__
#: Statuses an imported order may end in, besides placed and paid: it is recorded, then this.
AFTERWARDS = (OrderStatus.CANCELLED, OrderStatus.REFUNDED, OrderStatus.PARTIALLY_REFUNDED)


@dataclass
class _OrderRow:
    row: Row
    data: OrderData
    then: str | None  # cancelled, refunded or partially_refunded
    refunded: int | None


def _order_row(row: Row, customer_id: int | None, identity_kind: str, default_currency: str) -> _OrderRow:
    values = row.values
    if customer_id is None:
        if values.get("customer_id") is not None:
            customer_id = _int(values, "customer_id") or 0
        elif values.get("customer_external_id") is None:
            raise UserError("give customer_external_id or customer_id", "customer_external_id", "required")
        else:
            raise UserError(f"no customer is known as {identity_kind} {values['customer_external_id']!r}; "
                            "import customers first", "customer_external_id", "not_found")
    status = str(values.get("status") or OrderStatus.PAID).strip().lower()
    then = status if status in AFTERWARDS else None
    refunded = _int(values, "refunded_amount")
    amount = _int(values, "amount")
    if refunded is not None and (refunded < 0 or (amount is not None and refunded > amount)):
        raise UserError("must be between 0 and the amount", "refunded_amount", "invalid_amount")
    if status == OrderStatus.PARTIALLY_REFUNDED and not refunded:
        raise UserError("a partially refunded order needs refunded_amount", "refunded_amount", "required")
    currency = str(values.get("currency") or default_currency)
    data = OrderData(customer_id=customer_id, channel=_required(values, "channel"),
                     external_id=_required(values, "external_id"), currency=currency, amount=amount,
                     lines=_order_lines(values), placed_at=_time(values, "placed_at"),
                     status=OrderStatus.PAID if then else status)
    return _OrderRow(row, data, then, refunded)


async def _import_orders(ctx: ServiceContext, rows: list[Row], identity_kind: str, report: ImportReport) -> None:
    """A batch of order rows, set-based, as history (see the module notes)."""
    externals = sorted({str(r.values["customer_external_id"]).strip() for r in rows
                        if r.values.get("customer_id") is None and r.values.get("customer_external_id") is not None})
    known: dict[str, int] = {}
    for start in range(0, len(externals), 500):
        known.update((value, int(customer_id)) for value, customer_id in await ctx.session.execute(
            select(CustomerIdentity.value, CustomerIdentity.customer_id).where(
                CustomerIdentity.kind == identity_kind, CustomerIdentity.value.in_(externals[start:start + 500]))))
    parsed: list[_OrderRow] = []
    for row in rows:
        external = row.values.get("customer_external_id")
        try:
            parsed.append(_order_row(row, known.get(str(external).strip()) if external is not None else None,
                                     identity_kind, ctx.settings.currency))
        except UserError as error:
            report.rejected.append(Rejected(row.line, str(error), row.source))
    # A round holds at most one order per customer, so that an order's cancellation or
    # refund lands before the same customer's next order, as through the API in time order.
    rounds: list[list[_OrderRow]] = []
    depth: dict[int, int] = {}
    for item in parsed:
        k = depth[item.data.customer_id] = depth.get(item.data.customer_id, -1) + 1
        if k == len(rounds):
            rounds.append([])
        rounds[k].append(item)
    for round_ in rounds:
        outcomes = await record_orders(ctx, [item.data for item in round_])
        for item, outcome in zip(round_, outcomes, strict=True):
            if outcome.error is not None:
                report.rejected.append(Rejected(item.row.line, str(outcome.error), item.row.source))
            elif not outcome.created:
                report.already_imported += 1
            else:
                report.created += 1
                assert outcome.order is not None
                if item.then == OrderStatus.CANCELLED:
                    await cancel_order(ctx, outcome.order.id)
                elif item.then is not None:
                    await refund_order(ctx, outcome.order.id, item.refunded, None)


async def _interaction(ctx: ServiceContext, row: dict[str, Any], identity_kind: str) -> dict[str, Any]:
    interaction, created = await log_interaction(
        ctx, await _customer_id(ctx, row, identity_kind), _required(row, "kind"), _required(row, "channel"),
        _time(row, "occurred_at"), str(row.get("summary") or ""), _json_object(row, "payload"),
        str(row["external_id"]) if row.get("external_id") is not None else None)
    return {"interactionId": interaction.id, "created": created}


HANDLERS = {"customers": _customer, "interactions": _interaction}


class _DryRun(Exception):
    """Rolls a dry run's savepoint back after the row went through."""


#: ``progress(rows, bytes_read, size)`` after each batch.
Progress = Callable[[int, int, int], None]


async def import_file(db: Database, settings: Settings, plugins: PluginManager, stream: RowStream, *,
                      identity_kind: str = "external", dry_run: bool = False,
                      progress: Progress | None = None) -> ImportReport:
    """Import a file's rows, batch by batch as they are read; see the module notes."""
    report = ImportReport(stream.kind, dry_run=dry_run)
    for rows, bad in stream.batches():
        report.rows += len(rows) + len(bad)
        report.rejected += bad
        await _import_batch(db, settings, plugins, stream.kind, rows, report, identity_kind, dry_run)
        if progress is not None:
            progress(report.rows, stream.bytes_read, stream.size)
    report.ignored_columns = list(stream.ignored)
    await _completed(db, settings, plugins, report, stream.path.name)
    return report


async def import_rows(db: Database, settings: Settings, plugins: PluginManager, kind: str, rows: list[Row], *,
                      identity_kind: str = "external", dry_run: bool = False,
                      progress: Callable[[int], None] | None = None) -> ImportReport:
    """Import rows already read (:func:`read_rows`), in batches; see the module notes."""
    report = ImportReport(kind, rows=len(rows), dry_run=dry_run)
    for start in range(0, len(rows), BATCH):
        batch = rows[start: start + BATCH]
        await _import_batch(db, settings, plugins, kind, batch, report, identity_kind, dry_run)
        if progress is not None:
            progress(len(batch))
    await _completed(db, settings, plugins, report, None)
    return report


async def _import_batch(db: Database, settings: Settings, plugins: PluginManager, kind: str, rows: list[Row],
                        report: ImportReport, identity_kind: str, dry_run: bool) -> None:
    if not rows:
        return
    async with db.transaction() as session:
        if kind == "orders":
            ctx = ServiceContext(session, settings, plugins, actor="import:orders", history=True)
            await _import_orders(ctx, rows, identity_kind, report)
        elif kind == "customers":
            ctx = ServiceContext(session, settings, plugins, actor="import:customers")
            await _import_customers(ctx, rows, identity_kind, report, dry_run)
        else:
            await _import_one_by_one(session, settings, plugins, kind, rows, report, identity_kind, dry_run)
        if dry_run:
            await session.rollback()


async def _import_one_by_one(session: Any, settings: Settings, plugins: PluginManager, kind: str, rows: list[Row],
                             report: ImportReport, identity_kind: str, dry_run: bool) -> None:
    """Each row through the services in its own savepoint, claimed once by its content."""
    handler = HANDLERS[kind]
    for row in rows:
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
            report.rejected.append(Rejected(row.line, str(error), row.source))
            outcome = {}
        except Exception as error:  # a plugin's handler failed: the row is rolled back, the run goes on
            report.rejected.append(Rejected(row.line, f"{type(error).__name__}: {error}", row.source))
            outcome = {}
        if outcome:
            if not outcome["ran"]:
                report.already_imported += 1
            elif outcome.get("created"):
                report.created += 1
            else:
                report.updated += 1


async def _completed(db: Database, settings: Settings, plugins: PluginManager, report: ImportReport,
                     file_name: str | None) -> None:
    """Tell subscribers once that an import wrote something (``import.completed``)."""
    if report.dry_run or not (report.created or report.updated):
        return
    async with db.transaction() as session:
        ctx = ServiceContext(session, settings, plugins, actor=f"import:{report.kind}")
        await publish_many(ctx, [Publication(
            "import.completed", "core", None, f"imported {report.kind}: {report.lines()[0]}",
            {"kind": report.kind, "file": file_name, "rows": report.rows, "created": report.created,
             "updated": report.updated, "alreadyImported": report.already_imported,
             "rejected": len(report.rejected)})])


def write_rejected(path: Path, rejected: list[Rejected]) -> None:
    """The refused rows with their own columns and two more, ``rejected_line`` and
    ``rejected_reason``: fix them in place and import the file again (the two columns are
    skipped). CSV or JSON Lines, by the extension."""
    ordered = sorted(rejected, key=lambda r: r.line)
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        with path.open("w", encoding="utf-8") as out:
            for r in ordered:
                out.write(json.dumps({**r.source, f"{REJECTS_PREFIX}line": r.line,
                                      f"{REJECTS_PREFIX}reason": r.reason}, default=str) + "\n")
        return
    columns = list(dict.fromkeys(c for r in ordered for c in r.source))
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow([*columns, f"{REJECTS_PREFIX}line", f"{REJECTS_PREFIX}reason"])
        for r in ordered:
            writer.writerow([_cell(r.source.get(c)) for c in columns] + [r.line, r.reason])


def _cell(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, dict | list) else ("" if value is None else value)
