"""The pure normalisation behind supplier matching: one factory typed many ways is one key."""

from __future__ import annotations

import pytest

from wg_api.suppliers.matching import (
    is_valid_os_id,
    match_key,
    normalise_address,
    normalise_local_name,
    normalise_name,
)


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("Dongguan Sunrise Garment Co., Ltd.", "dongguan sunrise garment"),
        ("dongguan sunrise garment co ltd", "dongguan sunrise garment"),
        ("DONGGUAN  SUNRISE   GARMENT COMPANY LIMITED", "dongguan sunrise garment"),
        ("Dongguan Sunrise Garment Factory", "dongguan sunrise garment"),
        (
            "\uff24\uff4f\uff4e\uff47\uff47\uff55\uff41\uff4e Sunrise Garment Co.,Ltd",
            "dongguan sunrise garment",
        ),  # full width
        ("Công ty TNHH May Mặc Hòa Bình", "may mac hoa binh"),
        ("CONG TY TNHH MAY MAC HOA BINH", "may mac hoa binh"),
        ("Công ty Cổ phần Dệt Đồng Nai", "det dong nai"),
        ("东莞市朝阳制衣有限公司", "东莞市朝阳制衣"),
        ("东莞市朝阳制衣股份有限公司", "东莞市朝阳制衣"),
        ("苏州明光玩具厂", "苏州明光玩具"),
    ],
)
def test_names_typed_differently_normalise_alike(typed, expected):
    assert normalise_name(typed) == expected


def test_a_name_that_is_only_legal_words_is_not_emptied():
    assert normalise_name("The Co.") == "the co"
    assert normalise_name("有限公司") == "有限公司"


def test_different_factories_stay_different():
    assert normalise_name("Sunrise Garment") != normalise_name("Sunrise Garments")
    assert normalise_name("东莞市朝阳制衣有限公司") != normalise_name("东莞市旭日制衣有限公司")


@pytest.mark.parametrize(
    "typed",
    [
        "No. 18 Industrial Rd., Humen Town, Dongguan",
        "18 industrial road, humen town, dongguan",
        "18 Industrial Road Humen Town Dongguan",
        "NO.18 INDUSTRIAL RD HUMEN TOWN DONGGUAN",
    ],
)
def test_addresses_typed_differently_normalise_alike(typed):
    assert normalise_address(typed) == "18 industrial road humen town dongguan"


def test_vietnamese_addresses_lose_their_accents_only():
    assert normalise_address("Lô 5, KCN Tân Bình, TP. Hồ Chí Minh") == (
        "lo 5 kcn tan binh tp ho chi minh"
    )


def test_match_key_is_country_name_and_address():
    one = match_key("Dongguan Sunrise Garment Co., Ltd.", "No. 18 Industrial Rd., Humen Town", "CN")
    other = match_key("dongguan sunrise garment co ltd", "18 industrial road humen town", "cn")
    assert one == other == "CN|dongguan sunrise garment|18 industrial road humen town"
    assert match_key("Dongguan Sunrise Garment", "18 industrial road humen town", "VN") != one
    assert match_key("Dongguan Sunrise Garment", "19 industrial road humen town", "CN") != one


def test_local_names_keep_their_script_and_lose_only_the_suffix():
    assert normalise_local_name(" 东莞市朝阳制衣有限公司 ") == "东莞市朝阳制衣"
    assert normalise_local_name("Công ty May") == "Công ty May"


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("CN2019123ABC4DE", True),
        ("VN20240010000AB", True),
        ("cn2019123abc4de", False),
        ("CN2019123ABC4D", False),
        ("CN2019123ABC4DEF", False),
        ("C12019123ABC4DE", False),
        ("CN20X9123ABC4DE", False),
        ("CN2019123ABC-DE", False),
        ("", False),
    ],
)
def test_os_id_format(value, valid):
    assert is_valid_os_id(value) is valid
