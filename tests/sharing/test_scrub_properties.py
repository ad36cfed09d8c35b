"""Property tests of the scrubber: generated identifiers embedded in random text never survive
`scrub`, and text without any identifier comes back unchanged. Identifiers are built here, the
resident identity numbers with their ISO 7064 MOD 11-2 check character computed independently.
"""

from __future__ import annotations

import importlib
import re
from datetime import date

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from wg_api.sharing.scrub import (
    ScrubTerms,
    _cut,
    _fold,
    _folded_view,
    _view,
    _view_text,
    names_in,
    redact_organisations,
    scrub,
    tag,
)

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DIGIT = "0123456789"
# Neutral words never contain j, q, x or z; generated names always do, so they cannot collide.
NEUTRAL_LETTERS = "abcdefghiklmnoprstuvwyABCDEFGHIKLMNOPRSTUVWY"
NAME_MARKS = "jqxzJQXZ"
# Chinese text is words: random characters are not (any character after a surname reads as a
# given name), so neutral Chinese is made of words of audits.
NEUTRAL_CJK_WORDS = [
    "工厂",
    "车间",
    "员工",
    "加班",
    "培训",
    "安全",
    "检查",
    "宿舍",
    "食堂",
    "工资",
    "合同",
    "记录",
    "消防",
    "通道",
    "设备",
    "审核",
    "整改",
    "社保",
    "休息",
    "工时",
    "厂房",
    "仓库",
    "机器",
    "防护",
    "口罩",
    "手套",
    "计件",
    "夜班",
    "时间",
    "每周",
    "发现",
    "没有",
    "提供",
]
neutral_cjk = st.lists(st.sampled_from(NEUTRAL_CJK_WORDS), max_size=4).map("".join)
NAME_CJK = "华美盛泰宏达鑫隆"


def digits(n: int) -> st.SearchStrategy[str]:
    return st.text(DIGIT, min_size=n, max_size=n)


def check_character(first17: str) -> str:
    weights = [2 ** (17 - i) % 11 for i in range(17)]  # 7, 9, 10, 5, 8, 4, 2, 1, 6, 3, ...
    return "10X98765432"[sum(int(d) * w for d, w in zip(first17, weights, strict=True)) % 11]


@st.composite
def chinese_mobile(draw: st.DrawFn) -> str:
    number = "1" + draw(st.sampled_from("3456789")) + draw(digits(9))
    a, b, c = number[:3], number[3:7], number[7:]
    return draw(
        st.sampled_from(
            [
                number,
                f"{a} {b} {c}",
                f"{a}-{b}-{c}",
                f"+86 {a} {b} {c}",
                f"+86{number}",
                f"+86-{a}-{b}-{c}",
                f"0086 {number}",
                f"0086-{number}",
                f"+86 {number}",
            ]
        )
    )


@st.composite
def chinese_landline(draw: st.DrawFn) -> str:
    area = draw(
        st.one_of(
            st.sampled_from(["10", "20", "21", "22", "23", "24", "25", "27", "28", "29"]),
            st.sampled_from("3456789").flatmap(lambda first: digits(2).map(lambda r: first + r)),
        )
    )
    local = draw(st.one_of(digits(8), digits(7))).lstrip("0").rjust(7, "5")
    head, tail = local[:-4], local[-4:]
    return draw(
        st.sampled_from(
            [
                f"0{area}-{local}",
                f"0{area}-{head} {tail}",
                f"(0{area}) {local}",
                f"(0{area}) {head}-{tail}",
                f"0{area} {local}",
                f"+86 {area} {head} {tail}",
            ]
        )
    )


@st.composite
def international(draw: st.DrawFn) -> str:
    country = draw(st.sampled_from(["1", "44", "33", "49", "852", "853", "84", "855", "65", "91"]))
    national = draw(st.text(DIGIT, min_size=7, max_size=15 - len(country)))
    national = draw(st.sampled_from("123456789")) + national[1:]
    cuts = sorted(draw(st.sets(st.integers(1, len(national) - 1), max_size=3)))
    parts = [national[i:j] for i, j in zip([0, *cuts], [*cuts, len(national)], strict=True)]
    separator = draw(st.sampled_from([" ", "-", ".", ""]))
    return f"+{country} " + separator.join(parts)


@st.composite
def resident_id(draw: st.DrawFn) -> str:
    region = draw(st.sampled_from("12345678")) + draw(digits(5))
    born = draw(st.dates(min_value=date(1930, 1, 1), max_value=date(2015, 12, 31)))
    sequence = draw(digits(3))
    if draw(st.booleans()):
        first17 = f"{region}{born:%Y%m%d}{sequence}"
        check = check_character(first17)
        return first17 + (check.lower() if draw(st.booleans()) else check)
    return f"{region}{born:%y%m%d}{sequence}"  # the old 15-digit form


@st.composite
def long_digits(draw: st.DrawFn) -> str:
    run = draw(st.sampled_from("123456789")) + draw(st.text(DIGIT, min_size=7, max_size=24))
    if draw(st.booleans()):
        return run
    separator = draw(st.sampled_from([" ", "-", "."]))
    return separator.join(run[i : i + 4] for i in range(0, len(run), 4))


label = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12)
hyphenated = st.builds(lambda a, b: f"{a}-{b}" if b else a, label, st.one_of(st.just(""), label))


@st.composite
def email(draw: st.DrawFn) -> str:
    local = draw(st.text("abcdefghijklmnopqrstuvwxyz0123456789._%+-", min_size=1, max_size=20))
    local = local.strip(".") or "a"
    labels = draw(st.lists(hyphenated, min_size=1, max_size=3))
    tld = draw(st.text("abcdefghijklmnopqrstuvwxyz", min_size=2, max_size=6))
    address = f"{local}@{'.'.join(labels)}.{tld}"
    return address.upper() if draw(st.booleans()) else address


@st.composite
def url(draw: st.DrawFn) -> str:
    host = ".".join(draw(st.lists(hyphenated, min_size=1, max_size=3)))
    tld = draw(st.sampled_from(["com", "cn", "net", "org", "hk", "vn", "io", "com.cn", "co.uk"]))
    path = draw(st.text("abcdefghijklmnopqrstuvwxyz0123456789/_-?=&%#", max_size=30))
    path = "/" + path if path else ""
    form = draw(st.sampled_from(["https://", "http://", "ftp://", "www.", "", "HTTPS://WWW."]))
    return f"{form}{host}.{tld}{path}"


uuid_text = (
    st.uuids()
    .map(lambda u: st.sampled_from([str(u), str(u).upper(), u.hex]))
    .flatmap(lambda forms: forms)
)
credential = st.builds(
    lambda prefix, body: prefix + body,
    st.sampled_from(["wgc_", "wgs_", "whsec_"]),
    st.text("abcdef0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_-", min_size=8, max_size=40),
)
reference = st.builds(
    lambda head, number: f"{head}-{number}",
    st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=2, max_size=6),
    st.integers(1, 10**9),
)

name_word = st.builds(
    lambda head, mark, tail: (head + mark + tail).capitalize(),
    st.text(NEUTRAL_LETTERS, min_size=1, max_size=6),
    st.sampled_from(NAME_MARKS),
    st.text(NEUTRAL_LETTERS, max_size=6),
)
latin_name = st.lists(name_word, min_size=1, max_size=3).map(" ".join)
cjk_name = st.text(NAME_CJK, min_size=2, max_size=4)
names = st.lists(st.one_of(latin_name, cjk_name), min_size=1, max_size=5, unique=True)

surrounding = st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=40)
separator = st.sampled_from([" ", ", ", "\n", ": ", " (", ") ", "; "])


def digit_windows(identifier: str) -> list[str]:
    only = re.sub(r"\D", "", identifier)
    return [only[i : i + 8] for i in range(len(only) - 7)]


def survives(identifier: str, scrubbed: str, *, context: str) -> bool:
    """The identifier, or 8 digits of it in a row (ignoring separators), is still there; digits
    of the surrounding text could make up such a run too, so that part is checked without."""
    if identifier.lower() in scrubbed.lower():
        return True
    if re.search(r"\d", context):
        return False
    scrubbed_digits = re.sub(r"\D", "", scrubbed)
    return any(window in scrubbed_digits for window in digit_windows(identifier))


@FAST
@given(
    identifier=st.one_of(
        chinese_mobile(),
        chinese_landline(),
        international(),
        resident_id(),
        long_digits(),
        email(),
        url(),
        uuid_text,
        credential,
    ),
    before=surrounding,
    after=surrounding,
    left=separator,
    right=separator,
)
@example(identifier="+86 138 1234 5678", before="Call", after="now", left=" ", right=" ")
@example(identifier="0769-8888 1234", before="Office", after="", left=": ", right=" ")
@example(identifier="(020) 12345678", before="Tel", after="", left=" ", right=" ")
@example(identifier="+44 20 7946 0958", before="UK", after="", left=" ", right=" ")
@example(identifier="11010519491231002X", before="ID", after="", left=" ", right=" ")
def test_generated_identifiers_never_survive(identifier, before, after, left, right):
    text = f"{before}{left}{identifier}{right}{after}"
    scrubbed = scrub(text)
    assert not survives(identifier, scrubbed, context=before + after), (text, scrubbed)
    assert "[redacted:" in scrubbed


@FAST
@given(
    group=names,
    people=names,
    references=st.lists(reference, max_size=3),
    pick=st.integers(min_value=0),
    case=st.sampled_from([str, str.upper, str.lower, str.title]),
    before=surrounding,
    after=surrounding,
    left=separator,
    right=separator,
)
def test_names_and_the_contributors_references_never_survive(
    group, people, references, pick, case, before, after, left, right
):
    terms = ScrubTerms(
        organisations=tuple(group), people=tuple(people), references=tuple(references)
    )
    every = [*group, *people, *references]
    name = case(every[pick % len(every)])
    text = f"{before}{left}{name}{right}{after}"
    scrubbed = scrub(text, terms)
    assert name.lower() not in scrubbed.lower(), (text, scrubbed)
    assert re.search(r"\[redacted:(organisation|person|reference)\]", scrubbed), scrubbed


@FAST
@given(name=cjk_name, before=neutral_cjk, after=neutral_cjk)
def test_chinese_names_are_found_inside_chinese_text(name, before, after):
    scrubbed = scrub(before + name + after, ScrubTerms(organisations=(name,)))
    assert scrubbed == f"{before}[redacted:organisation]{after}"


# Words that label an identifier ("CCCD 100..." is a Vietnamese citizen id): not neutral.
ID_LABELS = frozenset(
    {"cccd", "cmnd", "qq", "wx", "wechat", "weixin", "zalo", "line", "whatsapp", "passport"}
    | {"hkid", "id", "tel", "phone", "mobile", "fax", "dob", "card", "account", "acct", "no"}
    | {"ref"}
)


def _neutral_latin(word: str) -> bool:
    """Not a label of an identifier, and not a name on its own ("Ei" is a given name of
    `data/given_names.txt`: any text holding it capitalised holds a name; "MdA" is "Md", the
    short form of Mohammad, before a capital: a name as drawn)."""
    return word.lower() not in ID_LABELS and all(
        scrub(form) == form for form in (word, word.capitalize())
    )


def test_words_that_are_names_as_drawn_are_not_neutral():
    assert not _neutral_latin("MdA")  # "Md" (Mohammad) before a capital
    assert not _neutral_latin("ei")  # "Ei" once capitalised
    assert _neutral_latin("mda")


neutral_word = st.one_of(
    st.text(NEUTRAL_LETTERS, min_size=1, max_size=10).filter(_neutral_latin),
    st.lists(st.sampled_from(NEUTRAL_CJK_WORDS), min_size=1, max_size=2).map("".join),
)
short_number = st.integers(min_value=0, max_value=9_999_999).map(str)
punctuation = st.sampled_from(["", "", ",", ".", ";", ":", "!", "?", "'", '"', ")"])


opener = st.sampled_from(["", "", "(", '"'])


@st.composite
def neutral_text(draw: st.DrawFn) -> str:
    """Words, short numbers (each after a word), punctuation and spaces: no identifier."""
    pieces = draw(
        st.lists(
            st.tuples(opener, neutral_word, punctuation, st.none() | short_number), max_size=15
        )
    )
    words = []
    for start, word, mark, number in pieces:
        words.append(f"{start}{word}{mark}")
        if number is not None:
            words.append(number)
    return draw(st.sampled_from([" ", "  ", "\n"])).join(words)


@FAST
@given(text=neutral_text(), group=names, people=names, references=st.lists(reference, max_size=3))
@example(
    text='AvUdTNclo; 0 "lFtCUinRAb; hcVSSc) "T. Eis. "Eis? 0',
    group=["Qa"],
    people=["Zo"],
    references=["CAS-1001"],
)
@example(
    text="Line 3 had 72 hours a week in 2026, 1200 workers.",
    group=["Qa"],
    people=["Zo"],
    references=["CAS-1001"],
)
def test_text_without_identifiers_comes_back_unchanged(text, group, people, references):
    terms = ScrubTerms(
        organisations=tuple(group), people=tuple(people), references=tuple(references)
    )
    assert scrub(text, terms) == text
    assert scrub(text) == text


# ---- the read-time pre-test ----------------------------------------------------------------------

# The regular-expression engine's own table of letters IGNORECASE takes for one another besides
# their lower case (CPython's), and its simple lower case of one character.
EXTRA_CASES: dict[int, tuple[int, ...]] = importlib.import_module("re._casefix")._EXTRA_CASES
engine_lower = importlib.import_module("_sre").unicode_tolower
# Letters that case-fold unusually (those of the table, the dotted capital I, the Kelvin sign,
# sharp s), so the quick test before the organisation pattern is tried where it could go wrong.
TRICKY = "".join(
    sorted({chr(c) for c in EXTRA_CASES} | set("\u0130I\u212ak\u00df\u1e9e\u03a3服装"))
)
NAME_WORDS = st.text(alphabet=st.sampled_from("abcikls\u0307" + TRICKY), min_size=2, max_size=6)


@st.composite
def names_and_texts(draw: st.DrawFn) -> tuple[tuple[str, ...], list[str]]:
    words = draw(st.lists(NAME_WORDS, min_size=1, max_size=6, unique=True))
    names = tuple(
        " ".join(draw(st.lists(st.sampled_from(words), min_size=1, max_size=3)))
        for _ in range(draw(st.integers(1, 3)))
    )
    pieces = st.one_of(
        st.sampled_from(words).map(lambda w: draw(st.sampled_from([w, w.upper(), w.title()]))),
        st.sampled_from([" ", "-", "_", ", ", "."]),
        st.text(alphabet=st.sampled_from("abcikls \u0307" + TRICKY), max_size=4),
    )
    texts = st.lists(pieces, max_size=12).map("".join)
    return names, draw(st.lists(texts, min_size=1, max_size=4))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(names_and_texts())
def test_the_quick_tests_never_keep_a_name_the_pattern_would_find(case):
    """Reading shared records redacts exactly what the organisation pattern finds (in the
    normalised view of the text): the substring tests that skip most of a page (and most texts
    of it) never skip one that names a member."""
    names, texts = case
    terms = ScrubTerms(organisations=names)
    pattern = terms.pattern("organisation")
    if pattern is None:  # every name is under two characters once normalised (I + U+0307 = İ)
        assert [redact_organisations(text, terms) for text in texts] == texts
        assert names_in(texts, terms) is None
        return

    def everywhere(text: str) -> str:
        written, view, where = _view(text)
        spans = [
            (m.start(), m.end(), "organisation")
            for m in pattern.finditer(view)
            if m.end() > m.start()
        ]
        return _cut(written, spans, where, tag) if spans else text

    expected = [everywhere(text) for text in texts]
    assert [redact_organisations(text, terms) for text in texts] == expected
    page = names_in(texts, terms)
    assert [redact_organisations(text, page) for text in texts] == expected
    # Read again: what each text names comes from memory, and redacts the same.
    page = names_in(texts[::-1], terms)
    assert [redact_organisations(text, page) for text in texts] == expected


def test_folding_takes_every_character_for_what_the_pattern_takes_it_for():
    """Over all of Unicode: characters the organisation pattern's IGNORECASE matches to each
    other (the same simple lower case, or one class of the engine's table) fold alike, so the
    substring tests before the pattern never miss a name however it is written."""
    unlike = [
        hex(code)
        for code in range(0x110000)
        if not 0xD800 <= code <= 0xDFFF and _fold(chr(code)) != _fold(chr(engine_lower(code)))
    ]
    assert unlike == []
    for letter, others in EXTRA_CASES.items():
        for other in others:
            assert _fold(chr(letter)) == _fold(chr(other)), (hex(letter), hex(other))
            assert re.fullmatch(re.escape(chr(letter)), chr(other), re.IGNORECASE)


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(exclude_categories=["Cs"]), max_size=30))
def test_the_quick_views_are_the_views_the_patterns_read(text):
    """The read path's quick test folds the normalised view in one pass: it is the folded view
    the organisation pattern reads, character for character."""
    assert _view_text(text) == _view(text)[1]
    assert _folded_view(text) == _fold(_view(text)[1])
