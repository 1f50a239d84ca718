"""createCustomer, updateCustomer, upsertCustomer, mergeCustomers, tagCustomers."""

from __future__ import annotations

from datetime import date

import strawberry
from strawberry.types import Info

from tenure.core.context import ServiceContext
from tenure.core.services import customers as service
from tenure.core.services.customers import UNSET, CustomerData
from tenure.schema.mutations import in_transaction, parse_id
from tenure.schema.permissions import BACKOFFICE, STAFF, allow
from tenure.schema.types.common import UserError
from tenure.schema.types.core import Customer


@strawberry.input
class IdentityInput:
    kind: str
    value: str


@strawberry.input(description="Consent flags; a missing one is left as it is.")
class ConsentInput:
    email: bool | None = strawberry.UNSET
    sms: bool | None = strawberry.UNSET
    push: bool | None = strawberry.UNSET


@strawberry.input(description="A customer's fields. On update, a field left out is left as it is.")
class CustomerInput:
    name: str | None = strawberry.UNSET
    emails: list[str] | None = strawberry.UNSET
    phones: list[str] | None = strawberry.UNSET
    identities: list[IdentityInput] | None = strawberry.UNSET
    tags: list[str] | None = strawberry.UNSET
    source_channel: str | None = strawberry.UNSET
    owner_id: strawberry.ID | None = strawberry.UNSET
    birthday: date | None = strawberry.UNSET
    locale: str | None = strawberry.UNSET
    consent: ConsentInput | None = strawberry.UNSET


def to_data(value: CustomerInput) -> CustomerData:
    def given(v: object) -> object:
        return UNSET if v is strawberry.UNSET else v

    data = CustomerData(
        name=given(value.name),
        emails=given(value.emails),
        phones=given(value.phones),
        identities=given(value.identities),
        tags=given(value.tags),
        source_channel=given(value.source_channel),
        owner_id=given(value.owner_id),
        birthday=given(value.birthday),
        locale=given(value.locale),
    )
    if data.identities not in (UNSET, None):
        data.identities = [(i.kind, i.value) for i in data.identities]
    if data.owner_id not in (UNSET, None):
        data.owner_id = parse_id(data.owner_id, "ownerId")
    consent = value.consent
    if consent not in (strawberry.UNSET, None):
        assert isinstance(consent, ConsentInput)
        for name in ("email", "sms", "push"):
            flag = getattr(consent, name)
            if flag not in (strawberry.UNSET, None):
                setattr(data, f"consent_{name}", flag)
    return data


@strawberry.type
class CustomerPayload:
    customer: Customer | None
    user_errors: list[UserError]


@strawberry.input
class UpdateCustomerInput:
    id: strawberry.ID
    customer: CustomerInput


@strawberry.input(description="Push a customer in by how another system knows it.")
class UpsertCustomerInput:
    identity: IdentityInput
    customer: CustomerInput


@strawberry.type
class UpsertCustomerPayload:
    customer: Customer | None
    created: bool
    user_errors: list[UserError]


@strawberry.input
class MergeCustomersInput:
    survivor_id: strawberry.ID = strawberry.field(description="The customer that stays.")
    merged_id: strawberry.ID = strawberry.field(description="The customer folded into it; it is gone afterwards.")
    dry_run: bool = strawberry.field(default=False, description="Report what would change; write nothing.")


@strawberry.type(description="How many records of each kind moved (or would move) to the survivor.")
class MergeCount:
    kind: str
    count: int


@strawberry.type
class MergeCustomersPayload:
    customer: Customer | None
    moved: list[MergeCount]
    conflicts: list[str]
    dry_run: bool
    user_errors: list[UserError]


@strawberry.input
class TagCustomersInput:
    customer_ids: list[strawberry.ID]
    add: list[str] = strawberry.field(default_factory=list)
    remove: list[str] = strawberry.field(default_factory=list)


@strawberry.type
class TagCustomersPayload:
    updated: int
    user_errors: list[UserError]


class DryRun(Exception):
    """Raised inside the merge's savepoint to undo it after reporting."""


@strawberry.type
class CustomerMutations:
    @strawberry.mutation(permission_classes=[allow(*BACKOFFICE, scope="customers:write")])
    async def create_customer(self, info: Info, input: CustomerInput) -> CustomerPayload:
        customer, errors = await in_transaction(info, lambda ctx: service.create_customer(ctx, to_data(input)))
        return CustomerPayload(customer=customer, user_errors=errors)  # type: ignore[arg-type]

    @strawberry.mutation(permission_classes=[allow(*BACKOFFICE, scope="customers:write")])
    async def update_customer(self, info: Info, input: UpdateCustomerInput) -> CustomerPayload:
        async def work(ctx: ServiceContext) -> object:
            return await service.update_customer(ctx, parse_id(input.id, "id"), to_data(input.customer))

        customer, errors = await in_transaction(info, work)
        return CustomerPayload(customer=customer, user_errors=errors)  # type: ignore[arg-type]

    @strawberry.mutation(
        permission_classes=[allow(*BACKOFFICE, scope="customers:write")],
        description="Create or update the customer known by this identity; safe to send twice.",
    )
    async def upsert_customer(self, info: Info, input: UpsertCustomerInput) -> UpsertCustomerPayload:
        result, errors = await in_transaction(
            info, lambda ctx: service.upsert_customer(ctx, input.identity.kind, input.identity.value,
                                                      to_data(input.customer)))
        customer, created = result if result else (None, False)
        return UpsertCustomerPayload(customer=customer, created=created, user_errors=errors)  # type: ignore[arg-type]

    @strawberry.mutation(
        permission_classes=[allow(*STAFF)],
        description="Fold one customer into another, history and plugin data included.",
    )
    async def merge_customers(self, info: Info, input: MergeCustomersInput) -> MergeCustomersPayload:
        report: list[service.MergeReport] = []

        async def work(ctx: ServiceContext) -> object:
            survivor, merged = parse_id(input.survivor_id, "survivorId"), parse_id(input.merged_id, "mergedId")
            if not input.dry_run:
                report.append(await service.merge_customers(ctx, survivor, merged))
                return await service.load(ctx, survivor)
            try:
                async with ctx.session.begin_nested():
                    report.append(await service.merge_customers(ctx, survivor, merged))
                    raise DryRun
            except DryRun:
                pass
            ctx.session.expire_all()
            ctx.enqueued.clear()
            return await service.load(ctx, survivor)

        customer, errors = await in_transaction(info, work)
        done = report[0] if report else None
        return MergeCustomersPayload(
            customer=customer,  # type: ignore[arg-type]
            moved=[MergeCount(kind=k, count=n) for k, n in (done.moved.items() if done else [])],
            conflicts=done.conflicts if done else [],
            dry_run=input.dry_run,
            user_errors=errors,
        )

    @strawberry.mutation(permission_classes=[allow(*BACKOFFICE, scope="customers:write")])
    async def tag_customers(self, info: Info, input: TagCustomersInput) -> TagCustomersPayload:
        async def work(ctx: ServiceContext) -> int:
            ids = [parse_id(i, "customerIds") for i in input.customer_ids]
            return await service.tag_customers(ctx, ids, input.add, input.remove)

        updated, errors = await in_transaction(info, work)
        return TagCustomersPayload(updated=updated or 0, user_errors=errors)
