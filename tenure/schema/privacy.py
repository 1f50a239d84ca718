"""Personal data and accountability: ``exportCustomer``, ``eraseCustomer``, ``auditLog``,
``rotateApiKey``, and the extension that writes the audit log.

Every mutation, and every read of customers by a key, leaves an audit entry (who, what,
which customer, how it ended). The entry is written in its own short transaction after the
field resolves, so a refused or denied attempt is on record too.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

import strawberry
from graphql import GraphQLError, GraphQLResolveInfo, OperationType
from strawberry.extensions import FieldExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.types import Info
from strawberry.types.field import StrawberryField

from tenure.core import audit, auth, privacy
from tenure.core.context import ServiceContext
from tenure.core.errors import NotFound
from tenure.core.models import AuditEntry as AuditRow
from tenure.core.models import Role
from tenure.schema import loaders
from tenure.schema.mutations import in_transaction, parse_id
from tenure.schema.permissions import allow
from tenure.schema.queries import counter, runner, to_int
from tenure.schema.relay import (
    After,
    Before,
    Connection,
    First,
    InvalidId,
    Last,
    Node,
    decode_id,
    id_of,
    node,
    paginate,
)
from tenure.schema.types.common import JSON, USER_ERRORS, UserError
from tenure.schema.types.core import Customer

log = logging.getLogger("tenure.audit")

#: Query fields whose reads by a key are audited: they show customers' personal data.
AUDITED_READS = frozenset({"customer", "customers", "exportCustomer", "duplicateCandidates"})
#: Fields whose ``id`` argument is a customer id.
CUSTOMER_ID_FIELDS = frozenset({"customer", "exportCustomer", "updateCustomer"})


@strawberry.type(description="One audited call: who, what, about which customer, and how it ended.")
@node(AuditRow, allow(Role.ADMIN))
class AuditEntry(Node):
    occurred_at: datetime = strawberry.field(description="When the call was made.")
    actor: str = strawberry.field(description="Who called: `key:<id>`, `member:<customer id>` or `system`.")
    role: str = strawberry.field(description="The caller's role then: `admin`, `staff`, `integration` or `member`.")
    kind: str = strawberry.field(description="Whether it was a `write` (a mutation) or a `read`.")
    operation: str = strawberry.field(description="The root field called, e.g. recordOrder.")
    customer_id: strawberry.ID | None = id_of(
        "Customer", "customer_id", deprecation_reason="Use `customer`, the customer itself.",
        description="The global id of the customer whose data was read or written, when one was.")
    outcome: str = strawberry.field(
        description="How it ended: `ok`, `refused` (userErrors), `denied` (no permission) or `error`.")

    @strawberry.field(description="The customer whose data was read or written, when one was (null once erased).")
    async def customer(self: AuditRow, info: Info) -> Customer | None:
        if self.customer_id is None:
            return None
        return await info.context.loader(loaders.customers_by_id).load(self.customer_id)


@strawberry.input(description="The customer whose personal data to remove.")
class EraseCustomerInput:
    customer_id: strawberry.ID = strawberry.field(description="The customer's id.")


@strawberry.type(description="The result of eraseCustomer.")
class EraseCustomerPayload:
    customer: Customer | None = strawberry.field(
        description="The customer record as it stays, anonymised; null when refused.")
    erased_at: datetime | None = strawberry.field(description="When the data was removed; null when refused.")
    user_errors: list[UserError] = strawberry.field(description=USER_ERRORS)


@strawberry.input(description="The API key to replace.")
class RotateApiKeyInput:
    key_id: strawberry.ID = strawberry.field(description="The key's id.")
    grace_seconds: int = strawberry.field(default=0, description="How long the old key keeps working (max 30 days).")


@strawberry.type(description="The new key is shown here once and never again.")
class RotateApiKeyPayload:
    key: str | None = strawberry.field(
        description="The whole new key, to send as `Authorization: Bearer <key>`; null when refused.")
    key_id: strawberry.ID | None = strawberry.field(description="The new key's id; null when refused.")
    prefix: str | None = strawberry.field(
        description="The new key's first characters, which identify it in lists and logs; null when refused.")
    user_errors: list[UserError] = strawberry.field(description=USER_ERRORS)


@strawberry.type
class PrivacyQuery:
    @strawberry.field(permission_classes=[allow(Role.ADMIN)],
                      description="Everything held about one customer, as JSON.")
    async def export_customer(self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(
            description="The customer's id.")]) -> JSON:
        customer_id = to_int(id, "id", "Customer")
        async with info.context.db() as session:
            ctx = ServiceContext(session, info.context.settings, info.context.plugins,
                                 actor=info.context.principal.actor)
            try:
                return await privacy.export_customer(ctx, customer_id)  # type: ignore[return-value]
            except NotFound as error:
                raise GraphQLError(error.message, extensions={"code": "NOT_FOUND", "field": "id"}) from None

    @strawberry.field(permission_classes=[allow(Role.ADMIN)], description="The audit log, newest first.")
    async def audit_log(
        self, info: Info, first: First = 50, after: After = None, last: Last = None, before: Before = None,
        actor: Annotated[str | None, strawberry.argument(
            description="Only calls by this actor, such as `key:12`; null for every actor.")] = None,
        customer_id: Annotated[strawberry.ID | None, strawberry.argument(
            description="Only calls about this customer; null for all.")] = None,
    ) -> Connection[AuditEntry]:
        customer = to_int(customer_id, "customerId", "Customer") if customer_id else None
        stmt = audit.entries(actor=actor, customer_id=customer)
        return await paginate(runner(info), stmt, [(AuditRow.id, True)], first=first, after=after, last=last,
                              before=before,
                              cap=info.context.settings.max_page_size, count=counter(info, stmt))


@strawberry.type
class PrivacyMutations:
    @strawberry.mutation(
        permission_classes=[allow(Role.ADMIN)],
        description="Remove a customer's personal data; orders, ledgers and counts stay, anonymised.",
    )
    async def erase_customer(self, info: Info, input: Annotated[EraseCustomerInput, strawberry.argument(
            description="The customer.")]) -> EraseCustomerPayload:
        customer, errors = await in_transaction(
            info, lambda ctx: privacy.erase_customer(ctx, parse_id(input.customer_id, "customerId", "Customer")))
        return EraseCustomerPayload(customer=customer, erased_at=customer.erased_at if customer else None,  # type: ignore[arg-type]
                                    user_errors=errors)

    @strawberry.mutation(
        permission_classes=[allow(Role.ADMIN)],
        description="Replace a key with a new one of the same role and scopes; the old one stops working.",
    )
    async def rotate_api_key(self, info: Info, input: Annotated[RotateApiKeyInput, strawberry.argument(
            description="The key, and how long the old one keeps working.")]) -> RotateApiKeyPayload:
        created, errors = await in_transaction(
            info, lambda ctx: auth.rotate_api_key(ctx.session, parse_id(input.key_id, "keyId"), input.grace_seconds))
        if created is None:
            return RotateApiKeyPayload(key=None, key_id=None, prefix=None, user_errors=errors)
        return RotateApiKeyPayload(key=created.key, key_id=strawberry.ID(str(created.record.id)),
                                   prefix=created.record.prefix, user_errors=[])


def _customer_id(field: str, arguments: dict[str, Any], info: GraphQLResolveInfo) -> int | None:
    """The customer a call is about, from its arguments (Python names; inputs as objects)."""
    principal = info.context.principal
    if principal is not None and principal.customer_id is not None:
        return int(principal.customer_id)
    candidates: list[Any] = [arguments.get("customer_id")]
    if field in CUSTOMER_ID_FIELDS:
        candidates.append(arguments.get("id"))
    for value in arguments.values():
        if hasattr(value, "__strawberry_definition__"):
            candidates += [getattr(value, "customer_id", None), getattr(value, "survivor_id", None)]
            if field in CUSTOMER_ID_FIELDS:
                candidates.append(getattr(value, "id", None))
    for candidate in candidates:
        if isinstance(candidate, str | int):
            try:
                return decode_id(candidate, "Customer")
            except InvalidId:
                continue
    return None


def _outcome(result: Any) -> str:
    return "refused" if getattr(result, "user_errors", None) else "ok"


class AuditTrail(FieldExtension):
    """Writes an audit entry for each root mutation field, and each audited read by a key.

    Attached to those root fields only (by :func:`audit_root_fields` at assembly), after their
    permission check so a denied call is recorded: a schema-wide ``resolve`` hook would run for
    every field of every answer (5,000 on a portal page) to find the few root ones."""

    def resolve(self, next_: Callable[..., Any], source: Any, info: Info, **kwargs: Any) -> Any:
        return self._audited(next_, source, info, kwargs)

    async def resolve_async(self, next_: Callable[..., Any], source: Any, info: Info, **kwargs: Any) -> Any:
        return await self._audited(next_, source, info, kwargs)

    def _audited(self, next_: Callable[..., Any], source: Any, info: Info, kwargs: dict[str, Any]) -> Any:
        raw: GraphQLResolveInfo = info._raw_info
        principal = raw.context.principal
        is_write = raw.operation.operation == OperationType.MUTATION
        if principal is None or (not is_write and principal.role == Role.MEMBER) or raw.path.prev is not None:
            return next_(source, info, **kwargs)

        async def audited() -> Any:
            context = raw.context
            access = audit.Access(actor=principal.actor, role=principal.role.value,
                                  kind="write" if is_write else "read", operation=raw.field_name,
                                  customer_id=_customer_id(raw.field_name, kwargs, raw), outcome="ok")
            # A write that commits takes its "ok" entry into its own transaction.
            context.pending_audit = access if is_write else None
            outcome = "error"
            try:
                result = next_(source, info, **kwargs)
                value = await result if inspect.isawaitable(result) else result
                outcome = _outcome(value)
                return value
            except GraphQLError as error:
                code = (error.extensions or {}).get("code")
                outcome = "denied" if code in ("FORBIDDEN", "UNAUTHENTICATED") else "error"
                raise
            finally:
                # Written already when the mutation's transaction committed: what it wrote stands.
                written = is_write and context.pending_audit is None
                context.pending_audit = None
                if not written:
                    entry = dataclasses.replace(access, outcome=outcome)
                    try:
                        async with context.transaction() as ctx:
                            await audit.record(ctx.session, entry)
                    except Exception:  # the answer stands; a lost entry is logged, not raised
                        log.exception("could not write the audit entry for %s by %s", entry.operation, entry.actor)

        return audited()


def audit_root_fields(query: list[StrawberryField], mutation: list[StrawberryField]) -> None:
    """Attach :class:`AuditTrail` to every mutation and to the audited reads, once per field
    (the field objects are shared by every schema a process builds)."""
    converter = StrawberryConfig().name_converter
    audited = [f for f in query if converter.from_field(f) in AUDITED_READS] + list(mutation)
    for field in audited:
        if not any(isinstance(extension, AuditTrail) for extension in field.extensions):
            field.extensions.append(AuditTrail())
