"""Exact dates and people's ages in free text.

Exact dates undo the coarse time of a shared record (observed 2026-08-12 -> its quarter): days in
digits (2011-03-12, 12/03/2011, 2011.3.12), in words (12 March 2011, March 12, 2011, 12th of
March, ngày 12 tháng 3 năm 2011) and in Chinese (2011年3月12日, 3月12日), and birth years. A year, a
month of a year or a quarter on its own stays ("in 2011", "March 2011", "2026-Q3").

Ages are child-level data: 14岁, 十四周岁, 14 years old, 14-year-old, aged 14, age: 14, 14 tuổi. A
legal threshold ("under the age of 16", "minimum age 15") and a range of ages ("aged 16 to 17")
describe no one and stay.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

Span = tuple[int, int, str]

MONTHS = (
    r"(?:January|February|March|April|May|June|July|August|September|October|November|December|"
    r"Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)"
)
MONTHS_UPPER = MONTHS.upper()
_MONTH = rf"(?:{MONTHS}|{MONTHS_UPPER})\.?"
_DAY = r"(?:[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th)?"
_YEAR = r"(?:19|20)\d{2}"
DATE_PATTERNS = (
    # 2011-03-12, 2011/3/12, 2011.03.12, 2011年3月12日 (号), 2011 年 3 月 12 日
    re.compile(r"(?<!\d)\d{4}\s*[-/.年]\s*\d{1,2}\s*[-/.月]\s*\d{1,2}\s*[日号號]?(?!\d)"),
    # 12/03/2011, 12-03-2011, 12.3.2011, and two-digit years 12/03/11
    re.compile(r"(?<![\d/.\-])\d{1,2}[-/.]\d{1,2}[-/.](?:\d{4}|\d{2})(?![\d/.\-])"),
    # 3月12日, 3月12号, 三月十二日
    re.compile(
        r"(?<!\d)(?:\d{1,2}|[一二三四五六七八九十]{1,3})\s*月\s*"
        r"(?:\d{1,2}|[一二三四五六七八九十]{1,3})\s*[日号號]"
    ),
    # 12 March 2011, 12th of March, 12 Mar. 2011, 12-Mar-2011 (a weekday before it stays)
    re.compile(rf"(?<![\w]){_DAY}(?:\s+of)?[\s\-]+{_MONTH}(?:,?[\s\-]+{_YEAR})?(?!\w)"),
    # March 12, 2011, March 12th, Mar 12 2011
    re.compile(rf"(?<![\w]){_MONTH}\s+(?:the\s+)?{_DAY}(?:,?\s+{_YEAR})?(?![\w:])"),
    # ngày 12 tháng 3 năm 2011, ngày 12/3
    re.compile(
        r"(?<=[Nn]gày )\d{1,2}(?:\s+(?i:tháng)\s+\d{1,2}|[/\-.]\d{1,2})"
        r"(?:\s+(?i:năm)\s+\d{4}|[/\-.]\d{4})?"
    ),
    # 12/3 after "on" ("on 12/3 the workers"), and dd/mm within a Chinese or Vietnamese sentence
    re.compile(r"(?<=\bon\s)(?:[12]\d|3[01]|0?[1-9])[/.](?:1[0-2]|0?[1-9])(?![\d/.])"),
    # born in 2009, date of birth 2009, DOB: 2009, 2009年出生, sinh năm 2009
    re.compile(
        rf"(?:(?i:born|date\s+of\s+birth|DOB|d\.o\.b\.?)\s*(?:(?i:in|on)\s+|[:\uff1a]\s*)?"
        rf"(?P<year>{_YEAR})"
        rf"|(?P<cn_year>{_YEAR}\s*年\s*(?:\d{{1,2}}\s*月\s*)?)(?:出生|生)"
        rf"|(?i:sinh)\s+(?:(?i:năm)\s+)?(?P<vi_year>{_YEAR}))"
    ),
)
# A number of days, hours, ... after a day-like number is no date: "on 12 March" is, "12 Mar" in
# "12 Mar hours" would not be written.

_CN_NUMBER = r"(?:[一二三四五六七八九十两]{1,3})"
# Ages written out: five to nineteen (the ages of children and young workers).
_EN_NUMBER = (
    r"(?<![A-Za-z])(?i:five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|"
    r"sixteen|seventeen|eighteen|nineteen)"
)
_AGE = rf"(?:(?<![\d.])\d{{1,2}}|{_EN_NUMBER})"
AGE_PATTERNS = (
    re.compile(rf"(?:(?<!\d)\d{{1,2}}|{_CN_NUMBER})\s*(?:周岁|週歲|岁|歲)(?:半)?"),
    re.compile(rf"{_AGE}\s*(?:-|\s)?(?i:years?|yrs?)(?:\s*-\s*|\s+)(?i:old)\b"),
    re.compile(rf"{_AGE}(?:-|\s)(?i:year)-(?i:old)\b"),
    re.compile(r"(?<![\d.])\d{1,2}\s*(?i:y/?o|yo)\b"),
    re.compile(r"(?<![\d.])\d{1,2}\s*(?i:tuổi)"),
    re.compile(r"(?i:tuổi)\s*[:\uff1a]?\s*\d{1,2}(?!\d)"),
    re.compile(r"(?i:年龄|年齡|年纪)\s*[:\uff1a为為是]?\s*\d{1,2}(?!\d)"),
    re.compile(
        r"\b(?i:aged|age|ages)\s*(?:[:=]\s*|of\s+|(?:as|is|was)\s+|\s+)(?:about\s+|only\s+|just\s+)?"
        rf"(?P<age>\d{{1,2}}|{_EN_NUMBER})(?![\d\w])"
    ),
    # "he was 13.", "were both 16 according to", "started working at 13": after a person (the
    # words before the number are checked by AGE_VERB).
    re.compile(
        r"(?<![\d.:])(?P<age>\d{1,2})(?=\s*(?:[.,;)]|and\b|when\b|according\b|"
        r"at\s+the\s+time\b|$))"
    ),
)
AGE_VERB = re.compile(
    r"(?:\b(?:was|were|is|are|both|turned|only)\s+|(?:working|work|started|hired|employed|"
    r"began|joined)\s+(?:\w+\s+)?at\s+)$"
)
PERSON_BEFORE = re.compile(
    r"(?i:\b(?:he|she|they|boy|girl|child|children|worker|workers|son|daughter|youngest|oldest|"
    r"both|him|her)\b)|\ue000"
)
# What makes an age a threshold or a category rather than a person's: "under the age of 16",
# "minimum age 15", "workers aged 16 to 17", "ages 16-17".
THRESHOLD_BEFORE = re.compile(
    r"(?i:under|below|over|above|minimum|min\.?|legal|working|statutory|least|until|till|"
    r"reach(?:ed|ing)?|less\s+than|more\s+than|younger\s+than|older\s+than|"
    r"limit|between|mandatory|retirement|dưới|trên|đủ|từ|quá)\s*(?:the\s+)?(?:age\s+of\s+|age\s+)?$"
)
THRESHOLD_BEFORE_CJK = re.compile(
    r"(?:未满|不满|满|未滿|不滿|滿|低于|低於|高于|以下|超过|超過|年满|年滿|至|到|~|-)\s*$"
)
RANGE_AFTER = re.compile(r"^\s*(?:-|\u2013|~|to|至|到)\s*\d")
# "aged 13 and 15": the second age.
AND_AGE = re.compile(r"\s*(?:and|&|,|or|và|和|、)\s*(\d{1,2})(?![\d.:])")
THRESHOLD_AFTER_CJK = re.compile(
    r"^\s*(?:以下|以上|以内|以內|之间|之間|及以上|及以下|或以上|或以下|的未成年|未成年)"
)


# What each date pattern needs in the text before it is worth running.
_NEEDS = (
    re.compile(r"\d{4}"),
    re.compile(r"\d[-/.]\d"),
    re.compile("月"),
    re.compile(rf"(?<!\w){_MONTH}(?!\w)"),
    re.compile(rf"(?<!\w){_MONTH}(?!\w)"),
    re.compile("(?i:ngày)"),
    re.compile(r"\bon\s\d"),
    re.compile(r"(?i:born|birth|dob|d\.o\.b|出生|生|sinh)"),
)
_AGE_NEEDS = re.compile(r"\d|[岁歲]|(?i:tuổi|year|age)")


def dates(text: str) -> Iterator[Span]:
    if not any(ch.isdigit() for ch in text) and "月" not in text:
        return
    for pattern, needs in zip(DATE_PATTERNS, _NEEDS, strict=True):
        if needs.search(text) is None:
            continue
        for match in pattern.finditer(text):
            # A birth year: the year goes, "born in" stays.
            group = next((g for g in ("year", "cn_year", "vi_year") if match.groupdict().get(g)), 0)
            yield match.start(group), match.end(group), "date"


# What each age pattern needs in the (lower-cased) text before it is worth running.
_AGE_HINTS: tuple[tuple[str, ...], ...] = (
    ("岁", "歲"),
    ("year", "yr"),
    ("year",),
    ("yo", "y/o"),
    ("tuổi",),
    ("tuổi",),
    ("年龄", "年齡", "年纪"),
    ("age",),
    ("was", "were", "is ", "are", "both", "turned", "only", " at "),
)


def ages(text: str) -> Iterator[Span]:
    if _AGE_NEEDS.search(text) is None:
        return
    lowered = text.lower()
    for pattern, hints in zip(AGE_PATTERNS, _AGE_HINTS, strict=True):
        if not any(hint in lowered for hint in hints):
            continue
        last = pattern is AGE_PATTERNS[-1]
        if last and PERSON_BEFORE.search(text) is None:
            continue
        for match in pattern.finditer(text):
            if last and not AGE_VERB.search(text, max(0, match.start() - 30), match.start()):
                continue
            before = text[max(0, match.start() - 30) : match.start()]
            after = text[match.end() : match.end() + 12]
            if THRESHOLD_BEFORE.search(before) and not re.match(
                r"(?i:aged|age\s*[:=])", match.group(0)
            ):
                continue
            if THRESHOLD_BEFORE_CJK.search(before) or THRESHOLD_AFTER_CJK.match(after):
                continue
            if RANGE_AFTER.match(after) or re.search(r"\d\s*(?:-|\u2013|~|to|至|到)\s*$", before):
                continue
            if "age" in pattern.groupindex:
                if pattern is AGE_PATTERNS[-1] and not (
                    AGE_VERB.search(text, max(0, match.start() - 30), match.start())
                    and PERSON_BEFORE.search(text, max(0, match.start() - 40), match.start())
                ):
                    continue
                yield match.start("age"), match.end("age"), "age"
                more = AND_AGE.match(text, match.end())
                if more is not None and not last:
                    yield more.start(1), more.end(1), "age"
            else:
                yield match.start(), match.end(), "age"
