"""A complexity budget that rejects, not only estimates: each field costs 1, and a list
field costs its page size (``first``, or the default) times what it selects."""

from __future__ import annotations

from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
)
from strawberry.extensions import SchemaExtension

LIST_FIELDS_DEFAULT = 10


class ComplexityLimiter(SchemaExtension):
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
                        self.execution_context.pre_execution_errors = [GraphQLError(
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
                multiplier = first if first is not None else (1 if selection.selection_set is None else 1)
                total += 1 + max(multiplier, 1) * inner
            elif isinstance(selection, InlineFragmentNode):
                total += self._cost(selection.selection_set, fragments, variables, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name in seen or name not in fragments:
                    continue  # circular spreads are refused by validation itself
                total += self._cost(fragments[name].selection_set, fragments, variables, seen | {name})
        return total
