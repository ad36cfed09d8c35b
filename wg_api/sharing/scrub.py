"""Scrubbing free text before it is shared: every identifier becomes `[redacted:<kind>]`.

Order matters: e-mail addresses, URLs, credentials and UUIDs first (they contain digits and
names), then the names of the group's member tenants and of the contributor's own people and its
own references (external id, supplier code, audit reference: `acme-20240501` must go whole, not
leave `acme-` behind a redacted number), then Chinese resident identity numbers, phone numbers,
exact dates and other long digit runs.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+", re.ASCII)
FULLWIDTH_PUNCTUATION = "\uff0c\u3002"  # ideographic comma and full stop end a URL too
# Bare domains ("kestrel-apparel.com.cn/audits") are recognised by a known top-level domain, so
# that "No.18" or "e.g." stay as they are.
TOP_LEVEL_DOMAINS = (
    "com|cn|net|org|hk|mo|tw|vn|kh|mm|la|th|my|sg|id|ph|in|bd|pk|lk|jp|kr|au|nz|uk|de|fr|it|nl|"
    "se|ch|es|eu|us|ca|tr|ae|io|co|ai|app|dev|info|biz|edu|gov|int|xyz|online|site|shop"
)
# A URL does not end in the punctuation of the sentence around it: "see https://x.cn/a, then".
URL = re.compile(
    rf"(?:(?:https?|ftp)://|www\.)[^\s<>\"'{FULLWIDTH_PUNCTUATION}]*"
    rf"[^\s<>\"'{FULLWIDTH_PUNCTUATION}.,;:!?)\]]"
    rf"|\b[a-z0-9\-]+(?:\.[a-z0-9\-]+)*\.(?:{TOP_LEVEL_DOMAINS})"
    rf"(?:/[^\s<>\"'{FULLWIDTH_PUNCTUATION}]*)?\b",
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
# 18-character resident identity number: 6-digit region, 8-digit birth date, 3-digit sequence,
# check character; and the old 15-digit form.
RESIDENT_ID_18 = re.compile(r"(?<![0-9A-Za-z])\d{17}[0-9Xx](?![0-9A-Za-z])")
RESIDENT_ID_15 = re.compile(r"(?<!\d)\d{15}(?!\d)")
_SEP = r"[\s\-.\u00a0]?"
PHONE_PATTERNS = (
    # Chinese mobiles: 13812345678, 138 1234 5678, 138-1234-5678, +86 138 1234 5678, 0086...
    re.compile(rf"(?<![\d+])(?:(?:\+|00)86{_SEP}?)?1[3-9]\d{_SEP}\d{{4}}{_SEP}\d{{4}}(?!\d)"),
    re.compile(rf"(?<![\d+])(?:(?:\+|00)86{_SEP}?)?1[3-9]\d{{2}}{_SEP}\d{{3}}{_SEP}\d{{4}}(?!\d)"),
    # Chinese landlines with area codes: 0769-8888 1234, (020) 12345678, +86 769 8888 1234
    re.compile(
        rf"(?<![\d+])(?:(?:\+|00)86{_SEP}?\(?0?|\(?0)[1-9]\d{{1,2}}\)?{_SEP}\d{{3,4}}{_SEP}\d{{4}}(?!\d)"
    ),
    # International E.164, written with or without separators: +44 20 7946 0958, +1 (415) 555-0100
    re.compile(r"(?<![\w+])\+[1-9](?:[\s\-.()\u00a0]{0,2}\d){6,14}(?!\d)"),
)
# Exact dates undo the coarse time of a shared record (observed 2026-08-01 -> its quarter).
DATE = re.compile(
    r"(?<!\d)(?:\d{4}[-/.年]\d{1,2}[-/.月]\d{1,2}日?|\d{1,2}[-/.]\d{1,2}[-/.]\d{4})(?!\d)"
)
LONG_DIGITS = re.compile(r"(?<!\d)\d(?:[\s\-.]?\d){7,}(?!\d)")

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def resident_id_check(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character of an 18-character resident identity number."""
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


def is_resident_id(value: str) -> bool:
    return (
        len(value) == 18
        and value[:17].isdigit()
        and resident_id_check(value[:17]) == value[17].upper()
    )


def tag(kind: str) -> str:
    return f"[redacted:{kind}]"


def _is_cjk(term: str) -> bool:
    return any("\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff" for ch in term)


def _name_pattern(terms: Iterable[str]) -> re.Pattern[str] | None:
    cleaned = sorted({t.strip() for t in terms if len(t.strip()) >= 2}, key=len, reverse=True)
    if not cleaned:
        return None
    parts = []
    for term in cleaned:
        escaped = re.escape(term).replace(r"\ ", r"[\s\-_]+")
        # Latin names match whole words only; CJK has no word boundaries.
        parts.append(escaped if _is_cjk(term) else rf"(?<![^\W_]){escaped}(?![^\W_])")
    return re.compile("|".join(parts), re.IGNORECASE)


TERM_KINDS = ("organisation", "person", "reference")


@dataclass(frozen=True)
class ScrubTerms:
    """Terms to remove: the group's member tenants (names, slugs), the contributor's people, and
    the contributor's own references to the finding (external id, supplier code, audit ref)."""

    organisations: tuple[str, ...] = ()
    people: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    _patterns: dict[str, re.Pattern[str] | None] = field(default_factory=dict, compare=False)

    @cached_property
    def name_pieces(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """For a quick test before the organisation pattern: each name with its space-separated
        pieces, folded, longest first. The pattern can only match a name where every piece is in
        the folded text."""
        return tuple(
            (name, tuple(sorted(set(_fold(name).split()), key=len, reverse=True)))
            for name in sorted({n.strip() for n in self.organisations if len(n.strip()) >= 2})
        )

    def pattern(self, kind: str) -> re.Pattern[str] | None:
        if kind not in self._patterns:
            terms = {
                "organisation": self.organisations,
                "person": self.people,
                "reference": self.references,
            }[kind]
            self._patterns[kind] = _name_pattern(terms)
        return self._patterns[kind]


def _resident_id(match: re.Match[str]) -> str:
    return tag("id_number") if is_resident_id(match.group(0)) else match.group(0)


def scrub(text: str, terms: ScrubTerms | None = None) -> str:
    """Replace every identifier in `text`; text without any comes back unchanged."""
    text = EMAIL.sub(tag("email"), text)
    text = URL.sub(tag("url"), text)
    text = CREDENTIAL.sub(tag("credential"), text)
    text = UUID_TEXT.sub(tag("id"), text)
    if terms is not None:
        for kind in TERM_KINDS:
            pattern = terms.pattern(kind)
            if pattern is not None:
                text = pattern.sub(tag(kind), text)
    text = RESIDENT_ID_18.sub(_resident_id, text)
    text = RESIDENT_ID_15.sub(tag("id_number"), text)
    for phone in PHONE_PATTERNS:
        text = phone.sub(tag("phone"), text)
    text = DATE.sub(tag("date"), text)
    return LONG_DIGITS.sub(tag("number"), text)


@lru_cache(maxsize=512)
def organisation_terms(names: tuple[str, ...]) -> ScrubTerms:
    """Terms for a set of organisation names, built (and its pattern compiled) once per set."""
    return ScrubTerms(organisations=names)


def _ignorecase_classes() -> dict[int, str]:
    """A translation to one letter of each class of lower-case letters that the regular
    expression engine's IGNORECASE takes for one another besides their lower case (dotless i
    and i, long s and s, final and medial sigma, ...): CPython's own table, so the classes
    follow the Python that runs, plus the dotted capital I, which lower() turns into two
    characters but the engine into i."""
    extra: dict[int, tuple[int, ...]] = getattr(
        importlib.import_module("re._casefix"), "_EXTRA_CASES", {}
    )
    table: dict[int, str] = {0x130: "i"}
    for letter, others in extra.items():
        table[letter] = chr(min(letter, *others))
    return table


_IGNORECASE_EQUIVALENTS = _ignorecase_classes()


def _fold(text: str) -> str:
    """Each letter as one of the letters the pattern's IGNORECASE takes it for, so a substring
    test on folded text is at least as forgiving as the pattern and never hides a name. (Mapped
    again after lower(), which writes a final sigma.)"""
    if text.isascii():
        return text.lower()
    return text.translate(_IGNORECASE_EQUIVALENTS).lower().translate(_IGNORECASE_EQUIVALENTS)


def _named(folded: str, terms: ScrubTerms) -> list[str]:
    return [name for name, pieces in terms.name_pieces if all(p in folded for p in pieces)]


def names_in(texts: Iterable[str | None], terms: ScrubTerms) -> ScrubTerms | None:
    """`terms` narrowed to the organisation names that may occur in `texts` (a page of shared
    records), or None if none can: one pass over the page, as stored text was scrubbed when
    shared and a name in it is rare."""
    named = _named(_fold("\n".join(text for text in texts if text)), terms)
    return organisation_terms(tuple(named)) if named else None


def redact_organisations(text: str | None, terms: ScrubTerms | None) -> str | None:
    """Only the organisation names: applied again when a shared record is read, so a tenant that
    joined (or was invited) after the record was shared never finds its own name in it."""
    if text is None or terms is None or not _named(_fold(text), terms):
        return text
    pattern = terms.pattern("organisation")
    return pattern.sub(tag("organisation"), text) if pattern is not None else text
