"""The codes of business errors: ``UserError.code`` as one enum a client can switch on.

Every code a service of the core or a built-in plugin raises is listed here; a test fails
when a service raises a code that is not. A partner plugin's own code shows as ``INVALID``
(its message still says why).
"""

from __future__ import annotations

from enum import Enum

import strawberry


@strawberry.enum(description="Why a business rule refused the input, for a client to branch on.")
class ErrorCode(Enum):
    ALREADY_ANSWERED = strawberry.enum_value(
        "already_answered", description="The survey link was used already: a survey is answered once.")
    ALREADY_REFUNDED = strawberry.enum_value("already_refunded", description="The order is refunded in full already.")
    CONFLICT = strawberry.enum_value(
        "conflict", description="The change clashes with the record's current state or another record.")
    DUPLICATE = strawberry.enum_value("duplicate", description="Another record has this value, which must be unique.")
    EMAIL_TAKEN = strawberry.enum_value(
        "email_taken", description="Another member or staff user has this email address.")
    EMPTY_FILTER = strawberry.enum_value(
        "empty_filter", description="The filter selects nothing; give at least one condition.")
    EXPIRED = strawberry.enum_value("expired", description="The key, token or link has expired.")
    FORBIDDEN = strawberry.enum_value(
        "forbidden", description="The caller may not act on this record (a link meant for someone else).")
    IDEMPOTENCY_KEY_REUSED = strawberry.enum_value(
        "idempotency_key_reused", description="The idempotency key was used before with a different request.")
    IDENTITY_TAKEN = strawberry.enum_value("identity_taken", description="Another customer holds this identity.")
    INACTIVE = strawberry.enum_value("inactive", description="The record is switched off (a survey, rule or reward).")
    INSUFFICIENT_POINTS = strawberry.enum_value(
        "insufficient_points", description="The points balance does not cover it.")
    INVALID = strawberry.enum_value(
        "invalid", description="The value is not allowed; the message says why. Also given for a plugin's own code.")
    INVALID_AMOUNT = strawberry.enum_value("invalid_amount", description="The amount of money is out of range.")
    INVALID_CURRENCY = strawberry.enum_value("invalid_currency", description="Not an ISO 4217 currency code.")
    INVALID_DATE = strawberry.enum_value("invalid_date", description="The date is not allowed here.")
    INVALID_DAYS = strawberry.enum_value("invalid_days", description="The number of days is out of range.")
    INVALID_DURATION = strawberry.enum_value(
        "invalid_duration", description="Not an ISO 8601 duration, or one out of range.")
    INVALID_EMAIL = strawberry.enum_value("invalid_email", description="Not an email address.")
    INVALID_GRACE = strawberry.enum_value("invalid_grace", description="The grace period is out of range.")
    INVALID_ID = strawberry.enum_value(
        "invalid_id", description="Not an id, or the global id of an object of another type.")
    INVALID_KIND = strawberry.enum_value("invalid_kind", description="The kind is not one of those allowed.")
    INVALID_LIMIT = strawberry.enum_value("invalid_limit", description="The limit is out of range.")
    INVALID_MONTHS = strawberry.enum_value("invalid_months", description="The number of months is out of range.")
    INVALID_PERCENT = strawberry.enum_value("invalid_percent", description="Not a percentage from 0 to 100.")
    INVALID_PHONE = strawberry.enum_value("invalid_phone", description="Not a phone number.")
    INVALID_POINTS = strawberry.enum_value("invalid_points", description="The number of points is out of range.")
    INVALID_QUANTITY = strawberry.enum_value("invalid_quantity", description="The quantity is out of range.")
    INVALID_RANGE = strawberry.enum_value("invalid_range", description="The range is empty, reversed or out of bounds.")
    INVALID_RANK = strawberry.enum_value("invalid_rank", description="The rank is taken or out of range.")
    INVALID_STATUS = strawberry.enum_value("invalid_status", description="The record's status does not allow this.")
    INVALID_STOCK = strawberry.enum_value("invalid_stock", description="The stock is out of range.")
    INVALID_TEMPLATE = strawberry.enum_value("invalid_template", description="The template does not render.")
    INVALID_TEXT = strawberry.enum_value(
        "invalid_text", description="The text holds a character no record may hold (NUL).")
    INVALID_THRESHOLD = strawberry.enum_value("invalid_threshold", description="The threshold is out of range.")
    INVALID_TIME = strawberry.enum_value("invalid_time", description="The time is out of range, or not a time of day.")
    INVALID_TOKEN = strawberry.enum_value("invalid_token", description="The token or link is not one Tenure gave out.")
    INVALID_TRIGGER = strawberry.enum_value("invalid_trigger", description="The trigger is not one of those available.")
    INVALID_URL = strawberry.enum_value("invalid_url", description="Not an http(s) URL Tenure may call.")
    INVALID_VALUE = strawberry.enum_value("invalid_value", description="The value is out of range.")
    INVALID_WEIGHT = strawberry.enum_value("invalid_weight", description="The weight is out of range.")
    INVALID_WINDOW = strawberry.enum_value("invalid_window", description="The time window is out of range.")
    LIMIT_REACHED = strawberry.enum_value("limit_reached", description="A per-customer or overall limit is reached.")
    NO_RULE = strawberry.enum_value("no_rule", description="No rule applies.")
    NOT_FOUND = strawberry.enum_value("not_found", description="No record has this id (or it was merged or erased).")
    NOT_PREVIEWABLE = strawberry.enum_value("not_previewable", description="This cannot be previewed.")
    OUT_OF_RANGE = strawberry.enum_value("out_of_range", description="The number is out of range.")
    OUT_OF_STOCK = strawberry.enum_value("out_of_stock", description="The reward has no stock left.")
    PLUGIN_OFF = strawberry.enum_value("plugin_off", description="A plugin this needs is switched off.")
    RANGE_TOO_LONG = strawberry.enum_value(
        "range_too_long", description="The range covers more than is allowed at once.")
    REQUIRED = strawberry.enum_value("required", description="The value must be given.")
    TAKEN = strawberry.enum_value("taken", description="The name or code is taken.")
    TOO_LONG = strawberry.enum_value("too_long", description="The text is too long.")
    TOO_MANY = strawberry.enum_value("too_many", description="Too many items in one request.")
    TOO_MUCH = strawberry.enum_value("too_much", description="The amount is more than is allowed.")
    UNKNOWN_DIMENSION = strawberry.enum_value("unknown_dimension", description="No such retention dimension.")
    UNKNOWN_RULE = strawberry.enum_value("unknown_rule", description="No such rule.")
    UNSUPPORTED_CURRENCY = strawberry.enum_value(
        "unsupported_currency", description="The currency is not the one Tenure keeps figures in.")
    WINDOW_TOO_SHORT = strawberry.enum_value("window_too_short", description="The time window is too short.")


def error_code(code: str) -> ErrorCode:
    """The enum value of a service's code; ``INVALID`` for one the enum does not list."""
    try:
        return ErrorCode(code)
    except ValueError:
        return ErrorCode.INVALID
