"""createCustomer, updateCustomer, upsertCustomer, mergeCustomers, tagCustomers."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import strawberry
from strawberry.types import Info

from tenure.core.context import ServiceContext
from tenure.core.services import customers as service
from tenure.core.services.customers import UNSET, CustomerData
from tenure.schema.mutations import in_transaction, parse_id
from tenure.schema.permissions import BACKOFFICE, STAFF, allow
from tenure.schema.types.common import USER_ERRORS, UserError
from tenure.schema.types.core import Customer


@strawberry.input(description="How another system knows the customer.")
class IdentityInput:
    kind: str = strawberry.field(
        description="The other system, such as `pos` or `shop` (at most 50 characters, stored in lower case).")
    value: str = strawberry.field(
        description="The customer's id or number there (at most 200 characters); one customer per kind and value.")


@strawberry.input(description="Consent flags; a missing one is left as it is.")
class ConsentInput:
    email: bool | None = strawberry.field(default=strawberry.UNSET, description="May be sent email.")
    sms: bool | None = strawberry.field(default=strawberry.UNSET, description="May be sent text messages.")
    push: bool | None = strawberry.field(default=strawberry.UNSET, description="May be sent push notifications.")


@strawberry.input(description="A customer's fields. On update, a field left out is left as it is.")
class CustomerInput:
    name: str | None = strawberry.field(
        default=strawberry.UNSET, description="The name, at most 200 characters; required on create.")
    emails: list[str] | None = strawberry.field(
        default=strawberry.UNSET, description="Every email address, at most 20; the list replaces the current one.")
    phones: list[str] | None = strawberry.field(
        default=strawberry.UNSET, description="Every phone number, at most 20; the list replaces the current one.")
    identities: list[IdentityInput] | None = strawberry.field(
        default=strawberry.UNSET,
        description="How other systems know the customer, one per kind; the list replaces the current one.")
    tags: list[str] | None = strawberry.field(
        default=strawberry.UNSET,
        description="Every tag, at most 100 of up to 50 characters, stored in lower case; the list replaces the "
                    "current one.")
    source_channel: str | None = strawberry.field(
        default=strawberry.UNSET, description="Where the customer came from, at most 50 characters; null clears it.")
    owner_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description="The staff user who manages the customer; null clears it.")
    birthday: date | None = strawberry.field(
        default=strawberry.UNSET, description="The date of birth, not in the future; null clears it.")
    locale: str | None = strawberry.field(
        default=strawberry.UNSET, description="A BCP 47 language tag such as `en` or `de-CH`; null clears it.")
    consent: ConsentInput | None = strawberry.field(
        default=strawberry.UNSET, description="What the customer may be contacted by.")


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
        data.owner_id = parse_id(data.owner_id, "ownerId", "StaffUser")
    consent = value.consent
    if consent not in (strawberry.UNSET, None):
        assert isinstance(consent, ConsentInput)
        for name in ("email", "sms", "push"):
            flag = getattr(consent, name)
            if flag not in (strawberry.UNSET, None):
                setattr(data, f"consent_{name}", flag)
    return data


@strawberry.type(description="The result of createCustomer or updateCustomer.")
class CustomerPayload:
    customer: Customer | None = strawberry.field(description="The customer as saved; null when the input was refused.")
    user_errors: list[UserError] = strawberry.field(description=USER_ERRORS)


@strawberry.input(description="Which customer to change, and how.")
class UpdateCustomerInput:
    id: strawberry.ID = strawberry.field(description="The customer's id.")
    customer: CustomerInput = strawberry.field(description="The fields to change; a field left out stays as it is.")


@strawberry.input(description="Push a customer in by how another system knows it.")
class UpsertCustomerInput:
    identity: IdentityInput = strawberry.field(description="How the other system knows the customer.")
    customer: CustomerInput = strawberry.field(
        description="The customer's fields: all of them on create; on update, a field left out stays as it is.")


@strawberry.type(description="The result of upsertCustomer.")
class UpsertCustomerPayload:
    customer: Customer | None = strawberry.field(description="The customer as saved; null when the input was refused.")
    created: bool = strawberry.field(description="True when the customer was new, false when an existing one changed.")
    user_errors: list[UserError] = strawberry.field(description=USER_ERRORS)


@strawberry.input(description="Which customer to fold into which.")
class MergeCustomersInput:
    survivor_id: strawberry.ID = strawberry.field(description="The customer that stays.")
    merged_id: strawberry.ID = strawberry.field(description="The customer folded into it; it is gone afterwards.")
    dry_run: bool = strawberry.field(default=False, description="Report what would change; write nothing.")


@strawberry.type(description="How many records of each kind moved (or would move) to the survivor.")
class MergeCount:
    kind: str = strawberry.field(description="What moved, such as `orders`, `contacts` or a plugin's records.")
    count: int = strawberry.field(description="How many of them.")


@strawberry.type(description="The result of mergeCustomers.")
class MergeCustomersPayload:
    customer: Customer | None = strawberry.field(
        description="The survivor after the merge (unchanged on a dry run); null when the input was refused.")
    moved: list[MergeCount] = strawberry.field(description="What moved (or would move) to the survivor, by kind.")
    conflicts: list[str] = strawberry.field(
        description="What could not move and was dropped, one sentence each (such as an identity of a kind the "
                    "survivor already has).")
    dry_run: bool = strawberry.field(description="True when nothing was written: the input asked for a dry run.")
    user_errors: list[UserError] = strawberry.field(description=USER_ERRORS)


@strawberry.input(description="Tags to add to and remove from many customers at once.")
class TagCustomersInput:
    customer_ids: list[strawberry.ID] = strawberry.field(
        description="The customers, at most 1000; one unknown id refuses the whole input.")
    add: list[str] = strawberry.field(
        default_factory=list, description="Tags to add (at most 100); one a customer has already is kept once.")
    remove: list[str] = strawberry.field(
        default_factory=list, description="Tags to remove (at most 100); one a customer lacks is ignored.")


@strawberry.type(description="The result of tagCustomers.")
class TagCustomersPayload:
    updated: int = strawberry.field(description="How many customers were updated; 0 when the input was refused.")
    user_errors: list[UserError] = strawberry.field(description=USER_ERRORS)


class DryRun(Exception):
    """Raised inside the merge's savepoint to undo it after reporting."""


@strawberry.type
class CustomerMutations:
    @strawberry.mutation(permission_classes=[allow(*BACKOFFICE, scope="customers:write")],
                         description="Record a new customer.")
    async def create_customer(self, info: Info, input: Annotated[CustomerInput, strawberry.argument(
            description="The customer's fields; `name` is required.")]) -> CustomerPayload:
        customer, errors = await in_transaction(info, lambda ctx: service.create_customer(ctx, to_data(input)))
        return CustomerPayload(customer=customer, user_errors=errors)  # type: ignore[arg-type]

    @strawberry.mutation(permission_classes=[allow(*BACKOFFICE, scope="customers:write")],
                         description="Change a customer's fields; those left out stay as they are.")
    async def update_customer(self, info: Info, input: Annotated[UpdateCustomerInput, strawberry.argument(
            description="The customer and the fields to change.")]) -> CustomerPayload:
        async def work(ctx: ServiceContext) -> object:
            return await service.update_customer(ctx, parse_id(input.id, "id", "Customer"), to_data(input.customer))

        customer, errors = await in_transaction(info, work)
        return CustomerPayload(customer=customer, user_errors=errors)  # type: ignore[arg-type]

    @strawberry.mutation(
        permission_classes=[allow(*BACKOFFICE, scope="customers:write")],
        description="Create or update the customer known by this identity; safe to send twice.",
    )
    async def upsert_customer(self, info: Info, input: Annotated[UpsertCustomerInput, strawberry.argument(
            description="The identity that finds the customer, and its fields.")]) -> UpsertCustomerPayload:
        result, errors = await in_transaction(
            info, lambda ctx: service.upsert_customer(ctx, input.identity.kind, input.identity.value,
                                                      to_data(input.customer)))
        customer, created = result if result else (None, False)
        return UpsertCustomerPayload(customer=customer, created=created, user_errors=errors)  # type: ignore[arg-type]

    @strawberry.mutation(
        permission_classes=[allow(*STAFF)],
        description="Fold one customer into another, history and plugin data included.",
    )
    async def merge_customers(self, info: Info, input: Annotated[MergeCustomersInput, strawberry.argument(
            description="The survivor, the customer folded into it, and whether to write.")]) -> MergeCustomersPayload:
        report: list[service.MergeReport] = []

        async def work(ctx: ServiceContext) -> object:
            survivor, merged = parse_id(input.survivor_id, "survivorId", "Customer"), parse_id(input.merged_id,
                                                                                               "mergedId", "Customer")
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

    @strawberry.mutation(permission_classes=[allow(*BACKOFFICE, scope="customers:write")],
                         description="Add and remove tags on many customers at once, all or none.")
    async def tag_customers(self, info: Info, input: Annotated[TagCustomersInput, strawberry.argument(
            description="The customers and the tags.")]) -> TagCustomersPayload:
        async def work(ctx: ServiceContext) -> int:
            ids = [parse_id(i, "customerIds", "Customer") for i in input.customer_ids]
            return await service.tag_customers(ctx, ids, input.add, input.remove)

        updated, errors = await in_transaction(info, work)
        return TagCustomersPayload(updated=updated or 0, user_errors=errors)
