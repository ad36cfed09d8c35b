"""The pure money functions: exponents, rates, conversion, and the cost split's properties."""

from __future__ import annotations

import pathlib
import random
import uuid
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wg_api.funding import money

tenant_ids = st.uuids(version=4)
weights = st.integers(min_value=1, max_value=1000)
funders = st.dictionaries(tenant_ids, weights, min_size=1, max_size=12)
totals = st.integers(min_value=0, max_value=money.AMOUNT_LIMIT - 1)


@pytest.mark.parametrize(("code", "digits"), [("JPY", 0), ("HKD", 2), ("KWD", 3), ("SEK", 2)])
def test_exponents_are_the_iso_tables(code, digits):
    assert money.exponent(code) == digits


@pytest.mark.parametrize("code", ["XXX", "XAU", "XTS", "XDR", "BOV", "CLF", "USN", "hkd", "ABC"])
def test_funds_metals_and_unknown_codes_are_not_currencies(code):
    assert not money.is_currency(code)


@pytest.mark.parametrize("text", ["7.8", "0.1283", "1", "0.000000000001", "123456789012", "7.80"])
def test_good_rates(text):
    assert money.rate_error(text) is None
    assert money.parse_rate(text) == Decimal(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "0",
        "0.0",
        "-1",
        "+1",
        "1e3",
        "1E-3",
        ".5",
        "5.",
        "07.8",
        "NaN",
        "Infinity",
        "1 000",
        "1,5",
        "1234567890123",
        "1.23456789012 3",
        "0.1234567890123",
    ],
)
def test_bad_rates(text):
    assert money.rate_error(text) is not None
    with pytest.raises(ValueError, match="must"):
        money.parse_rate(text)


def test_conversion_rounds_half_to_even_in_the_target_exponent():
    # 1.25 JPY at 0.5 HKD each ... exactly representable cases around the half.
    assert money.convert(1, "USD", Decimal("0.5"), "USD") == 0  # 0.5 -> 0
    assert money.convert(3, "USD", Decimal("0.5"), "USD") == 2  # 1.5 -> 2
    assert money.convert(5, "USD", Decimal("0.5"), "USD") == 2  # 2.5 -> 2
    assert money.convert(100_000, "USD", Decimal("7.8123"), "HKD") == 781_230
    assert money.convert(125, "JPY", Decimal("0.05"), "HKD") == 625  # JPY 125 -> HK$6.25
    assert money.convert(1_000, "HKD", Decimal("0.128"), "KWD") == 1_280  # HK$10 -> KWD 1.280
    assert money.convert(999_999_999_999_999, "KWD", Decimal("999999999999"), "JPY") == int(
        Decimal(999_999_999_999_999) * Decimal("999999999999") / 1000
        + Decimal("0.5")  # .999 fraction: exact, no float anywhere
    )


@given(st.integers(min_value=1, max_value=money.AMOUNT_LIMIT - 1), st.integers(1, 10**12 - 1))
def test_conversion_is_exact_integer_arithmetic(amount, rate_units):
    rate = Decimal(rate_units).scaleb(-6)
    got = money.convert(amount, "USD", rate, "EUR")
    numerator = amount * rate_units
    floor, rest = divmod(numerator, 10**6)
    expected = floor + (1 if rest * 2 > 10**6 or (rest * 2 == 10**6 and floor % 2) else 0)
    assert got == expected


@given(totals, funders)
def test_split_sums_exactly_and_is_never_negative(total, weighted):
    shares = money.split(total, list(weighted.items()))
    assert sum(shares.values()) == total
    assert all(share >= 0 for share in shares.values())
    assert set(shares) == set(weighted)


@given(totals, funders, st.randoms(use_true_random=False))
def test_split_ignores_the_order_funders_come_in(total, weighted, rng):
    listed = list(weighted.items())
    shuffled = listed[:]
    rng.shuffle(shuffled)
    assert money.split(total, listed) == money.split(total, shuffled)


@given(totals, funders, st.data())
def test_split_is_monotone_in_the_weights(total, weighted, data):
    key = data.draw(st.sampled_from(sorted(weighted)))
    more = data.draw(st.integers(min_value=1, max_value=1000))
    before = money.split(total, list(weighted.items()))
    after = money.split(total, list({**weighted, key: weighted[key] + more}.items()))
    assert after[key] >= before[key]


@given(totals, funders)
def test_each_share_is_within_one_unit_of_its_quota(total, weighted):
    weight_sum = sum(weighted.values())
    for key, share in money.split(total, list(weighted.items())).items():
        quota_floor, rest = divmod(total * weighted[key], weight_sum)
        assert quota_floor <= share <= quota_floor + (1 if rest else 0)


def test_ties_go_to_the_lower_tenant_id():
    low, mid, high = sorted(uuid.uuid4() for _ in range(3))
    order = [(high, 1), (low, 1), (mid, 1)]
    assert money.split(100, order) == {low: 34, mid: 33, high: 33}
    assert money.split(101, order) == {low: 34, mid: 34, high: 33}
    random.shuffle(order)
    assert money.split(2, order) == {low: 1, mid: 1, high: 0}


def test_split_refuses_bad_weights():
    with pytest.raises(ValueError, match="positive"):
        money.split(10, [("a", 0)])
    with pytest.raises(ValueError, match="positive"):
        money.split(10, [])
    with pytest.raises(ValueError, match="once"):
        money.split(10, [("a", 1), ("a", 2)])


def test_no_float_anywhere_in_the_funding_package():
    package = pathlib.Path(money.__file__).parent
    offenders = [
        f"{path.name}:{number}"
        for path in sorted(package.rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if "float" in line
    ]
    assert offenders == []
