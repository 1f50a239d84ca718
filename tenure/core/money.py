"""Money as people read it. Amounts are integers in the currency's minor unit; how many
digits that unit has comes from ISO 4217 (two for most, none for the yen, three for the
Kuwaiti dinar)."""

from __future__ import annotations

#: ISO 4217 currencies whose minor unit is not a hundredth.
_MINOR_DIGITS = {
    **dict.fromkeys(("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND",
                     "VUV", "XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    **dict.fromkeys(("CLF", "UYW"), 4),
}


def minor_digits(currency: str) -> int:
    """Digits after the decimal point of ``currency`` (an ISO 4217 code)."""
    return _MINOR_DIGITS.get(currency.upper(), 2)


def money_text(amount: int, currency: str) -> str:
    """``125000, "EUR"`` -> ``1250.00 EUR``; ``125000, "KWD"`` -> ``125.000 KWD``;
    ``4000, "JPY"`` -> ``4000 JPY`` (for messages and reasons people read)."""
    digits = minor_digits(currency)
    sign, value = ("-" if amount < 0 else ""), abs(amount)
    if not digits:
        return f"{sign}{value} {currency}"
    whole, minor = divmod(value, 10 ** digits)
    return f"{sign}{whole}.{minor:0{digits}d} {currency}"
