"""A complexity budget that rejects, not only estimates: each field costs 1, and a list
field costs its page size (``first``, or the default) times what it selects."""

from __future__ import annotations

import functools
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLNamedType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    parse,
)
from strawberry.extensions import SchemaExtension


class ComplexityLimiter(SchemaExtension):
    """Refuses a query over the budget before it runs; list it after ``ValidationCache``.

    The schema gives each list field's page size when ``first`` is left out (its default),
    so ``customers { nodes { orders { nodes { id } } } }`` costs what its default pages fetch.
    """

    #: Costs of documents whose cost no variable changes, by document (the parser cache
    #: hands the same document object to every request with the same query text).
    _known: dict[tuple[int, int, int], tuple[DocumentNode, list[int]]] = {}

    def __init__(self, budget: int, page_cap: int) -> None:
        self.budget = budget
        self.page_cap = page_cap

    def _costs(self, document: DocumentNode, schema: GraphQLSchema, variables: dict[str, Any]) -> list[int]:
        key = (id(document), id(schema), self.page_cap)
        known = self._known.get(key)
        if known is not None and known[0] is document:
            return known[1]
        roots = {"query": schema.query_type, "mutation": schema.mutation_type,
                 "subscription": schema.subscription_type}
        fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        walk = _Walk(schema, fragments, variables, self.page_cap)
        costs = [walk.cost(d.selection_set, roots.get(d.operation.value), set())
                 for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        if not walk.read_variables:
            if len(self._known) >= 1024:
                self._known.clear()
            self._known[key] = (document, costs)
        return costs

    def on_validate(self) -> Any:
        context = self.execution_context
        document = context.graphql_document
        if document is not None:
            for cost in self._costs(document, context.schema._schema, context.variables or {}):
                if cost > self.budget:
                    # Runs after validation (ValidationCache sets the errors it found),
                    # so it adds to them rather than replacing them.
                    context.pre_execution_errors = [*(context.pre_execution_errors or []), GraphQLError(
                        f"the query's complexity is {cost}, over the budget of {self.budget} "
                        "(TENURE_MAX_COMPLEXITY): ask for fewer items or fewer fields",
                        extensions={"code": "LIMIT_EXCEEDED", "limit": "complexity"},
                    )]
                    break
        yield


class _Walk:
    """Each field costs 1, plus its page size (``first``, or its default) times what it selects."""

    def __init__(self, schema: GraphQLSchema, fragments: dict[str, FragmentDefinitionNode],
                 variables: dict[str, Any], page_cap: int) -> None:
        self.schema, self.fragments, self.variables, self.page_cap = schema, fragments, variables, page_cap
        self.read_variables = False

    def _page(self, node: FieldNode, field: GraphQLField | None) -> int:
        for argument in node.arguments or ():
            if argument.name.value in ("first", "last"):
                value = argument.value
                if isinstance(value, IntValueNode):
                    return max(1, min(int(value.value), self.page_cap))
                if isinstance(value, VariableNode):
                    self.read_variables = True
                    found = self.variables.get(value.name.value)
                    return max(1, min(int(found), self.page_cap)) if isinstance(found, int) else self.page_cap
        default = field.args.get("first") if field is not None else None
        if default is not None and isinstance(default.default_value, int):
            return max(1, min(default.default_value, self.page_cap))
        return 1

    def cost(self, selection_set: SelectionSetNode | None, parent: GraphQLNamedType | None, seen: set[str]) -> int:
        if selection_set is None:
            return 0
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                fields = getattr(parent, "fields", None) or {}
                field = fields.get(selection.name.value)
                inner_type = get_named_type(field.type) if field is not None else None
                inner = self.cost(selection.selection_set, inner_type, seen)
                total += 1 + self._page(selection, field) * inner
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                target = self.schema.get_type(condition.name.value) if condition else parent
                total += self.cost(selection.selection_set, target, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name in seen or name not in self.fragments:
                    continue  # circular spreads are refused by validation itself
                fragment = self.fragments[name]
                target = self.schema.get_type(fragment.type_condition.name.value)
                total += self.cost(fragment.selection_set, target, seen | {name})
        return total


#: Messages of graphql-core's and strawberry's own limits, and what Tenure says instead.
_LIMITS = (
    ("exceeds maximum operation depth", "depth", "max_depth", "the query is nested deeper than the cap of {}"),
    ("aliases found. Allowed", "aliases", "max_aliases", "the query uses more aliases than the cap of {}"),
)


class LimitMessages(SchemaExtension):
    """Rewrites the errors of the depth and alias limits so that, like every other
    cap, they name the setting and carry ``extensions.code = LIMIT_EXCEEDED``. The error
    objects are changed in place (the response holds the same ones); cached validation
    results hold them too, so a rewritten error is recognised and left alone."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings

    def on_validate(self) -> Any:
        yield
        self._rewrite()

    def _rewrite(self) -> None:
        for error in self.execution_context.pre_execution_errors or []:
            if (error.extensions or {}).get("code"):
                continue
            for needle, limit, setting, text in _LIMITS:
                if needle in error.message:
                    cap = getattr(self.settings, setting)
                    error.message = f"{text.format(cap)} (TENURE_{setting.upper()})"
                    error.extensions = {"code": "LIMIT_EXCEEDED", "limit": limit}
                    break


@functools.lru_cache(maxsize=256)
def _parse(query: str, max_tokens: int) -> DocumentNode:
    return parse(query, max_tokens=max_tokens)


class TokenLimitedParser(SchemaExtension):
    """Parses with a cap on tokens (cached, like strawberry's ``ParserCache``), and names
    the cap when a document goes over it."""

    def __init__(self, max_tokens: int) -> None:
        self.max_tokens = max_tokens

    def on_parse(self) -> Any:
        context = self.execution_context
        if context.query is not None and context.graphql_document is None:
            try:
                context.graphql_document = _parse(context.query, self.max_tokens)
            except GraphQLError as error:
                if "tokens. Parsing aborted" not in error.message:
                    raise
                raise GraphQLError(
                    f"the query has more tokens than the cap of {self.max_tokens} (TENURE_MAX_TOKENS)",
                    extensions={"code": "LIMIT_EXCEEDED", "limit": "tokens"},
                ) from None
        yield
