"""``tenure export customers|orders FILE``: CSV or JSON Lines in the shape ``tenure import``
reads, so an export imports into another Tenure as it is (columns only an export has, such as
``id`` and ``total_spent``, are reported as ignored there)."""

from __future__ import annotations

import csv
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from tenure.core.db import Database
from tenure.core.models import Customer, CustomerIdentity, Order

BATCH = 500
COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": ("id", "external_id", "name", "email", "phone", "tags", "source_channel", "birthday", "locale",
                  "consent_email", "consent_sms", "consent_push", "order_count", "total_spent", "created_at"),
    "orders": ("id", "customer_id", "customer_external_id", "channel", "external_id", "currency", "amount",
               "refunded_amount", "status", "placed_at", "lines"),
}


def _identity(customer: Customer, kind: str) -> str | None:
    return next((i.value for i in customer.identities if i.kind == kind), None)


def customer_record(customer: Customer, identity_kind: str) -> dict[str, Any]:
    return {
        "id": customer.id,
        "external_id": _identity(customer, identity_kind),
        "name": customer.name,
        "email": [c.value for c in customer.contacts if c.kind == "email"],
        "phone": [c.value for c in customer.contacts if c.kind == "phone"],
        "tags": sorted(t.tag for t in customer.tags),
        "source_channel": customer.source_channel,
        "birthday": customer.birthday.isoformat() if customer.birthday else None,
        "locale": customer.locale,
        "consent_email": customer.consent_email,
        "consent_sms": customer.consent_sms,
        "consent_push": customer.consent_push,
        "order_count": customer.order_count,
        "total_spent": customer.total_spent,
        "created_at": customer.created_at.isoformat(),
    }


def order_record(order: Order, external: str | None) -> dict[str, Any]:
    return {
        "id": order.id,
        "customer_id": order.customer_id,
        "customer_external_id": external,
        "channel": order.channel,
        "external_id": order.external_id,
        "currency": order.currency,
        "amount": order.amount,
        "refunded_amount": order.refunded_amount,
        "status": order.status,
        "placed_at": order.placed_at.isoformat(),
        "lines": [{"sku": line.sku, "name": line.name, "category": line.category, "quantity": line.quantity,
                   "unit_price": line.unit_price} for line in order.lines],
    }


async def count(db: Database, kind: str) -> int:
    model = Customer if kind == "customers" else Order
    async with db.reader() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def records(db: Database, kind: str, identity_kind: str = "external") -> AsyncIterator[dict[str, Any]]:
    """Every customer or order, by id, read in batches."""
    after = 0
    while True:
        async with db.reader() as session:
            if kind == "customers":
                customers = list(await session.scalars(
                    select(Customer).where(Customer.id > after).order_by(Customer.id).limit(BATCH)
                    .options(selectinload(Customer.contacts), selectinload(Customer.identities),
                             selectinload(Customer.tags))))
                batch = [customer_record(c, identity_kind) for c in customers]
            else:
                orders = list(await session.scalars(
                    select(Order).where(Order.id > after).order_by(Order.id).limit(BATCH)
                    .options(selectinload(Order.lines))))
                ids = {o.customer_id for o in orders}
                external = dict((await session.execute(
                    select(CustomerIdentity.customer_id, CustomerIdentity.value).where(
                        CustomerIdentity.customer_id.in_(ids), CustomerIdentity.kind == identity_kind))).all())
                batch = [order_record(o, external.get(o.customer_id)) for o in orders]
        if not batch:
            return
        for record in batch:
            yield record
        after = batch[-1]["id"]


def _csv_value(value: Any) -> Any:
    if isinstance(value, list):
        if value and isinstance(value[0], dict):
            return json.dumps(value)
        return ";".join(str(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else value


async def export(db: Database, kind: str, path: Path, fmt: str, identity_kind: str = "external",
                 progress: Callable[[int], None] | None = None) -> int:
    """Write every customer or order to ``path``; returns how many."""
    written = 0
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = None
        if fmt == "csv":
            writer = csv.DictWriter(out, fieldnames=COLUMNS[kind])
            writer.writeheader()
        async for record in records(db, kind, identity_kind):
            if writer is not None:
                writer.writerow({k: _csv_value(v) for k, v in record.items()})
            else:
                out.write(json.dumps({k: v for k, v in record.items() if v is not None}) + "\n")
            written += 1
            if progress is not None:
                progress(1)
    return written
