"""Assembly of the GraphQL schema from the core and the enabled plugins.

Plugin fields are added per schema through :meth:`TenureSchema.get_fields`, never spliced
into the core's classes, so a schema built with a plugin off carries no trace of it even
in a process that built one with it on. A field contributed twice to one type, or a root
field without a permission rule, stops the assembly with an error that names it.
"""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError
from graphql.validation import ASTValidationRule
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaskErrors,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.types.base import StrawberryObjectDefinition
from strawberry.types.field import StrawberryField

from tenure.core.plugins import PluginManager
from tenure.core.settings import Settings
from tenure.schema.availability import UnavailableErrors
from tenure.schema.error_log import log_errors
from tenure.schema.forecast import ForecastQuery
from tenure.schema.inputs import guard_fields
from tenure.schema.limits import ComplexityLimiter, TokenLimitedParser, Validation, document_limits_rule
from tenure.schema.messages import MessageMutations, MessageQuery
from tenure.schema.mutations.admin import AdminMutations
from tenure.schema.mutations.customers import CustomerMutations
from tenure.schema.mutations.orders import OrderMutations
from tenure.schema.mutations.tasks import TaskMutations
from tenure.schema.nodes import NodeQuery, node_kinds
from tenure.schema.permissions import TenurePermission
from tenure.schema.privacy import PrivacyMutations, PrivacyQuery, audit_root_fields
from tenure.schema.queries import CoreQuery
from tenure.schema.retention import retention_query
from tenure.schema.subscriptions import Subscription
from tenure.schema.types.common import SCALARS
from tenure.schema.types.member import MemberMutations, MemberQuery

ROOTS = ("Query", "Mutation", "Subscription")


@strawberry.type(description="Everything a client can read.")
class Query(CoreQuery, NodeQuery, MemberQuery, MessageQuery, PrivacyQuery, ForecastQuery):
    pass


@strawberry.type(description="Everything a client can change: one `input`, a payload with `userErrors`.")
class Mutation(CustomerMutations, OrderMutations, TaskMutations, AdminMutations, MessageMutations, PrivacyMutations,
               MemberMutations):
    pass


class SchemaAssemblyError(Exception):
    """Two contributions collide, or a root field declares no permission."""


class TenureSchema(strawberry.Schema):
    """A strawberry schema whose types carry the fields that enabled plugins add."""

    def __init__(self, *, additions: dict[str, list[StrawberryField]], **kwargs: Any) -> None:
        self.additions = additions
        kwargs.setdefault("config", StrawberryConfig(scalar_map=SCALARS))
        super().__init__(**kwargs)
        #: The ``Node`` types of this schema by name: what ``node(id:)`` can read.
        self.node_kinds = node_kinds(self)

    def get_fields(self, type_definition: StrawberryObjectDefinition) -> list[StrawberryField]:
        return list(type_definition.fields) + self.additions.get(type_definition.name, [])

    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        log_errors(errors, execution_context)  # a client's mistake is no ERROR with a traceback


def _fields(cls: type) -> list[StrawberryField]:
    definition = getattr(cls, "__strawberry_definition__", None)
    if definition is None:
        raise SchemaAssemblyError(f"{cls.__name__} is not a @strawberry.type")
    return list(definition.fields)


def _has_rule(field: StrawberryField) -> bool:
    return any(issubclass(p, TenurePermission) for p in field.permission_classes)


def collect_additions(plugins: PluginManager) -> dict[str, list[StrawberryField]]:
    """Fields each enabled plugin adds, by the name of the type they join."""
    converter = StrawberryConfig().name_converter
    core_types: dict[str, type] = {"Query": Query, "Mutation": Mutation, "Subscription": Subscription}
    from tenure.schema.types import core as core_types_module
    from tenure.schema.types.member import Member

    for name in ("Customer", "Order", "Interaction", "Task", "StaffUser"):
        core_types[name] = getattr(core_types_module, name)
    core_types["Member"] = Member
    owners: dict[tuple[str, str], str] = {}
    for type_name, cls in core_types.items():
        for field in _fields(cls):
            owners[type_name, converter.from_field(field)] = "core"
    additions: dict[str, list[StrawberryField]] = {}
    # The core's retention fields are made per schema: their `by` enum lists the dimensions
    # of the enabled plugins.
    for field in _fields(retention_query(plugins)):
        owners["Query", converter.from_field(field)] = "core"
        additions.setdefault("Query", []).append(field)
    for plugin, contribution in plugins.schema_contributions:
        targets: list[tuple[str, type]] = [
            (root, cls)
            for root, cls in (("Query", contribution.query), ("Mutation", contribution.mutation),
                              ("Subscription", contribution.subscription))
            if cls is not None
        ]
        targets += list(contribution.extends.items())
        for type_name, cls in targets:
            if type_name not in ROOTS and type_name not in core_types:
                raise SchemaAssemblyError(f"plugin {plugin} extends {type_name}, which is not a core type")
            for field in _fields(cls):
                name = converter.from_field(field)
                owner = owners.get((type_name, name))
                if owner is not None:
                    raise SchemaAssemblyError(
                        f"{type_name}.{name} is contributed by both {owner} and {plugin}; rename one"
                    )
                owners[type_name, name] = plugin
                additions.setdefault(type_name, []).append(field)
    return additions


def _core_type_fields() -> list[StrawberryField]:
    from tenure.schema.types import core as core_types_module
    from tenure.schema.types.member import Member

    classes = [getattr(core_types_module, n) for n in ("Customer", "Order", "Interaction", "Task", "StaffUser")]
    return [f for cls in [*classes, Member] for f in _fields(cls)]


def check_permissions(schema: TenureSchema) -> None:
    for root, cls in (("Query", Query), ("Mutation", Mutation), ("Subscription", Subscription)):
        for field in _fields(cls) + schema.additions.get(root, []):
            if not _has_rule(field):
                raise SchemaAssemblyError(f"{root}.{field.python_name} declares no permission (use allow(...))")


def _unexpected(error: GraphQLError) -> bool:
    """Production hides what a bug raised, and keeps what the caller can act on: errors
    raised as GraphQL errors on purpose (permissions, limits, bad input) and validation."""
    return error.original_error is not None and not isinstance(error.original_error, GraphQLError)


def build_schema(plugins: PluginManager, settings: Settings) -> TenureSchema:
    additions = collect_additions(plugins)
    audit_root_fields(_fields(Query) + additions.get("Query", []), _fields(Mutation) + additions.get("Mutation", []))
    guard_fields([*_fields(Query), *_fields(Mutation), *_core_type_fields(),
                  *(f for fields in additions.values() for f in fields)])
    limit_rules: list[type[ASTValidationRule]] = [document_limits_rule(settings.max_depth, settings.max_aliases)]
    extensions: list[Any] = [
        lambda: AddValidationRules(limit_rules),
        lambda: TokenLimitedParser(settings.max_tokens),
        lambda: Validation(settings.introspection),
        lambda: ComplexityLimiter(settings.max_complexity, settings.max_page_size),
        UnavailableErrors,
    ]
    if not settings.introspection:
        extensions.append(DisableIntrospection)
    if settings.production:
        extensions.append(lambda: MaskErrors(should_mask_error=_unexpected))
    extra_types: list[Any] = [t for _, c in plugins.schema_contributions for t in c.types]
    schema = TenureSchema(
        additions=additions,
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=extra_types,
        extensions=extensions,
    )
    check_permissions(schema)
    return schema
