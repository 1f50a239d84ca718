"""Checks on input that every service shares; each failure names the field."""

from __future__ import annotations

import re
from datetime import datetime

from tenure.core.errors import UserError

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# ISO 4217 codes in circulation; a code outside this list is a typo, not a currency.
ISO_4217 = frozenset((
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BGN", "BHD", "BIF",
    "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF", "CHF", "CLP", "CNY", "COP", "CRC",
    "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS",
    "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD",
    "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL",
    "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MYR", "MZN", "NAD",
    "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD",
    "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SVC", "SYP",
    "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "UYU", "UZS", "VES",
    "VND", "VUV", "WST", "XAF", "XCD", "XOF", "XPF", "YER", "ZAR", "ZMW", "ZWL"
))
MAX_MINOR_UNITS = 10**13


def text(value: str | None, field: str, *, max_length: int, required: bool = True) -> str:
    value = (value or "").strip()
    if required and not value:
        raise UserError("must not be empty", field, "required")
    if len(value) > max_length:
        raise UserError(f"must be at most {max_length} characters (got {len(value)})", field, "too_long")
    return value


def email(value: str, field: str = "emails") -> str:
    value = value.strip().lower()
    if len(value) > 320 or not EMAIL.match(value):
        raise UserError(f"{value!r} is not an email address", field, "invalid_email")
    return value


def phone(value: str, field: str = "phones") -> str:
    """Normalise to ``+`` and digits; 7 to 15 digits as E.164 allows."""
    stripped = re.sub(r"[\s().\-]", "", value.strip())
    digits = stripped[1:] if stripped.startswith("+") else stripped
    if not digits.isdigit() or not 7 <= len(digits) <= 15:
        raise UserError(f"{value!r} is not a phone number (7 to 15 digits)", field, "invalid_phone")
    return ("+" if stripped.startswith("+") else "") + digits


def currency(value: str, accepted: str, field: str = "currency") -> str:
    code = value.strip().upper()
    if code not in ISO_4217:
        raise UserError(f"{value!r} is not an ISO 4217 currency code", field, "invalid_currency")
    if code != accepted:
        raise UserError(
            f"this server records amounts in {accepted} (TENURE_CURRENCY), not {code}",
            field,
            "unsupported_currency",
        )
    return code


def amount(value: int, field: str, *, positive: bool = False) -> int:
    if value < 0 or (positive and value == 0):
        raise UserError(
            "must be more than zero" if positive else "must not be negative", field, "invalid_amount"
        )
    if value > MAX_MINOR_UNITS:
        raise UserError(f"must be at most {MAX_MINOR_UNITS} minor units", field, "invalid_amount")
    return value


def aware(value: datetime, field: str) -> datetime:
    if value.tzinfo is None:
        raise UserError("needs a timezone (e.g. 2026-01-31T09:00:00Z)", field, "invalid_time")
    return value


def key(value: str | None, field: str) -> str | None:
    if value is None:
        return None
    return text(value, field, max_length=200)
