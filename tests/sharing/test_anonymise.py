"""Unit tests of the pure parts of the pipeline: quarters, head-count bands, the resident identity
number check character, and scrubbing cases found by the red team."""

from __future__ import annotations

from datetime import date

import pytest

from wg_api.sharing.anonymise import quarter, workers_band
from wg_api.sharing.scrub import ScrubTerms, is_resident_id, resident_id_check, scrub


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 1, 1), "2026-Q1"),
        (date(2026, 3, 31), "2026-Q1"),
        (date(2026, 4, 1), "2026-Q2"),
        (date(2026, 6, 30), "2026-Q2"),
        (date(2026, 7, 1), "2026-Q3"),
        (date(2026, 9, 30), "2026-Q3"),
        (date(2026, 10, 1), "2026-Q4"),
        (date(2025, 12, 31), "2025-Q4"),
        (date(2024, 2, 29), "2024-Q1"),
    ],
)
def test_quarter(day, expected):
    assert quarter(day) == expected


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        (None, None),
        (0, "0"),
        (1, "1-10"),
        (10, "1-10"),
        (11, "11-50"),
        (50, "11-50"),
        (51, "51-200"),
        (200, "51-200"),
        (201, "201-1000"),
        (1000, "201-1000"),
        (1001, "1001+"),
        (1_000_000, "1001+"),
    ],
)
def test_workers_band(count, expected):
    assert workers_band(count) == expected


def test_workers_band_refuses_a_negative_count():
    with pytest.raises(ValueError, match="negative"):
        workers_band(-1)


@pytest.mark.parametrize(
    ("first17", "check"),
    [
        # GB 11643-1999: the check is sum(a_i * 2^(17-i)) mod 11, looked up in "10X98765432".
        ("11010519491231002", "X"),
        ("44030519900307241", "5"),
        ("32010619850815203", "5"),
        ("44190019920214001", "3"),
        ("00000000000000000", "1"),
    ],
)
def test_resident_id_check(first17, check):
    assert resident_id_check(first17) == check
    assert is_resident_id(first17 + check)
    assert is_resident_id(first17 + check.lower())
    wrong = "0" if check != "0" else "1"
    assert not is_resident_id(first17 + wrong)


def test_an_eighteen_digit_run_with_a_wrong_check_character_is_still_redacted_as_a_number():
    assert scrub("Ref 440305199003072410 noted") == "Ref [redacted:number] noted"
    assert scrub("ID 440305199003072415 noted") == "ID [redacted:id_number] noted"


def test_a_slug_with_digits_goes_whole():
    terms = ScrubTerms(organisations=("Acme Trading", "acme-20240501"))
    assert (
        scrub("Audited by acme-20240501 staff", terms) == "Audited by [redacted:organisation] staff"
    )


def test_an_address_inside_an_email_is_not_taken_for_a_name():
    terms = ScrubTerms(organisations=("kestrel",), people=("Li Wei",))
    assert scrub("Li Wei <li.wei@kestrel.cn>", terms) == ("[redacted:person] <[redacted:email]>")


def test_a_url_leaves_the_sentence_around_it():
    assert scrub("See https://audit.example.com/r/7, then (www.portal.org/x).") == (
        "See [redacted:url], then ([redacted:url])."
    )


def test_bare_domains_need_a_known_top_level_domain():
    assert scrub("Reports on kestrel-apparel.co.uk and factory.de/x") == (
        "Reports on [redacted:url] and [redacted:url]"
    )
    assert scrub("No.18 Industrial Rd., e.g. Block 3.") == "No.18 Industrial Rd., e.g. Block 3."
