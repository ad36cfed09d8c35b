"""Contacts and machine identifiers in free text: e-mail addresses (also written `at`/`dot`),
URLs, the service's credentials, UUIDs and phone numbers of every region we work in.

Each finder takes the (normalised, partly masked) text and yields `(start, end, kind)` spans.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache

import phonenumbers

Span = tuple[int, int, str]

FULLWIDTH_PUNCTUATION = "\uff0c\u3002"  # ideographic comma and full stop end a URL too
# Bare domains ("kestrel-apparel.com.cn/audits") are recognised by a known top-level domain, so
# that "No.18" or "e.g." stay as they are.
TOP_LEVEL_DOMAINS = (
    "com|cn|net|org|hk|mo|tw|vn|kh|mm|la|th|my|sg|id|ph|in|bd|pk|lk|jp|kr|au|nz|uk|de|fr|it|nl|"
    "se|ch|es|eu|us|ca|tr|ae|io|co|ai|app|dev|info|biz|edu|gov|int|xyz|online|site|shop|dk|no|fi"
)

_LOCAL = r"[A-Za-z0-9._%+\-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?"
# "@" written out: " at ", "[at]", "(at)", "{at}", "<at>", " AT "; "." as " dot ", "[dot]", "(.)".
_AT = r"(?:\s*@\s*|\s*[\[({<]\s*(?:at|@)\s*[\])}>]\s*|\s+at\s+)"
_DOT = r"(?:\s*\.\s*|\s*[\[({<]\s*(?:dot|\.)\s*[\])}>]\s*|\s+dot\s+)"
EMAIL = re.compile(
    rf"(?<![A-Za-z0-9._%+\-]){_LOCAL}{_AT}{_LABEL}(?:{_DOT}{_LABEL})+",
    re.ASCII | re.IGNORECASE,
)
WRITTEN_DOT = re.compile(r"[\[({<]|\sdot\s", re.IGNORECASE)
URL = re.compile(
    rf"(?:(?:https?|ftp)://|www\.)[^\s<>\"'{FULLWIDTH_PUNCTUATION}]*"
    rf"[^\s<>\"'{FULLWIDTH_PUNCTUATION}.,;:!?)\]]"
    rf"|\b[a-z0-9\-]+(?:\.[a-z0-9\-]+)*\.(?:{TOP_LEVEL_DOMAINS})"
    rf"(?:/[^\s<>\"'{FULLWIDTH_PUNCTUATION}]*[^\s<>\"'{FULLWIDTH_PUNCTUATION}.,;:!?)\]])?\b",
    re.IGNORECASE | re.ASCII,
)
# The service's own API client ids and secrets, and webhook signing secrets.
CREDENTIAL = re.compile(r"(?<![\w-])(?:wgc|wgs|whsec)_[A-Za-z0-9_\-+/=]+", re.ASCII)
# Any UUID (tenant, finding, share, ... ids), with or without hyphens.
UUID_TEXT = re.compile(
    r"(?<![0-9a-f])(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32})"
    r"(?![0-9a-f])",
    re.IGNORECASE | re.ASCII,
)


_AT_ONLY = re.compile(_AT, re.IGNORECASE)
_LOCAL_BEFORE = re.compile(rf"(?<![A-Za-z0-9._%+\-]){_LOCAL}$", re.ASCII)
_DOMAIN_AFTER = re.compile(rf"{_LABEL}(?:{_DOT}{_LABEL})+", re.ASCII | re.IGNORECASE)


def emails(text: str) -> Iterator[Span]:
    """Addresses, found from their "@" (or "at", "[at]", ...) outwards: a pattern that begins
    with the local part would be tried at every character of the text."""
    position = 0
    for at in _AT_ONLY.finditer(text):
        if at.start() < position:
            continue
        local = _LOCAL_BEFORE.search(text, max(0, at.start() - 64), at.start())
        domain = _DOMAIN_AFTER.match(text, at.end())
        if local is None or domain is None:
            continue
        value = text[local.start() : domain.end()]
        written_out = "@" not in value or WRITTEN_DOT.search(value)
        # "met at noon. Then" is no address: one written out ends in a known top-level domain.
        if not written_out or re.fullmatch(
            TOP_LEVEL_DOMAINS, re.split(_DOT, value, flags=re.IGNORECASE)[-1], re.IGNORECASE
        ):
            yield local.start(), domain.end(), "email"
            position = domain.end()


def urls(text: str) -> Iterator[Span]:
    for match in URL.finditer(text):
        yield match.start(), match.end(), "url"


def credentials(text: str) -> Iterator[Span]:
    for match in CREDENTIAL.finditer(text):
        yield match.start(), match.end(), "credential"


def uuids(text: str) -> Iterator[Span]:
    for match in UUID_TEXT.finditer(text):
        yield match.start(), match.end(), "reference"


# ---- phones ------------------------------------------------------------------------------------

# Our suppliers' regions first (most numbers are theirs), then members' home countries.
PHONE_REGIONS = (
    "CN",
    "HK",
    "VN",
    "BD",
    "IN",
    "KH",
    "MO",
    "TW",
    "ID",
    "TH",
    "MY",
    "PH",
    "LK",
    "PK",
    "MM",
    "TR",
    "SE",
    "DE",
    "GB",
    "US",
    "NL",
    "FR",
    "ES",
    "IT",
    "DK",
    "NO",
    "FI",
    "JP",
    "KR",
    "AU",
    "CA",
)
# A candidate: digits in groups joined by up to three separators (spaces, hyphens, dots, slashes,
# brackets), optionally after + or 00, with 7 to 15 digits in all. Only candidates go to
# phonenumbers, which is far too slow to run over every text for thirty regions.
# Between the digit groups of one number: one or two spaces, a hyphen, dot or slash (with a
# space on either side), brackets; not " / " or ", ", which stand between two numbers.
_PHONE_SEP = r"(?:[ \u00a0]{1,2}|[ \u00a0]?[\-.][ \u00a0]?|/|[ \u00a0]?[()][ \u00a0]?|\)[ \-]?)?"
PHONE_CANDIDATE = re.compile(
    rf"(?<![0-9A-Za-z+])(?:\+|\(\+?)?\d(?:{_PHONE_SEP}\d){{6,16}}\)?(?!\d)",
)
PHONE_LABEL = re.compile(
    r"(?:tel|telephone|phone|mobile|mob|cell|hotline|fax|contact|call|whatsapp|sđt|điện thoại|"
    r"电话|手机|联系方式|座机|热线|传真|手機|電話)\W{0,3}$",
    re.IGNORECASE,
)
# Chinese mobiles and landlines, whatever phonenumbers says about an odd separator.
CHINESE_PHONE = re.compile(
    r"(?:(?:\+|00)86\D{0,3})?(?:1[3-9]\d\D{0,3}\d{4}\D{0,3}\d{4}|1[3-9]\d{2}\D{0,3}\d{3}\D{0,3}\d{4}"
    r"|\(?0[1-9]\d{1,2}\)?\D{0,3}\d{3,4}\D{0,3}\d{4})"
)
_SEP = r"[\s\-.\u00a0]?"
# Chinese mobiles and landlines where they stand next to other digits (the candidates above
# begin at the first digit of a run): 138 1234 5678, +86 138..., 0769-8888 1234, (020) 12345678.
CHINESE_PHONES = (
    re.compile(rf"(?<![\d+])(?:(?:\+|00)86{_SEP}?)?1[3-9]\d{_SEP}\d{{4}}{_SEP}\d{{4}}(?!\d)"),
    re.compile(rf"(?<![\d+])(?:(?:\+|00)86{_SEP}?)?1[3-9]\d{{2}}{_SEP}\d{{3}}{_SEP}\d{{4}}(?!\d)"),
    re.compile(
        rf"(?<![\d+])(?:(?:\+|00)86{_SEP}?\(?0?|\(?0)[1-9]\d{{1,2}}\)?{_SEP}\d{{3,4}}{_SEP}\d{{4}}(?!\d)"
    ),
    re.compile(r"(?<![\w+])\+[1-9](?:[\s\-.()\u00a0]{0,2}\d){6,14}(?!\d)"),
)
YEAR_RANGE = re.compile(r"(?:19|20)\d{2}\s*[-/]\s*(?:19|20)\d{2}")


@lru_cache(maxsize=1024)
def _phonenumbers_match(candidate: str) -> bool:
    digits = re.sub(r"\D", "", candidate)
    if candidate.lstrip("(").startswith("+") or digits.startswith("00"):
        international = "+" + digits[2:] if digits.startswith("00") else "+" + digits
        try:
            number = phonenumbers.parse(international, None)
        except phonenumbers.NumberParseException:
            return False
        return phonenumbers.is_possible_number(number)
    for region in PHONE_REGIONS:
        try:
            number = phonenumbers.parse(digits, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return True
    return False


def phones(text: str) -> Iterator[Span]:
    candidates = list(PHONE_CANDIDATE.finditer(text))
    if candidates:
        # Chinese numbers by their own patterns too, as a candidate may begin at other digits
        # before the number ("0 (010) 5555555") or end inside it.
        for pattern in CHINESE_PHONES:
            for match in pattern.finditer(text):
                yield match.start(), match.end(), "phone"
    for match in candidates:
        value = match.group(0)
        end = match.end()
        if value.endswith(")") and value.count("(") < value.count(")"):
            value, end = value[:-1], end - 1  # the bracket around the number, not part of it
        digits = sum(ch.isdigit() for ch in value)
        if YEAR_RANGE.fullmatch(value.strip("()")):
            continue
        labelled = PHONE_LABEL.search(text, max(0, match.start() - 20), match.start()) is not None
        international = value.lstrip("(").startswith("+")
        if (
            (digits >= 8 or labelled or international)
            and (CHINESE_PHONE.fullmatch(value) or _phonenumbers_match(value))
        ) or (labelled and digits >= 6):
            yield match.start(), end, "phone"
