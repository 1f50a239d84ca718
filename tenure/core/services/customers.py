"""Customers: creating, updating, upserting by identity, tagging, merging, finding twins."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import Select, and_, delete, func, or_, select, update
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.attributes import set_committed_value

from tenure.core import bulk
from tenure.core import validation as v
from tenure.core.context import ServiceContext
from tenure.core.db import insert_ignoring_conflicts
from tenure.core.errors import NotFound, UserError
from tenure.core.events import CustomerCreated, CustomersMerged, CustomerUpdated
from tenure.core.models import (
    Customer,
    CustomerContact,
    CustomerIdentity,
    CustomerTag,
    Event,
    Interaction,
    Order,
    StaffUser,
    Task,
)
from tenure.core.reads import attach, built
from tenure.core.services import order_months

UNSET: Any = object()


@dataclass
class CustomerData:
    """Fields of a customer as a caller gives them; ``UNSET`` leaves a field alone."""

    name: Any = UNSET
    emails: Any = UNSET
    phones: Any = UNSET
    identities: Any = UNSET  # list of (kind, value)
    tags: Any = UNSET
    source_channel: Any = UNSET
    owner_id: Any = UNSET
    birthday: Any = UNSET
    locale: Any = UNSET
    consent_email: Any = UNSET
    consent_sms: Any = UNSET
    consent_push: Any = UNSET


@dataclass
class CleanCustomer:
    scalars: dict[str, Any] = field(default_factory=dict)
    emails: list[str] | None = None
    phones: list[str] | None = None
    identities: list[tuple[str, str]] | None = None
    tags: list[str] | None = None


def _set(value: Any) -> bool:
    return value is not UNSET


def tag(value: str, fieldname: str = "tags") -> str:
    return v.text(value, fieldname, max_length=50).lower()


def identity(kind: str, value: str) -> tuple[str, str]:
    return (v.text(kind, "identities.kind", max_length=50).lower(),
            v.text(value, "identities.value", max_length=200))


async def _clean(ctx: ServiceContext, data: CustomerData, *, creating: bool) -> CleanCustomer:
    out = CleanCustomer()
    if creating or _set(data.name):
        out.scalars["name"] = v.text(None if data.name is UNSET else data.name, "name", max_length=200)
    if _set(data.emails):
        out.emails = list(dict.fromkeys(v.email(e) for e in data.emails or []))
        if len(out.emails) > 20:
            raise UserError("at most 20 email addresses", "emails", "too_many")
    if _set(data.phones):
        out.phones = list(dict.fromkeys(v.phone(p) for p in data.phones or []))
        if len(out.phones) > 20:
            raise UserError("at most 20 phone numbers", "phones", "too_many")
    if _set(data.identities):
        out.identities = list(dict.fromkeys(identity(k, val) for k, val in data.identities or []))
        kinds = [k for k, _ in out.identities]
        if len(kinds) != len(set(kinds)):
            raise UserError("one identity of each kind per customer", "identities", "duplicate")
    if _set(data.tags):
        out.tags = list(dict.fromkeys(tag(t) for t in data.tags or []))
        if len(out.tags) > 100:
            raise UserError("at most 100 tags", "tags", "too_many")
    if _set(data.source_channel):
        out.scalars["source_channel"] = (
            v.text(data.source_channel, "sourceChannel", max_length=50) if data.source_channel else None
        )
    if _set(data.owner_id):
        if data.owner_id is not None and await ctx.session.get(StaffUser, data.owner_id) is None:
            raise NotFound("staff user", data.owner_id, "ownerId")
        out.scalars["owner_id"] = data.owner_id
    if _set(data.birthday):
        if data.birthday is not None and not isinstance(data.birthday, date):
            raise UserError("must be a date", "birthday")
        if data.birthday is not None and data.birthday > ctx.now().date():
            raise UserError("must not be in the future", "birthday", "invalid_date")
        out.scalars["birthday"] = data.birthday
    if _set(data.locale):
        out.scalars["locale"] = v.text(data.locale, "locale", max_length=20, required=False) or None
    for flag in ("consent_email", "consent_sms", "consent_push"):
        value = getattr(data, flag)
        if _set(value):
            out.scalars[flag] = bool(value)
    return out


async def _check_identities_free(ctx: ServiceContext, identities: list[tuple[str, str]], own_id: int | None) -> None:
    for kind, value in identities:
        holder = await ctx.session.scalar(
            select(CustomerIdentity.customer_id).where(
                CustomerIdentity.kind == kind, CustomerIdentity.value == value
            )
        )
        if holder is not None and holder != own_id:
            raise UserError(
                f"{kind} {value!r} already belongs to customer {holder}", "identities", "identity_taken"
            )


def _apply_lists(customer: Customer, clean: CleanCustomer) -> None:
    if clean.emails is not None or clean.phones is not None:
        keep = [c for c in customer.contacts
                if (c.kind == "email" and clean.emails is None) or (c.kind == "phone" and clean.phones is None)]
        fresh = [CustomerContact(kind="email", value=e) for e in clean.emails or []]
        fresh += [CustomerContact(kind="phone", value=p) for p in clean.phones or []]
        existing = {(c.kind, c.value): c for c in customer.contacts}
        customer.contacts = keep + [existing.get((c.kind, c.value), c) for c in fresh]
    if clean.identities is not None:
        existing_ids = {(i.kind, i.value): i for i in customer.identities}
        customer.identities = [existing_ids.get(kv) or CustomerIdentity(kind=kv[0], value=kv[1])
                               for kv in clean.identities]
    if clean.tags is not None:
        existing_tags = {t.tag: t for t in customer.tags}
        customer.tags = [existing_tags.get(t) or CustomerTag(tag=t) for t in clean.tags]


async def load(ctx: ServiceContext, customer_id: int, field: str = "id") -> Customer:
    customer = await ctx.session.scalar(
        select(Customer)
        .where(Customer.id == customer_id)
        .options(selectinload(Customer.contacts), selectinload(Customer.identities),
                 selectinload(Customer.tags))
    )
    if customer is None:
        raise NotFound("customer", customer_id, field)
    return customer


async def create_customer(ctx: ServiceContext, data: CustomerData) -> Customer:
    (outcome,) = await create_customers(ctx, [data])
    if isinstance(outcome, UserError):
        raise outcome
    return outcome


async def create_customers(ctx: ServiceContext, batch: list[CustomerData]) -> list[Customer | UserError]:
    """Create many customers at once: each checked on its own, their identities checked in
    one read, all written together (:func:`_write_customers`), and their ``CustomerCreated``
    events raised as one batch. Returns each new customer, or the business error that
    refused it."""
    outcomes: list[Customer | UserError | None] = [None] * len(batch)
    cleaned: list[tuple[int, CleanCustomer]] = []
    for n, data in enumerate(batch):
        try:
            cleaned.append((n, await _clean(ctx, data, creating=True)))
        except UserError as error:
            outcomes[n] = error
    wanted = sorted({kv for _, clean in cleaned for kv in clean.identities or []})
    holders: dict[tuple[str, str], int | None] = {}
    for start in range(0, len(wanted), 500):
        part = wanted[start:start + 500]
        for kind in {k for k, _ in part}:
            values = [value for k, value in part if k == kind]
            holders.update(((kind, value), holder) for value, holder in await ctx.session.execute(
                select(CustomerIdentity.value, CustomerIdentity.customer_id).where(
                    CustomerIdentity.kind == kind, CustomerIdentity.value.in_(values))))
    now = ctx.now()
    created: list[tuple[int, dict[str, Any], CleanCustomer]] = []
    for n, clean in cleaned:
        taken = next((kv for kv in clean.identities or [] if kv in holders), None)
        if taken is not None:
            holder = holders[taken]
            outcomes[n] = UserError(
                f"{taken[0]} {taken[1]!r} already belongs to "
                + (f"customer {holder}" if holder is not None else "another customer of this batch"),
                "identities", "identity_taken")
            continue
        holders.update((kv, None) for kv in clean.identities or [])
        fields = {"consent_email": False, "consent_sms": False, "consent_push": False, **clean.scalars}
        created.append((n, {**_BLANK_CUSTOMER, "created_at": now, "updated_at": now, **fields}, clean))
    customers = await _write_customers(ctx, [(row, clean) for _, row, clean in created])
    for (n, _, _), customer in zip(created, customers, strict=True):
        outcomes[n] = customer
    await ctx.emit(*(CustomerCreated(customer) for customer in customers))
    return [outcome for outcome in outcomes if outcome is not None]


async def _write_customers(ctx: ServiceContext, batch: list[tuple[dict[str, Any], CleanCustomer]]) -> list[Customer]:
    """Write new customers and their contacts, identities and tags through the tables (a
    statement each, a COPY or one executemany for a batch: the ORM's flush asks SQLite for
    each new row's id on its own), then build the instances as loaded and make them the
    session's own, so what the handlers read, or change, is as if the ORM had written them."""
    session = ctx.session
    ids = await bulk.insert_returning_ids(session, _CUSTOMERS, [row for row, _ in batch])
    contacts = [{"customer_id": customer_id, "kind": kind, "value": value}
                for customer_id, (_, clean) in zip(ids, batch, strict=True)
                for kind, values in (("email", clean.emails), ("phone", clean.phones)) for value in values or ()]
    identities = [{"customer_id": customer_id, "kind": kind, "value": value}
                  for customer_id, (_, clean) in zip(ids, batch, strict=True) for kind, value in clean.identities or ()]
    tags = [{"customer_id": customer_id, "tag": name}
            for customer_id, (_, clean) in zip(ids, batch, strict=True) for name in clean.tags or ()]
    contact_ids = await bulk.insert_returning_ids(session, _CONTACTS, contacts)
    identity_ids = await bulk.insert_returning_ids(session, _IDENTITIES, identities)
    await bulk.insert_rows(session, _TAGS, tags)
    customers = [built(Customer, {"id": customer_id, **row}) for customer_id, (row, _) in zip(ids, batch, strict=True)]
    by_id = {customer.id: customer for customer in customers}
    children: dict[str, dict[int, list[Any]]] = {name: {i: [] for i in ids} for name in _CHILDREN}
    written: tuple[tuple[str, Any, list[dict[str, Any]], list[int] | None], ...] = (
        ("contacts", CustomerContact, contacts, contact_ids),
        ("identities", CustomerIdentity, identities, identity_ids), ("tags", CustomerTag, tags, None))
    for name, model, rows, row_ids in written:
        for at, row in enumerate(rows):
            child = built(model, {**row, "id": row_ids[at]} if row_ids is not None else row)
            customer_id = int(row["customer_id"])
            child.__dict__["customer"] = by_id[customer_id]  # the many-to-one, as loaded
            children[name][customer_id].append(child)
    for customer in customers:
        for name in _CHILDREN:
            set_committed_value(customer, name, children[name][customer.id])
    attach(session, [*customers, *(child for lists in children.values() for kids in lists.values() for child in kids)])
    return customers


_CHILDREN = ("contacts", "identities", "tags")
_CUSTOMERS: Any = Customer.__table__
_CONTACTS: Any = CustomerContact.__table__
_IDENTITIES: Any = CustomerIdentity.__table__
_TAGS: Any = CustomerTag.__table__
#: A new customer's row: every column, those the caller does not give empty.
_BLANK_CUSTOMER: dict[str, Any] = {column.key: None for column in _CUSTOMERS.columns if column.key != "id"} | {
    "order_count": 0, "total_spent": 0}


async def update_customer(ctx: ServiceContext, customer_id: int, data: CustomerData) -> Customer:
    customer = await load(ctx, customer_id)
    clean = await _clean(ctx, data, creating=False)
    if clean.identities:
        await _check_identities_free(ctx, clean.identities, customer.id)
    changed = [k for k, val in clean.scalars.items() if getattr(customer, k) != val]
    for k, val in clean.scalars.items():
        setattr(customer, k, val)
    _apply_lists(customer, clean)
    changed += [n for n in ("emails", "phones", "identities", "tags") if getattr(clean, n) is not None]
    customer.updated_at = ctx.now()
    await ctx.session.flush()
    if changed:
        await ctx.emit(CustomerUpdated(customer, tuple(changed)))
    return customer


async def upsert_customer(
    ctx: ServiceContext, kind: str, value: str, data: CustomerData
) -> tuple[Customer, bool]:
    """Find the customer another system knows as ``kind``/``value`` and update it, or create
    it with that identity. Pushing the same customer twice changes nothing the second time."""
    kind, value = identity(kind, value)
    if ctx.dialect == "postgresql":
        # The same customer pushed twice at once: the second waits here for the first to
        # commit and then updates what it created, instead of colliding on the identity.
        await ctx.session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(f"{kind}\x1f{value}", 0))))
    holder = await ctx.session.scalar(
        select(CustomerIdentity.customer_id).where(
            CustomerIdentity.kind == kind, CustomerIdentity.value == value
        )
    )
    if holder is None:
        extra = [] if data.identities is UNSET else list(data.identities or [])
        data.identities = [(kind, value), *[i for i in extra if identity(*i) != (kind, value)]]
        return await create_customer(ctx, data), True
    if _set(data.identities):
        wanted = [identity(*i) for i in data.identities or []]
        if (kind, value) not in wanted:
            data.identities = [(kind, value), *wanted]
    return await update_customer(ctx, holder, data), False


async def tag_customers(
    ctx: ServiceContext, customer_ids: list[int], add: list[str], remove: list[str]
) -> int:
    if len(customer_ids) > 1000:
        raise UserError("at most 1000 customers at once", "customerIds", "too_many")
    customer_ids = list(dict.fromkeys(customer_ids))
    add = list(dict.fromkeys(tag(t, "add") for t in add))
    remove = list(dict.fromkeys(tag(t, "remove") for t in remove))
    if len(add) > 100 or len(remove) > 100:
        raise UserError("at most 100 tags at once", "add" if len(add) > 100 else "remove", "too_many")
    found = set(await ctx.session.scalars(select(Customer.id).where(Customer.id.in_(customer_ids))))
    missing = [i for i in customer_ids if i not in found]
    if missing:
        raise NotFound("customer", missing[0], "customerIds")
    if remove:
        await ctx.session.execute(
            delete(CustomerTag).where(CustomerTag.customer_id.in_(customer_ids), CustomerTag.tag.in_(remove))
        )
    if add:
        # A tag the customer already has (or that a concurrent request just added) is kept once.
        await ctx.session.execute(
            insert_ignoring_conflicts(ctx.dialect, CustomerTag.__table__),
            [{"customer_id": cid, "tag": t} for cid in customer_ids for t in add],
        )
    await ctx.session.execute(
        update(Customer).where(Customer.id.in_(customer_ids)).values(updated_at=ctx.now())
    )
    await ctx.session.flush()
    return len(customer_ids)


@dataclass
class MergeReport:
    survivor_id: int
    merged_id: int
    moved: dict[str, int]
    conflicts: list[str]


async def merge_customers(ctx: ServiceContext, survivor_id: int, merged_id: int) -> MergeReport:
    """Fold ``merged_id`` into ``survivor_id``: contacts, identities, tags, orders,
    interactions, tasks, events and every plugin's data (through the ``CustomersMerged``
    handlers); then the merged customer is gone. Run it in a savepoint for a dry run."""
    if survivor_id == merged_id:
        raise UserError("a customer cannot be merged into itself", "mergedId", "invalid")
    survivor = await load(ctx, survivor_id, "survivorId")
    merged = await load(ctx, merged_id, "mergedId")
    moved: dict[str, int] = {}
    conflicts: list[str] = []
    # Rows move with set-based UPDATEs (the survivor's copy wins where both have one), so
    # no row is deleted and re-created: ids stay, and the session holds no stale twin.
    own_kinds = {i.kind for i in survivor.identities}
    dropped = [i for i in merged.identities if i.kind in own_kinds]
    conflicts += [f"identity {i.kind} {i.value!r} dropped: the survivor has its own" for i in dropped]
    have = {(c.kind, c.value) for c in survivor.contacts}
    same_contacts = [c.id for c in merged.contacts if (c.kind, c.value) in have]
    have_tags = {t.tag for t in survivor.tags}
    session = ctx.session
    if dropped:
        await session.execute(delete(CustomerIdentity).where(CustomerIdentity.id.in_([i.id for i in dropped])))
    if same_contacts:
        await session.execute(delete(CustomerContact).where(CustomerContact.id.in_(same_contacts)))
    if have_tags:
        await session.execute(delete(CustomerTag).where(CustomerTag.customer_id == merged_id,
                                                        CustomerTag.tag.in_(have_tags)))
    for model, label in ((CustomerIdentity, "identities"), (CustomerContact, "contacts"), (CustomerTag, "tags"),
                         (Order, "orders"), (Interaction, "interactions"), (Task, "tasks"), (Event, "events")):
        result = await session.execute(
            update(model).where(model.customer_id == merged_id).values(customer_id=survivor_id)
            .execution_options(synchronize_session=False)
        )
        moved[label] = int(result.rowcount)  # type: ignore[attr-defined]
    # Consent is never widened by a merge: the survivor keeps its own answers.
    if survivor.owner_id is None:
        survivor.owner_id = merged.owner_id
    if survivor.birthday is None:
        survivor.birthday = merged.birthday
    session.expunge(merged)
    session.expire(survivor, ["contacts", "identities", "tags"])
    await refresh_order_figures(ctx, survivor)
    await order_months.keep(ctx, survivor, merged_id=merged_id)
    await refresh_interaction_figures(ctx, survivor)
    survivor.updated_at = ctx.now()
    await session.flush()
    await ctx.emit(CustomersMerged(survivor, merged_id))
    await session.execute(delete(Customer).where(Customer.id == merged_id))
    await session.flush()
    return MergeReport(survivor_id, merged_id, moved, conflicts)


async def refresh_order_figures(ctx: ServiceContext, customer: Customer) -> None:
    """Recompute the customer's order figures from its orders (after a merge or cancel)."""
    counted = Order.status != "cancelled"
    row = (await ctx.session.execute(
        select(func.count(), func.coalesce(func.sum(Order.amount - Order.refunded_amount), 0),
               func.min(Order.placed_at), func.max(Order.placed_at))
        .where(Order.customer_id == customer.id, counted)
    )).one()
    customer.order_count, customer.total_spent = int(row[0]), int(row[1])
    customer.first_order_at, customer.last_order_at = row[2], row[3]
    if ctx.dialect == "sqlite":
        from tenure.core.clock import as_utc

        customer.first_order_at = as_utc(row[2]) if row[2] else None
        customer.last_order_at = as_utc(row[3]) if row[3] else None


async def refresh_interaction_figures(ctx: ServiceContext, customer: Customer) -> None:
    last = await ctx.session.scalar(
        select(func.max(Interaction.occurred_at)).where(Interaction.customer_id == customer.id)
    )
    if ctx.dialect == "sqlite" and last is not None:
        from tenure.core.clock import as_utc

        last = as_utc(last)
    customer.last_interaction_at = last


def duplicate_candidates_query(limit: int) -> Select[Any]:
    """Pairs of customers sharing an email or phone (identities are unique, so a shared one
    cannot exist): ``(kind, value, first_id, second_id)``."""
    a, b = CustomerContact.__table__.alias("a"), CustomerContact.__table__.alias("b")
    return (
        select(a.c.kind, a.c.value, a.c.customer_id, b.c.customer_id)
        .join(b, and_(a.c.kind == b.c.kind, a.c.value == b.c.value, a.c.customer_id < b.c.customer_id))
        .order_by(a.c.customer_id, b.c.customer_id)
        .limit(limit)
    )


@dataclass
class CustomerFilter:
    search: str | None = None
    tags: list[str] | None = None
    owner_id: int | None = None
    source_channel: str | None = None
    ids: list[int] | None = None


def filter_customers(stmt: Select[Any], f: CustomerFilter | None) -> Select[Any]:
    if f is None:
        return stmt
    if f.ids is not None:
        stmt = stmt.where(Customer.id.in_(f.ids))
    if f.search:
        term = f.search.strip()
        like = f"%{term.lower()}%"
        contact = select(CustomerContact.customer_id).where(
            CustomerContact.value.in_({term.lower(), term, _phone_or_none(term)} - {None})
        )
        ident = select(CustomerIdentity.customer_id).where(CustomerIdentity.value == term)
        stmt = stmt.where(or_(func.lower(Customer.name).like(like), Customer.id.in_(contact),
                              Customer.id.in_(ident)))
    if f.tags:
        stmt = stmt.where(
            Customer.id.in_(select(CustomerTag.customer_id).where(CustomerTag.tag.in_([t.lower() for t in f.tags])))
        )
    if f.owner_id is not None:
        stmt = stmt.where(Customer.owner_id == f.owner_id)
    if f.source_channel:
        stmt = stmt.where(Customer.source_channel == f.source_channel)
    return stmt


def _phone_or_none(term: str) -> str | None:
    try:
        return v.phone(term)
    except UserError:
        return None
