"""Parsing and validation of documents, and caps on what one may ask: nesting depth,
aliases, tokens and complexity.

Every cap is measured in one walk whose cost is linear in the document's size, whatever
its fragments: each fragment is measured once, and a spread of it adds what was measured
(a document of nested spreads can describe an exponential amount of work, so expanding
each spread again would hand that work to the server before anyone is authenticated). A
selection set stops being walked once a cap is passed.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
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
    ValidationContext,
    ValidationRule,
    VariableNode,
    get_named_type,
    parse,
    validate,
)
from graphql.validation import ASTValidationRule
from strawberry.extensions import SchemaExtension


@dataclass(frozen=True)
class Figures:
    """What a selection set asks for: how deep it nests (fields with a selection of their
    own, introspection left out), how many aliased fields it holds once its spreads are
    expanded, and its complexity (each field 1, plus its page size times what it selects)."""

    depth: int = 0
    aliases: int = 0
    cost: int = 0


@dataclass(frozen=True)
class Caps:
    depth: int
    aliases: int
    cost: int

    def passed(self, figures: Figures) -> bool:
        return figures.depth > self.depth or figures.aliases > self.aliases or figures.cost > self.cost


class Measure:
    """Measures the operations of one document, each fragment once."""

    def __init__(self, schema: GraphQLSchema, document: DocumentNode, caps: Caps, variables: dict[str, Any],
                 page_cap: int) -> None:
        self.schema, self.caps, self.variables, self.page_cap = schema, caps, variables, page_cap
        self.fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        self.operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        self._measured: dict[str, Figures] = {}
        self._in_progress: set[str] = set()
        self.read_variables = False
        #: Whether a walk stopped early (a cap was passed): the figures are then lower bounds.
        self.stopped = False

    def each_operation(self) -> list[Figures]:
        roots = {"query": self.schema.query_type, "mutation": self.schema.mutation_type,
                 "subscription": self.schema.subscription_type}
        return [self.selection_set(op.selection_set, roots.get(op.operation.value)) for op in self.operations]

    def _fragment(self, name: str) -> Figures:
        known = self._measured.get(name)
        if known is not None:
            return known
        fragment = self.fragments.get(name)
        if fragment is None or name in self._in_progress:
            return Figures()  # unknown or circular spreads are refused by validation itself
        self._in_progress.add(name)
        figures = self.selection_set(fragment.selection_set, self.schema.get_type(fragment.type_condition.name.value))
        self._in_progress.discard(name)
        self._measured[name] = figures
        return figures

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

    def selection_set(self, selection_set: SelectionSetNode | None, parent: GraphQLNamedType | None) -> Figures:
        if selection_set is None:
            return Figures()
        depth = aliases = cost = 0
        selections = selection_set.selections
        for n, selection in enumerate(selections, start=1):
            if isinstance(selection, FieldNode):
                fields = getattr(parent, "fields", None) or {}
                field = fields.get(selection.name.value)
                inner = self.selection_set(selection.selection_set, get_named_type(field.type) if field else None)
                if selection.selection_set is not None and not selection.name.value.startswith("__"):
                    depth = max(depth, 1 + inner.depth)
                aliases += inner.aliases + (1 if selection.alias else 0)
                cost += 1 + self._page(selection, field) * inner.cost
            else:
                if isinstance(selection, InlineFragmentNode):
                    condition = selection.type_condition
                    target = self.schema.get_type(condition.name.value) if condition else parent
                    inner = self.selection_set(selection.selection_set, target)
                elif isinstance(selection, FragmentSpreadNode):
                    inner = self._fragment(selection.name.value)
                else:  # pragma: no cover - the grammar has no other selection
                    continue
                depth, aliases, cost = max(depth, inner.depth), aliases + inner.aliases, cost + inner.cost
            if self.caps.passed(Figures(depth, aliases, cost)):
                self.stopped = self.stopped or n < len(selections)
                break
        return Figures(depth, aliases, cost)


def _limit_error(message: str, limit: str, nodes: Any = None) -> GraphQLError:
    return GraphQLError(message, nodes, extensions={"code": "LIMIT_EXCEEDED", "limit": limit})


def document_limits_rule(max_depth: int, max_aliases: int) -> type[ValidationRule]:
    """A validation rule refusing documents nested deeper than ``max_depth`` or holding more
    than ``max_aliases`` aliased fields (spreads expanded). Made once per schema: the
    validation cache's key holds the rule classes, so a class made per request would never
    hit it."""
    caps = Caps(depth=max_depth, aliases=max_aliases, cost=1 << 62)

    class DocumentLimits(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            measure = Measure(context.schema, context.document, caps, {}, page_cap=1)
            for operation, figures in zip(measure.operations, measure.each_operation(), strict=True):
                if figures.depth > max_depth:
                    context.report_error(_limit_error(
                        f"the query is nested deeper than the cap of {max_depth} (TENURE_MAX_DEPTH)", "depth",
                        operation))
                    break
                if figures.aliases > max_aliases:
                    context.report_error(_limit_error(
                        f"the query uses more aliases than the cap of {max_aliases} (TENURE_MAX_ALIASES)",
                        "aliases", operation))
                    break

    return DocumentLimits


class ComplexityLimiter(SchemaExtension):
    """Refuses a query over the complexity budget before it runs; list it after
    ``ValidationCache``.

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
        caps = Caps(depth=1 << 62, aliases=1 << 62, cost=self.budget)
        measure = Measure(schema, document, caps, variables, self.page_cap)
        costs = [figures.cost for figures in measure.each_operation()]
        if measure.stopped:
            costs = [cost if cost <= self.budget else -cost for cost in costs]
        if not measure.read_variables:
            if len(self._known) >= 1024:
                self._known.clear()
            self._known[key] = (document, costs)
        return costs

    def on_validate(self) -> Any:
        context = self.execution_context
        document = context.graphql_document
        if document is not None and not context.pre_execution_errors:
            for cost in self._costs(document, context.schema._schema, context.variables or {}):
                if abs(cost) > self.budget:
                    # A negative cost is a walk that stopped once over the budget.
                    shown = f"at least {-cost}" if cost < 0 else str(cost)
                    context.pre_execution_errors = [_limit_error(
                        f"the query's complexity is {shown}, over the budget of {self.budget} "
                        "(TENURE_MAX_COMPLEXITY): ask for fewer items or fewer fields", "complexity")]
                    break
        yield


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


@functools.lru_cache(maxsize=256)
def _validate(schema: GraphQLSchema, document: DocumentNode, rules: tuple[type[ASTValidationRule], ...],
              hide_suggestions: bool) -> list[GraphQLError]:
    return validate(schema, document, rules, hide_suggestions=hide_suggestions)


class Validation(SchemaExtension):
    """Validates each document once per schema, rule set and audience (a cache, like
    strawberry's ``ValidationCache``), and adds what graphql-core leaves to the caller:

    - "Did you mean ...?" suggestions only for an authenticated caller of a server whose
      schema is open to introspection (elsewhere they would map the schema for anyone);
    - a document of several operations must say which to run (``operationName``), as the
      GraphQL specification requires, rather than running the first.
    """

    def __init__(self, introspection: bool) -> None:
        self.introspection = introspection

    def on_validate(self) -> Any:
        context = self.execution_context
        document = context.graphql_document
        if document is not None:
            caller = getattr(context.context, "principal", None)
            hide = not (self.introspection and caller is not None)
            errors = list(_validate(context.schema._schema, document, tuple(context.validation_rules), hide))
            operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
            # ``operation_name`` falls back to the first operation's name; what the client
            # sent is kept apart.
            if not errors and len(operations) > 1 and not context._provided_operation_name:
                errors.append(GraphQLError(
                    "the document holds several operations: say which one to run with operationName",
                    extensions={"code": "BAD_USER_INPUT", "field": "operationName"}))
            context.pre_execution_errors = errors
        yield
