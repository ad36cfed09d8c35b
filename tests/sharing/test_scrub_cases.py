"""The cases of issue 9 one by one, the report of what was removed, normalisation, the read-time
redaction of member names with their variants, and the word list."""

from __future__ import annotations

import pytest

from wg_api.sharing.scrub import (
    KINDS,
    ScrubTerms,
    names_in,
    organisation_terms,
    redact_organisations,
    scrub,
    scrub_report,
)
from wg_api.sharing.words import distinctive_words, is_common_word

MEMBERS = ScrubTerms(
    organisations=("Kestrel Apparel Ltd", "kestrel-apparel", "KAL", "凯斯特服装", "Kestrel Kids"),
    people=("Chen Meiling",),
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Kestrel Apparel audit team", "[redacted:organisation] audit team"),
        ("Kestrel Apparel Limited agreed", "[redacted:organisation] agreed"),
        ("Kestrel Apparel Co., Ltd. agreed", "[redacted:organisation] agreed"),
        (
            "KESTREL-APPAREL and kestrel_apparel",
            "[redacted:organisation] and [redacted:organisation]",
        ),
        ("Kest\u200brel Apparel staff", "[redacted:organisation] staff"),
        ("the Kestrel buyer", "the [redacted:organisation] buyer"),
        ("凯斯特服装有限公司的订单", "[redacted:organisation]的订单"),
        ("凯斯特的验厂员", "[redacted:organisation]的验厂员"),
        (
            "童工王小明\uff0c14岁\uff0c湖南邵阳人",
            "童工[redacted:person]\uff0c[redacted:age]\uff0c湖南邵阳人",
        ),
        ("worker Maria Lopez said", "worker [redacted:person] said"),
        ("WeChat: lihua_88", "WeChat: [redacted:messaging_id]"),
        ("wxid_8k2n5p0q1z", "[redacted:messaging_id]"),
        ("QQ 284719365", "QQ [redacted:messaging_id]"),
        ("passport E12345678", "passport [redacted:id_number]"),
        ("HKID A123456(3)", "HKID [redacted:id_number]"),
        ("CCCD 001203004567", "CCCD [redacted:id_number]"),
        ("write to li.wei at kestrel dot com", "write to [redacted:email]"),
        ("write to li.wei\uff20kestrel\uff0ecom", "write to [redacted:email]"),
        ("write to hr[at]factory[dot]cn", "write to [redacted:email]"),
        ("call 138  1234  5678", "call [redacted:phone]"),
        ("call 0769/8888/1234", "call [redacted:phone]"),
        ("born on 12 March 2011", "born on [redacted:date]"),
        (
            "on March 12, 2011 and 2011年3月12日 and 3月12日",
            "on [redacted:date] and [redacted:date] and [redacted:date]",
        ),
        ("a 14-year-old boy aged 14", "a [redacted:age] boy aged [redacted:age]"),
        ("Meiling Chen reviewed it", "[redacted:person] reviewed it"),
    ],
)
def test_what_a_member_could_write_before(text, expected):
    assert scrub(text, MEMBERS) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Overtime reached 60 hours a week; 2 workers were hurt; Article 38 was breached.",
        "Workers got 5 days of leave after 3 years of service in 2011, reported in 2026-Q3.",
        "Workers under the age of 16 were not found; the minimum age is 15; aged 16 to 17.",
        "The factory in Dongguan, Guangdong, supplies Sunrise Garment Factory in Gazipur.",
        "东莞市长安镇的工厂\uff0c宿舍每间住12人\uff0c每周工作60小时。",
        "Nhà máy ở Bình Dương có 1.200 công nhân.",
    ],
)
def test_places_numbers_and_legal_terms_stay(text):
    assert scrub(text, MEMBERS) == text


def test_the_report_names_the_kinds_removed_in_order_and_never_the_text():
    text, kinds = scrub_report("Mr Long (mobile +86 138 1234 5678) wrote to a@b.cn on 3 May 2024")
    expected = "Mr [redacted:person] (mobile [redacted:phone]) wrote to [redacted:email]"
    assert text == expected + " on [redacted:date]"
    assert kinds == ["person", "phone", "email", "date"]
    assert set(kinds) <= set(KINDS)
    assert scrub_report("nothing here", MEMBERS) == ("nothing here", [])


def test_look_alike_characters_hide_nothing_and_chinese_punctuation_stays():
    kestrel = "".join(chr(ord(ch) + 0xFEE0) for ch in "KESTREL")  # full-width letters
    mobile = "".join(chr(ord(ch) + 0xFEE0) for ch in "13812345678")
    text = f"{kestrel}\u3000Apparel\uff0c{mobile}\u3002"
    assert scrub(text, MEMBERS) == "[redacted:organisation]\uff0c[redacted:phone]\u3002"
    assert scrub("soft\u00adhyphen and zero\u200bwidth") == "softhyphen and zerowidth"


def test_read_time_redaction_finds_variants_and_distinctive_words():
    terms = organisation_terms(("Kestrel Apparel Ltd", "凯斯特服装"))
    texts = ["Kestrel Apparel Limited and Kestrel", "凯斯特的订单", "nothing to see"]
    page = names_in(texts, terms)
    assert page is not None
    assert [redact_organisations(t, page) for t in texts] == [
        "[redacted:organisation] and [redacted:organisation]",
        "[redacted:organisation]的订单",
        "nothing to see",
    ]
    assert names_in(["nothing to see"], terms) is None


def test_what_a_text_was_found_to_name_is_remembered_per_set_of_names():
    """A page read again is answered from memory, and only for the same members: a text that
    named nobody while a brand was not yet a member names it once it has joined."""
    before = organisation_terms(("Kestrel Apparel Ltd",))
    after = organisation_terms(("Kestrel Apparel Ltd", "Osprey Footwear"))
    texts = ["Osprey Footwear asked for the visit", "nothing to see"]
    assert names_in(texts, before) is None
    assert names_in(texts, before) is None  # remembered
    page = names_in(texts, after)
    assert page is not None
    assert [redact_organisations(t, page) for t in texts] == [
        "[redacted:organisation] asked for the visit",
        "nothing to see",
    ]
    again = names_in(list(reversed(texts)), after)
    assert again is not None
    assert again.organisations == page.organisations
    # A text seen alone is remembered alone: pieces of a name spread over two texts of a page
    # name nobody in either.
    split = names_in(["Osprey visited", "the Footwear line"], after)
    assert split is None or "Osprey Footwear" not in split.organisations


def test_a_page_read_again_is_answered_at_once_and_a_changed_text_is_searched():
    terms = organisation_terms(("Kestrel Apparel Ltd", "Osprey Footwear"))
    texts = ["the audit found two young workers", "nothing to see"]
    assert names_in(texts, terms) is None
    assert names_in(texts, terms) is None  # the same page, from memory
    # The contributor refreshed one record: the page's text changed and names a member now.
    changed = ["the audit found two young workers at Osprey Footwear", "nothing to see"]
    page = names_in(changed, terms)
    assert page is not None
    assert "Osprey Footwear" in page.organisations
    assert names_in(changed, terms) is page
    # Another group's names on the same page: searched for those names, not taken from memory.
    other = organisation_terms(("Kestrel Apparel Ltd",))
    assert names_in(changed, other) is None


def test_the_word_list():
    assert is_common_word("Apparel")
    assert is_common_word("Workers")
    assert is_common_word("工厂")
    assert is_common_word("Ltd.")
    assert not is_common_word("Kestrel")
    assert distinctive_words("Kestrel Apparel Ltd") == ["Kestrel"]
    assert distinctive_words("东莞凯斯特服装有限公司") == ["凯斯特"]
    assert distinctive_words("Blue Star Garments") == []


def test_a_number_in_a_members_name_is_not_redacted_on_its_own():
    terms = ScrubTerms(organisations=("Acme 2024 Trading Ltd",))
    assert distinctive_words("Acme 2024 Trading Ltd") == ["Acme"]
    assert scrub("In 2024 Acme 2024 Trading Limited left; Acme too.", terms) == (
        "In 2024 [redacted:organisation] left; [redacted:organisation] too."
    )
