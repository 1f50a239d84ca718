"""How GraphQL errors are logged. A client's mistake (a wrong key, an invalid document, a
limit exceeded, bad input) is the client's to fix: one INFO line, or WARNING for a refused
key or role, and no traceback. A database out of reach is one WARNING line saying why. Only
what nobody expected, a bug, is an ERROR, with its traceback once; every line carries the
request id (see core/logging.py)."""

from __future__ import annotations

import logging
from typing import Any

from graphql import GraphQLError

from tenure.core.startup import database_problem
from tenure.schema.availability import is_unavailable

log = logging.getLogger("tenure.api")
#: Codes of errors about who is calling: worth a WARNING (a leaked or revoked key shows up).
ACCESS_CODES = ("UNAUTHENTICATED", "FORBIDDEN")


def unexpected(error: GraphQLError) -> bool:
    """Raised by a resolver without being meant for the caller: a bug."""
    original = error.original_error
    return original is not None and not isinstance(original, GraphQLError) and error.path is not None


def log_errors(errors: list[GraphQLError], execution_context: Any = None) -> None:
    operation = getattr(execution_context, "operation_name", None) or "-"
    for error in errors:
        code = (error.extensions or {}).get("code") or "GRAPHQL_VALIDATION_FAILED"
        where = ".".join(str(p) for p in error.path or ())
        fields = {"code": code, "operation": operation, "field_path": where or None}
        original = error.original_error
        if code == "UNAVAILABLE" or (original is not None and is_unavailable(original)):
            runtime = getattr(getattr(execution_context, "context", None), "runtime", None)
            url = runtime.db.url if runtime is not None else ""
            problem = database_problem(original, url) if original is not None else None
            log.warning("UNAVAILABLE: %s", problem.message if problem else error.message,
                        extra={**fields, "code": "UNAVAILABLE", "repeat_key": "graphql-unavailable"})
        elif unexpected(error):
            log.error("unexpected error in %s (operation %s): %s", where, operation, error.message,
                      exc_info=(type(original), original, original.__traceback__) if original else None,
                      extra=fields)
        else:
            log.log(logging.WARNING if code in ACCESS_CODES else logging.INFO, "%s: %s%s", code, error.message,
                    f" (at {where})" if where else "", extra=fields)
