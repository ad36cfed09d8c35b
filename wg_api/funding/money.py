"""Money in whole minor units: ISO 4217 exponents, decimal rates, exact splits.

Exponents come from the `iso4217` package (the ISO table itself, not CLDR's display digits, which
differ for some currencies). Funds codes, metals and other codes without a defined exponent are
not money an initiative can be funded in, so they are refused like unknown codes.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Sequence
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from functools import lru_cache
from typing import TypeVar

import iso4217

K = TypeVar("K", bound=Hashable)

# Every amount a client sends is positive and below this (the contract's bound).
AMOUNT_LIMIT = 10**15
RATE_DIGITS = 12
_RATE = re.compile(r"^(0|[1-9][0-9]*)(\.[0-9]+)?$")


@lru_cache(maxsize=1)
def _exponents() -> dict[str, int]:
    funds = {
        entry.findtext("Ccy")
        for entry in iso4217.raw_xml.iter("CcyNtry")
        if (name := entry.find("CcyNm")) is not None and name.get("IsFund") == "true"
    }
    return {
        currency.code: currency.exponent
        for currency in iso4217.Currency
        if currency.exponent is not None and currency.code not in funds
    }


def is_currency(code: str) -> bool:
    """An ISO 4217 currency with a defined exponent that is not a funds code."""
    return code in _exponents()


def exponent(code: str) -> int:
    """The number of minor-unit digits of `code` (JPY 0, HKD 2, KWD 3); KeyError if unknown."""
    return _exponents()[code]


def amount_error(amount: int) -> str | None:
    if amount <= 0:
        return "must be positive"
    if amount >= AMOUNT_LIMIT:
        return "must be below 10^15 minor units"
    return None


def rate_error(text: str) -> str | None:
    """Why `text` is not an acceptable rate: a positive plain decimal of at most 12 digits."""
    match = _RATE.match(text)
    if match is None:
        return 'must be a positive decimal string such as "7.8123"'
    digits = (match.group(1) + (match.group(2) or "")[1:]).lstrip("0")
    if not digits.strip("0"):
        return "must be positive"
    if len(digits) > RATE_DIGITS:
        return f"must have at most {RATE_DIGITS} significant digits"
    return None


def parse_rate(text: str) -> Decimal:
    if (error := rate_error(text)) is not None:
        raise ValueError(error)
    return Decimal(text)


def round_half_even(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def convert(amount: int, currency: str, rate: Decimal, into: str) -> int:
    """`amount` minor units of `currency` times `rate` (units of `into` per unit of `currency`),
    in minor units of `into`, rounded half to even; exact (the context holds every digit)."""
    with localcontext() as context:
        context.prec = 60
        scaled = (Decimal(amount) * rate).scaleb(exponent(into) - exponent(currency))
        return round_half_even(scaled)


def split(total: int, weights: Sequence[tuple[K, int]]) -> dict[K, int]:
    """`total` shared in proportion to integer weights by largest remainder: every funder gets the
    floor of its quota, and the units left go one each to the largest remainders, ties to the
    lower key. The shares add up to `total` exactly and never depend on the order given."""
    if total < 0:
        raise ValueError("total must not be negative")
    if not weights or any(weight < 1 for _, weight in weights):
        raise ValueError("weights must be positive integers")
    keys = [key for key, _ in weights]
    if len(set(keys)) != len(keys):
        raise ValueError("each funder appears once")
    weight_sum = sum(weight for _, weight in weights)
    shares = {key: total * weight // weight_sum for key, weight in weights}
    remainders = {key: total * weight % weight_sum for key, weight in weights}
    left = total - sum(shares.values())
    # Sort by remainder descending, then key ascending: `sorted` over (-remainder, key).
    for key in sorted(keys, key=lambda k: (-remainders[k], k))[:left]:
        shares[key] += 1
    return shares
