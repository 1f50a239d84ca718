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
- On PostgreSQL, orders go two batches at once (:func:`_orders_two_at_once`): one's Python
  runs while the other waits on the database, and a customer's rows wait for the batch in
  flight that has that customer, so that each customer's orders land in file order.
- Each batch commits on its own: a run that stopped (even killed) resumes by running the
  same file again, and what was committed is found and skipped (orders by channel and
  external id), so nothing is lost or doubled.
- A refused row is reported with its line and reason, and written to the rejects file
  with its own columns, to be fixed and fed back as it is.
- The file must be UTF-8 (a byte-order mark is fine); anything else is refused before a row
  is read, saying where the first bad byte is.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, bindparam, insert, select, text

from tenure.core import idempotency
from tenure.core.context import ServiceContext
from tenure.core.db import Database
from tenure.core.errors import UserError
from tenure.core.events import Publication, publish_many
from tenure.core.import_files import (
    BATCH,
    LIST_SEPARATOR,
    Rejected,
    Rejects,
    Row,
    RowStream,
)
from tenure.core.import_upkeep import Upkeep
from tenure.core.models import CustomerIdentity, IdempotencyRecord, OrderStatus
from tenure.core.plugins import PluginManager
from tenure.core.reads import Read
from tenure.core.services.customers import CustomerData, create_customers, identity, upsert_customer
from tenure.core.services.interactions import log_interaction
from tenure.core.services.orders import LineData, OrderData, cancel_order, in_rounds, record_orders, refund_order
from tenure.core.settings import Settings


@dataclass
class ImportReport:
    kind: str
    rows: int = 0
    created: int = 0
    updated: int = 0
    already_imported: int = 0
    rejected: Rejects = field(default_factory=Rejects)
    ignored_columns: list[str] = field(default_factory=list)
    dry_run: bool = False

    def lines(self) -> list[str]:
        verb = "would be" if self.dry_run else "were"
        out = [f"{self.rows} rows read: {self.created} {verb} new, {self.updated} {verb} updates, "
               f"{self.already_imported} already imported, {len(self.rejected)} rejected"]
        if self.ignored_columns:
            out.append(f"ignored columns (no such field; use --map COLUMN=FIELD): {', '.join(self.ignored_columns)}")
        return out


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


async def _import_orders(ctx: ServiceContext, rows: list[Row], identity_kind: str, report: ImportReport,
                         locked: asyncio.Event | None = None) -> None:
    """A batch of order rows, set-based, as history (see the module notes). ``locked`` is
    set once the batch holds its customers' row locks (another batch may start then)."""
    externals = sorted({str(r.values["customer_external_id"]).strip() for r in rows
                        if r.values.get("customer_id") is None and r.values.get("customer_external_id") is not None})
    known: dict[str, int] = {}
    for start in range(0, len(externals), 500):
        known.update((value, int(customer_id)) for value, customer_id in await _CUSTOMERS_KNOWN_AS.all(
            ctx.session, externals[start:start + 500], kind=identity_kind))
    parsed: list[_OrderRow] = []
    for row in rows:
        external = row.values.get("customer_external_id")
        try:
            parsed.append(_order_row(row, known.get(str(external).strip()) if external is not None else None,
                                     identity_kind, ctx.settings.currency))
        except UserError as error:
            report.rejected.append(Rejected(row.line, str(error), row.source))
    if locked is not None:  # PostgreSQL only (two batches at once)
        await _LOCK_CUSTOMERS.all(ctx.session, ids=sorted({item.data.customer_id for item in parsed}))
        locked.set()
    # A round holds at most one order per customer, so that an order's cancellation or
    # refund lands before the same customer's next order, as through the API in time order.
    for round_ in in_rounds(parsed, lambda item: item.data.customer_id):
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


#: The customers a batch's rows name, by the external ids of one kind.
_CUSTOMERS_KNOWN_AS = Read(lambda keys: select(CustomerIdentity.value, CustomerIdentity.customer_id).where(
    CustomerIdentity.kind == bindparam("kind"), keys(CustomerIdentity.value)))
#: A batch's customers locked in id order, before its first round (which locks them again).
_LOCK_CUSTOMERS = Read(lambda _keys: text("SELECT id FROM customers WHERE id = ANY(:ids) ORDER BY id FOR NO KEY UPDATE")
                       .columns(id=BigInteger()))


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
                      progress: Progress | None = None, batch_size: int = BATCH) -> ImportReport:
    """Import a file's rows, batch by batch as they are read; see the module notes."""
    report = ImportReport(stream.kind, dry_run=dry_run)
    async with Upkeep(db) as upkeep:
        if stream.kind == "orders" and db.dialect == "postgresql" and not dry_run:
            await _orders_two_at_once(db, settings, plugins, stream, report, identity_kind, progress, upkeep,
                                      batch_size)
        else:
            await _one_batch_at_a_time(db, settings, plugins, stream, report, identity_kind, dry_run, progress,
                                       upkeep, batch_size)
    report.ignored_columns = list(stream.ignored)
    await _completed(db, settings, plugins, report, stream.path.name)
    return report


async def _one_batch_at_a_time(db: Database, settings: Settings, plugins: PluginManager, stream: RowStream,
                               report: ImportReport, identity_kind: str, dry_run: bool, progress: Progress | None,
                               upkeep: Upkeep, batch_size: int) -> None:
    for rows, bad in stream.batches(batch_size):
        report.rows += len(rows) + len(bad)
        report.rejected += bad
        await _import_batch(db, settings, plugins, stream.kind, rows, report, identity_kind, dry_run)
        _after_batch(report, upkeep)
        if progress is not None:
            progress(report.rows, stream.bytes_read, stream.size)


@dataclass
class _Running:
    """A batch of orders being imported in its own transaction, and whose customers it has."""

    task: asyncio.Future[None]
    locked: asyncio.Event
    customers: set[tuple[str, str]]


async def _orders_two_at_once(db: Database, settings: Settings, plugins: PluginManager, stream: RowStream,
                              report: ImportReport, identity_kind: str, progress: Progress | None,
                              upkeep: Upkeep, batch_size: int) -> None:
    """Orders into PostgreSQL, two batches in flight: while one waits on the database, the
    other's Python runs (alone, either leaves the database idle about a third of the time).

    A customer's orders must still land in file order. So a batch takes no row of a
    customer the batch in flight has: that row, and every later row of the same customer,
    wait for the next batch. A batch starts only once the one in flight holds its
    customers' row locks, so that a customer reached by two references (an id on one row,
    an external id on another) still queues behind the earlier batch. What is refused and
    counted does not depend on this; the rejects file then lists each batch's lines in
    order."""
    batches = stream.batches(batch_size)
    waiting: list[Row] = []
    running: _Running | None = None
    read_all = False
    in_flight: set[asyncio.Future[None]] = set()  # stopped with the import if it fails

    async def finish(batch: _Running) -> None:
        await batch.task
        _after_batch(report, upkeep)
        if progress is not None:
            progress(report.rows, stream.bytes_read, stream.size)

    try:
        while True:
            while not read_all and len(waiting) < batch_size:
                got = next(batches, None)
                if got is None:
                    read_all = True
                    break
                rows, bad = got
                report.rows += len(rows) + len(bad)
                report.rejected += bad
                waiting.extend(rows)
            batch, waiting = _next_batch(waiting, running.customers if running is not None else set(), batch_size)
            if not batch:
                if running is None:
                    return
                await finish(running)  # every waiting row belongs to the batch in flight's customers
                running = None
                continue
            if running is not None and not running.locked.is_set():
                # Started only once the batch in flight holds its customers' locks (or ended).
                held: asyncio.Future[Any] = asyncio.ensure_future(running.locked.wait())
                await asyncio.wait({running.task, held}, return_when=asyncio.FIRST_COMPLETED)
                held.cancel()
            locked = asyncio.Event()
            task = asyncio.ensure_future(_import_batch(
                db, settings, plugins, "orders", batch, report, identity_kind, False, locked=locked))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            started = _Running(task, locked, {key for row in batch if (key := _customer_key(row)) is not None})
            if running is not None:
                await finish(running)
            running = started
    finally:
        for unfinished in list(in_flight):
            unfinished.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await unfinished


def _customer_key(row: Row) -> tuple[str, str] | None:
    """Which customer an order row is for, as the file names them (``None``: it names none,
    and is refused)."""
    for field_name in ("customer_id", "customer_external_id"):
        value = row.values.get(field_name)
        if value is not None:
            return field_name, str(value).strip()
    return None


def _next_batch(waiting: list[Row], busy: set[tuple[str, str]], size: int) -> tuple[list[Row], list[Row]]:
    """Up to ``size`` rows, in file order, of customers not in ``busy``; and the rows
    left waiting. Once a customer's row waits, all their later rows wait with it: a
    customer in ``busy`` stays there, and a full batch takes no later row."""
    batch: list[Row] = []
    later: list[Row] = []
    for row in waiting:
        key = _customer_key(row)
        if len(batch) < size and (key is None or key not in busy):
            batch.append(row)
        else:
            later.append(row)
    return batch, later


async def import_rows(db: Database, settings: Settings, plugins: PluginManager, kind: str, rows: list[Row], *,
                      identity_kind: str = "external", dry_run: bool = False,
                      progress: Callable[[int], None] | None = None) -> ImportReport:
    """Import rows already read (:func:`read_rows`), in batches; see the module notes."""
    report = ImportReport(kind, rows=len(rows), dry_run=dry_run)
    async with Upkeep(db) as upkeep:
        for start in range(0, len(rows), BATCH):
            batch = rows[start: start + BATCH]
            await _import_batch(db, settings, plugins, kind, batch, report, identity_kind, dry_run)
            _after_batch(report, upkeep)
            if progress is not None:
                progress(len(batch))
    await _completed(db, settings, plugins, report, None)
    return report


def _after_batch(report: ImportReport, upkeep: Upkeep) -> None:
    """What follows each committed batch: its refused rows spooled, the cycles it left
    collected (every few batches), and PostgreSQL's counts of the tables it grew renewed."""
    report.rejected.end_batch()
    upkeep.after_batch()


async def _import_batch(db: Database, settings: Settings, plugins: PluginManager, kind: str, rows: list[Row],
                        report: ImportReport, identity_kind: str, dry_run: bool, *,
                        locked: asyncio.Event | None = None) -> None:
    if not rows:
        return
    async with db.transaction() as session:
        if kind == "orders":
            ctx = ServiceContext(session, settings, plugins, actor="import:orders", history=True)
            await _import_orders(ctx, rows, identity_kind, report, locked)
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
