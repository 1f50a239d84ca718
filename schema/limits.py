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
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    parse,
)
from strawberry.extensions import SchemaExtension

LIST_FIELDS_DEFAULT = 10


class ComplexityLimiter(SchemaExtension):
    """Refuses a query over the budget before it runs; list it after ``ValidationCache``."""

    def __init__(self, budget: int, page_cap: int) -> None:
        self.budget = budget
        self.page_cap = page_cap

    def on_validate(self) -> Any:
        document = self.execution_context.graphql_document
        if document is not None:
            variables = self.execution_context.variables or {}
            fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
            for definition in document.definitions:
                if isinstance(definition, OperationDefinitionNode):
                    cost = self._cost(definition.selection_set, fragments, variables, set())
                    if cost > self.budget:
                        # Runs after validation (ValidationCache sets the errors it found),
                        # so it adds to them rather than replacing them.
                        self.execution_context.pre_execution_errors = [*(self.execution_context.pre_execution_errors
                                                                        or []), GraphQLError(
                            f"the query's complexity is {cost}, over the budget of {self.budget} "
                            "(TENURE_MAX_COMPLEXITY): ask for fewer items or fewer fields",
                            extensions={"code": "LIMIT_EXCEEDED", "limit": "complexity"},
                        )]
                        break
        yield

    def _first(self, node: FieldNode, variables: dict[str, Any]) -> int | None:
        for argument in node.arguments or ():
            if argument.name.value in ("first", "last"):
                value = argument.value
                if isinstance(value, IntValueNode):
                    return min(int(value.value), self.page_cap)
                if isinstance(value, VariableNode):
                    found = variables.get(value.name.value)
                    return min(int(found), self.page_cap) if isinstance(found, int) else self.page_cap
        return None

    def _cost(self, selection_set: SelectionSetNode | None, fragments: dict[str, FragmentDefinitionNode],
              variables: dict[str, Any], seen: set[str]) -> int:
        if selection_set is None:
            return 0
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                inner = self._cost(selection.selection_set, fragments, variables, seen)
                first = self._first(selection, variables)
                multiplier = first if first is not None else 1
                total += 1 + max(multiplier, 1) * inner
            elif isinstance(selection, InlineFragmentNode):
                total += self._cost(selection.selection_set, fragments, variables, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name in seen or name not in fragments:
                    continue  # circular spreads are refused by validation itself
                total += self._cost(fragments[name].selection_set, fragments, variables, seen | {name})
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
