"""GraphQL over HTTP: which media type a client gets, and what status a failed request
answers, after the GraphQL-over-HTTP specification.

A client that accepts ``application/graphql-response+json`` (and prefers it at least as much
as ``application/json``) gets that media type, and with it HTTP status codes that say what
went wrong: a request that could not start (a document that does not parse or validate,
variables that do not fit) answers 400 with ``errors`` and no ``data``; a request that ran
answers 200 even when some fields failed. Everyone else, including a client that sends no
``Accept`` or ``*/*``, gets ``application/json`` and 200, as legacy clients expect.
"""

from __future__ import annotations

from typing import Any

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"


def _quality(parameters: list[str]) -> float:
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "q":
            try:
                return max(0.0, min(1.0, float(value.strip())))
            except ValueError:
                return 0.0
    return 1.0


def negotiate(accept: str | None) -> str:
    """The media type to answer with, given the request's ``Accept`` header."""
    best: dict[str, float] = {}
    for item in (accept or "").split(","):
        media_type, *parameters = item.split(";")
        media_type = media_type.strip().lower()
        if media_type in (GRAPHQL_RESPONSE, JSON):
            best[media_type] = max(best.get(media_type, 0.0), _quality(parameters))
    preferred = best.get(GRAPHQL_RESPONSE, 0.0)
    if preferred > 0 and preferred >= best.get(JSON, 0.0):
        return GRAPHQL_RESPONSE
    return JSON


def is_request_error(result: Any) -> bool:
    """Whether an execution result is a request error: it never ran (no ``data``), and
    none of its errors belongs to a field (parse, validation and variable errors have no
    path; a non-null field that failed and nulled the whole answer does)."""
    errors = getattr(result, "errors", None) or []
    return bool(errors) and getattr(result, "data", None) is None and all(
        not getattr(error, "path", None) for error in errors)


def error_body(message: str) -> dict[str, Any]:
    """A request refused before GraphQL saw it (bad JSON, no query, wrong method), in the
    shape a ``application/graphql-response+json`` client reads."""
    return {"errors": [{"message": message}]}
