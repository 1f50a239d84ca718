"""Compiled reads and writes (core/reads.py) give what the ORM gives, on both databases, and
on PostgreSQL take the driver's path only where a statement there runs where the
session's would."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import and_, bindparam, event, insert, select, update

from tenure.core.models import Customer, CustomerContact, Event, Order
from tenure.core.reads import Read, Route, Write, attach
from tenure.core.services.customers import CustomerData, create_customer
from tenure.core.services.orders import OrderData, record_order
from tenure.schema.context import _request_reads
from tenure.testing import TenureHarness

CUSTOMERS = Read(lambda keys: select(Customer).where(keys(Customer.id)).order_by(Customer.id))
WITH_ORDERS = Read(lambda keys: (
    select(Customer, Order)
    .outerjoin(Order, and_(Order.customer_id == Customer.id, Order.amount >= bindparam("least")))
    .where(keys(Customer.id)).order_by(Customer.id, Order.id)))
EMAILS = Read(lambda keys: (
    select(CustomerContact.customer_id, CustomerContact.value)
    .where(keys(CustomerContact.customer_id), CustomerContact.kind == "email").order_by(CustomerContact.id)))
INSERT_EVENT = Write(lambda _keys: insert(Event).values(
    {name: bindparam(name) for name in ("type", "source", "customer_id", "summary", "data", "on_timeline",
                                         "occurred_at")}).returning(Event.id, Event.occurred_at))
RENAME = Write(lambda _keys: update(Customer).where(Customer.id == bindparam("c")).values(name=bindparam("n")))


async def _two_customers(tenure: TenureHarness) -> list[int]:
    async with tenure.transaction() as ctx:
        ada = await create_customer(ctx, CustomerData(name="Ada", emails=["ada@example.com"], locale="en",
                                                      consent_email=True))
        bob = await create_customer(ctx, CustomerData(name="Bob", emails=["bob@example.com", "b@example.org"]))
        await record_order(ctx, OrderData(customer_id=ada.id, channel="shop", external_id="A-1", currency="USD",
                                          amount=4200))
        return [ada.id, bob.id]


async def test_compiled_reads_give_what_the_orm_gives(tenure: TenureHarness) -> None:
    ids = await _two_customers(tenure)
    async with tenure.db.reader() as session:
        orm = list(await session.scalars(select(Customer).where(Customer.id.in_(ids)).order_by(Customer.id)))
        compiled = await CUSTOMERS.all(session, ids)
        assert [type(c) for c in compiled] == [Customer, Customer]
        for mine, theirs in zip(compiled, orm, strict=True):
            for column in Customer.__mapper__.column_attrs:
                assert getattr(mine, column.key) == getattr(theirs, column.key), column.key
        assert compiled[0].created_at.tzinfo is not None  # times come back aware, as the ORM's do
        # An outer join's empty side is None, not an empty instance; parameters other than keys bind.
        rows = await WITH_ORDERS.all(session, ids, least=1000)
        assert [(c.name, o.external_id if o else None) for c, o in rows] == [("Ada", "A-1"), ("Bob", None)]
        rows = await WITH_ORDERS.all(session, ids, least=10_000)
        assert [(c.name, o) for c, o in rows] == [("Ada", None), ("Bob", None)]
        assert await EMAILS.all(session, ids[1:]) == [(ids[1], "bob@example.com"), (ids[1], "b@example.org")]
        assert await CUSTOMERS.all(session, []) == []


async def test_a_compiled_write_runs_in_the_callers_transaction(tenure: TenureHarness) -> None:
    (ada, _) = await _two_customers(tenure)
    before = await tenure.scalar("SELECT count(*) FROM events")
    at = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    try:
        async with tenure.transaction() as ctx:
            event_id, occurred = await INSERT_EVENT.one(
                ctx.session, type="test.happened", source="test", customer_id=ada, summary="once",
                data={"n": 1}, on_timeline=True, occurred_at=at)
            assert occurred == at
            assert await ctx.session.scalar(select(Event.data).where(Event.id == event_id)) == {"n": 1}
            raise RuntimeError("roll back")
    except RuntimeError:
        pass
    assert await tenure.scalar("SELECT count(*) FROM events") == before  # rolled back with the transaction


async def test_the_driver_path_only_where_it_is_safe(tenure: TenureHarness) -> None:
    """PostgreSQL: the request's reads (autocommit) and a transaction go to the driver (one
    whose BEGIN SQLAlchemy has not sent yet is begun first, as its first statement would
    begin it); an engine something listens to keeps to the session."""
    await _two_customers(tenure)
    postgres = tenure.db.dialect == "postgresql"
    async with _request_reads(tenure.db)() as session:
        assert ((await Route.of(session)).driver is not None) is postgres
    async with tenure.db.transaction() as session:
        route = await Route.of(session)
        assert (route.driver is not None) is postgres
        if postgres:
            assert route.driver.is_in_transaction()
        await session.execute(select(Customer.id).limit(1))
        assert ((await Route.of(session)).driver is not None) is postgres
    seen: list[str] = []

    def listen(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        seen.append(statement)

    event.listen(tenure.db.engine.sync_engine, "before_cursor_execute", listen)
    try:
        async with _request_reads(tenure.db)() as session:
            assert (await Route.of(session)).driver is None
            await CUSTOMERS.all(session, [1])
    finally:
        event.remove(tenure.db.engine.sync_engine, "before_cursor_execute", listen)
    assert any("FROM customers" in statement for statement in seen)  # a listener sees every statement


async def test_written_counts_and_attached_rows_behave_as_the_orms(tenure: TenureHarness) -> None:
    """A compiled update tells how many rows it wrote, an executemany writes each row, and a
    row read on the driver and attached is the session's own: the instance it already held
    takes the row's values, and a change to a newly attached one is flushed."""
    ada, bob = await _two_customers(tenure)
    async with tenure.transaction() as ctx:
        held = await ctx.session.get(Customer, ada)
        assert held is not None
        assert await RENAME.count(ctx.session, c=ada, n="Ada L.") == 1
        assert await RENAME.count(ctx.session, c=10**9, n="nobody") == 0
        (same, fresh) = attach(ctx.session, await CUSTOMERS.all(ctx.session, [ada, bob]))
        assert same is held and held.name == "Ada L."
        assert fresh in ctx.session and not ctx.session.dirty
        fresh.name = "Bob B."
        await ctx.session.flush()
        assert await ctx.session.scalar(select(Customer.name).where(Customer.id == bob)) == "Bob B."
        await RENAME.many(ctx.session, [{"c": ada, "n": "Ada"}, {"c": bob, "n": "Robert"}])
    assert await tenure.scalar("SELECT name FROM customers WHERE id = :c", c=ada) == "Ada"
    assert await tenure.scalar("SELECT name FROM customers WHERE id = :c", c=bob) == "Robert"
