"""Scrubbing free text before it is shared: every identifier becomes `[redacted:<kind>]`.

One pipeline (`scrub`, `scrub_report`) for sharing, previews and re-scrubbing. The text is first
normalised (NFKC, format characters such as zero-width spaces dropped) so that nothing hides
behind look-alike characters. Then finders run in order over it, each on the text with what the
ones before it found masked out (same length, so offsets hold): credentials, e-mail addresses (also
written `at`/`dot`), URLs and UUIDs first (they contain digits and names); then the names of the
group's member tenants (names, slugs, aliases, with legal-suffix variants, and their distinctive
words), of the contributor's own people and its own references (external id, supplier code, audit
reference: `acme-20240501` must go whole, not leave `acme-` behind a redacted number); then
messaging ids, identity documents and bank cards, exact dates, ages, phone numbers, people's names
found without being told them, and any other run of eight digits or more.

Kinds: email, url, phone, id_number, messaging_id, credential, date, age, person, organisation,
reference, number.
"""

from __future__ import annotations

import importlib
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

from wg_api.sharing import pii_contacts, pii_dates, pii_ids, pii_names
from wg_api.sharing.pii_ids import is_resident_id, resident_id_check
from wg_api.sharing.words import LEGAL_SUFFIXES, distinctive_words, is_cjk

__all__ = [
    "KINDS",
    "ScrubTerms",
    "is_resident_id",
    "names_in",
    "normalise",
    "organisation_terms",
    "redact_organisations",
    "redactions",
    "resident_id_check",
    "scrub",
    "scrub_report",
    "tag",
]

KINDS = (
    "email",
    "url",
    "phone",
    "id_number",
    "messaging_id",
    "credential",
    "date",
    "age",
    "person",
    "organisation",
    "reference",
    "number",
)
Span = tuple[int, int, str]
MASK = "\ue000"  # a private-use character: neither a letter, a digit nor a space

# Any other run of digits long enough to identify something (accounts, orders, ids).
LONG_DIGITS = re.compile(r"(?<!\d)\d(?:[\s\-.]?\d){7,}(?!\d)")
YEAR_RANGE = re.compile(r"(?:19|20)\d{2}\s*-\s*(?:19|20)\d{2}")


def tag(kind: str) -> str:
    return f"[redacted:{kind}]"


# Unicode format characters (Cf: zero-width spaces and joiners, BOM, soft hyphen, bidi marks) and
# variation selectors are dropped; the characters NFKC changes on their own (full-width forms,
# ligatures, circled digits, ...) are the only others the normalised view of a text looks at.
# (Planes 0-3 and 14 hold every such character: the others are unassigned or private use.)
def _special_characters() -> tuple[list[int], list[int]]:
    formats, changing = [], []
    for code in (*range(0x80, 0x32400), *range(0xE0000, 0xE1000)):
        char = chr(code)
        if 0xD800 <= code <= 0xDFFF:
            continue
        if unicodedata.category(char) == "Cf" or 0xFE00 <= code <= 0xFE0F:
            formats.append(code)
        elif unicodedata.normalize("NFKC", char) != char:
            changing.append(code)
    return formats, changing


_FORMAT_CODES, _NFKC_CODES = _special_characters()
_FORMAT: dict[int, None] = dict.fromkeys(_FORMAT_CODES)


def _char_class(codes: Iterable[int]) -> str:
    ranges: list[list[int]] = []
    for code in sorted(codes):
        if ranges and code == ranges[-1][1] + 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])
    return "".join(
        re.escape(chr(low)) + ("-" + re.escape(chr(high)) if high > low else "")
        for low, high in ranges
    )


_CHANGING = re.compile("[" + _char_class([*_NFKC_CODES, *_FORMAT_CODES]) + "]")
_FORMAT_RE = re.compile("[" + _char_class(_FORMAT_CODES) + "]")
# Each of them as the normalised view writes it (format characters: nothing).
_VIEW_TABLE: dict[int, str] = {
    **{code: unicodedata.normalize("NFKC", chr(code)) for code in _NFKC_CODES},
    **dict.fromkeys(_FORMAT_CODES, ""),
}


def _drop_format(text: str) -> str:
    return _FORMAT_RE.sub("", text) if not text.isascii() else text


def _view_text(text: str) -> str:
    """The normalised view of `_view`, without the positions."""
    if text.isascii():
        return text
    return unicodedata.normalize("NFC", text).translate(_VIEW_TABLE)


def normalise(text: str) -> str:
    """NFKC, without format characters: full-width letters, ligatures, circled digits and the
    like become what they look like, and nothing invisible splits a word."""
    if text.isascii():
        return text
    return unicodedata.normalize("NFKC", text.translate(_FORMAT))


def _view(text: str) -> tuple[str, str, list[int] | None]:
    """The text as written (composed, NFC) and its normalised view, with the position in the
    former of each character of the latter (None when they are the same): finders read the view,
    and what they find is cut out of the text as written, so that Chinese punctuation and the
    like stay as the contributor wrote them."""
    if text.isascii():
        return text, text, None
    text = unicodedata.normalize("NFC", text)
    changes = list(_CHANGING.finditer(text))
    if not changes:
        return text, text, None
    pieces: list[str] = []
    where: list[int] = []
    position = 0
    for change in changes:
        start = change.start()
        pieces.append(text[position:start])
        where.extend(range(position, start))
        char = text[start]
        replacement = "" if ord(char) in _FORMAT else unicodedata.normalize("NFKC", char)
        pieces.append(replacement)
        where.extend([start] * len(replacement))
        position = start + 1
    pieces.append(text[position:])
    where.extend(range(position, len(text)))
    view = "".join(pieces)
    where.append(len(text))
    return text, view, where


def _cut(
    text: str, spans: list[Span], where: list[int] | None, replace: Callable[[str], str]
) -> str:
    """`text` with each span (of its normalised view) replaced, and format characters dropped."""
    pieces: list[str] = []
    position = 0
    for start, end, kind in spans:
        if where is not None:
            start, end = where[start], where[end - 1] + 1
        if start < position:
            continue
        pieces += [_drop_format(text[position:start]), replace(kind)]
        position = end
    pieces.append(_drop_format(text[position:]))
    return "".join(pieces)


def _is_cjk(term: str) -> bool:
    return is_cjk(term)


# ---- names the scrubber is told: member tenants, the contributor's people and references --------

_SEPARATOR = r"[\s\-_.]*"
_LATIN_SUFFIXES = sorted(
    {
        "ltd",
        "limited",
        "co",
        "company",
        "corp",
        "corporation",
        "inc",
        "incorporated",
        "llc",
        "plc",
        "gmbh",
        "pte",
        "pty",
        "bhd",
        "sdn",
        "tnhh",
        "jsc",
        "pvt",
        "llp",
        "sarl",
        "srl",
        "spa",
        "sas",
    },
    key=len,
    reverse=True,
)
# Two-letter forms are words too ("as", "sa"): only in capitals.
_LATIN_SUFFIX = (
    rf"(?:[\s,]*(?:{'|'.join(_LATIN_SUFFIXES)}|(?-i:AB|AG|AS|SA|OY|NV|BV|KG|PT|ApS|Oy|A/S))"
    r"(?![^\W_])\.?)*"
)
# Latin-script terms match whole words: not inside a word of letters or digits of an alphabet
# (Latin, Greek, Cyrillic, with their combining marks), but right after or before a Chinese
# character (编号KA-2024-0117). A class of alphabets rather than "a word character that is not
# CJK": negated classes over the CJK ranges take milliseconds to compile under IGNORECASE.
_ALPHABETIC = (
    "0-9A-Za-z\u00aa\u00b5\u00ba\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u02af\u0300-\u036f"
    "\u0370-\u03ff\u0400-\u052f\u1e00-\u1fff\u2c00-\u2c7f\ua720-\ua7ff\u212a\u212b"
)
_BEFORE = rf"(?<!(?-i:[{_ALPHABETIC}]))"
_AFTER = rf"(?!(?-i:[{_ALPHABETIC}]))"
_CJK_SUFFIXES = sorted(
    {s for s in LEGAL_SUFFIXES if is_cjk(s)} | {"有限", "股份"}, key=len, reverse=True
)
_CJK_SUFFIX = rf"(?:{'|'.join(_CJK_SUFFIXES)})*"
_SUFFIX_WORD = re.compile(r"[\s,]+([^\s,]+)$")


def _core(name: str) -> str:
    """A name without its legal form at the end: "Kestrel Apparel Co., Ltd." -> "Kestrel
    Apparel", 凯斯特服装有限公司 -> 凯斯特服装."""
    core = normalise(name).strip()
    while True:
        if is_cjk(core):
            for suffix in _CJK_SUFFIXES:
                if core.endswith(suffix) and len(core) - len(suffix) >= 2:
                    core = core[: -len(suffix)].rstrip()
                    break
            else:
                return core
            continue
        found = _SUFFIX_WORD.search(core)
        if found is None or found.group(1).lower().strip(".,") not in LEGAL_SUFFIXES:
            return core
        core = core[: found.start()].rstrip(" ,")


def _term_regex(term: str, *, suffixes: bool) -> str:
    """An organisation's name (`suffixes`) with any spaces, hyphens, underscores or dots
    between its words, or none ("Kestrel-Apparel", "kestrel_apparel", "KestrelApparel"); a
    person's name or a reference with any white space, hyphens or underscores where it has
    spaces (a reference's own hyphens stay: "AA-1" is not "AA 1")."""
    if suffixes:
        words = [w for w in re.split(r"[\s\-_]+", term) if w]
        body = _SEPARATOR.join(re.escape(w) for w in words)
    else:
        body = r"[\s\-_]+".join(re.escape(w) for w in term.split())
    if is_cjk(term):
        return body + (_CJK_SUFFIX if suffixes else "")
    return body + (_LATIN_SUFFIX if suffixes else "")


def organisation_alternatives(names: Iterable[str]) -> list[str]:
    """What the organisation pattern looks for, from the names it is given: each name without
    its legal form (then matched with any legal form), and each distinctive word of a name on
    its own. Every alternative is itself a name whose alternatives are itself, so that a pattern
    built from any part of this list finds exactly what the whole list's pattern finds there."""
    found: dict[str, str] = {}
    for raw in names:
        name = normalise(raw).strip()
        if len(name) < 2:
            continue
        core = _core(name)
        if len(core) < 2:
            core = name
        for term in (core, *distinctive_words(core)):
            key = _fold(term)
            if len(term) >= 2 and key not in found:
                found[key] = term
    return list(found.values())


def _name_pattern(terms: Iterable[str], *, suffixes: bool = False) -> re.Pattern[str] | None:
    cleaned = sorted(
        {normalise(t).strip() for t in terms if len(normalise(t).strip()) >= 2},
        key=lambda t: (-len(t), t),
    )
    if not cleaned:
        return None
    # Latin names match whole words only (one boundary around all of them: the engine still
    # tries every name where a longer one fails it); CJK has no word boundaries.
    latin = [_term_regex(t, suffixes=suffixes) for t in cleaned if not is_cjk(t)]
    cjk = [_term_regex(t, suffixes=suffixes) for t in cleaned if is_cjk(t)]
    parts = [f"{_BEFORE}(?:{'|'.join(latin)}){_AFTER}"] if latin else []
    return re.compile("|".join(parts + cjk), re.IGNORECASE)


def _person_variants(people: Iterable[str]) -> list[str]:
    """A person's name as recorded and with its two parts the other way round (Chen Meiling,
    Meiling Chen)."""
    variants: list[str] = []
    for person in people:
        name = normalise(person).strip()
        variants.append(name)
        parts = name.split()
        if len(parts) == 2:
            variants.append(f"{parts[1]} {parts[0]}")
    return variants


TERM_KINDS = ("organisation", "person", "reference")


def _pieces(term: str) -> tuple[str, ...]:
    folded = _fold(normalise(term)).replace("-", " ").replace("_", " ")
    return tuple(sorted(set(folded.split()), key=len, reverse=True))


@lru_cache(maxsize=2048)
def _compiled(kind: str, terms: tuple[str, ...]) -> re.Pattern[str] | None:
    return _name_pattern(terms, suffixes=kind == "organisation")


@dataclass(frozen=True)
class ScrubTerms:
    """Terms to remove: the group's member tenants (names, slugs, aliases), the contributor's
    people, and the contributor's own references to the finding (external id, supplier code,
    audit reference)."""

    organisations: tuple[str, ...] = ()
    people: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    _patterns: dict[str, re.Pattern[str] | None] = field(default_factory=dict, compare=False)

    @cached_property
    def alternatives(self) -> tuple[str, ...]:
        return tuple(organisation_alternatives(self.organisations))

    @cached_property
    def name_pieces(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """For a quick test before the organisation pattern: each alternative of the pattern
        (a name without its legal form, or a distinctive word) with its pieces, folded, longest
        first. The pattern can only match an alternative where every piece is in the folded
        text."""
        return tuple((name, _pieces(name)) for name in sorted(self.alternatives))

    @cached_property
    def _term_pieces(self) -> dict[str, tuple[tuple[str, tuple[str, ...]], ...]]:
        terms = {
            "organisation": self.alternatives,
            "person": tuple(_person_variants(self.people)),
            "reference": self.references,
        }
        return {kind: tuple((t, _pieces(t)) for t in values) for kind, values in terms.items()}

    def pattern_for(self, kind: str, folded: str) -> re.Pattern[str] | None:
        """The pattern of `kind` narrowed to the terms whose every piece is in `folded` (the
        folded text to scrub): the others cannot match there, and a pattern of a few names is
        much faster than one of many."""
        present = tuple(
            t for t, pieces in self._term_pieces[kind] if all(p in folded for p in pieces)
        )
        if not present:
            return None
        return _compiled(kind, present)

    def pattern(self, kind: str) -> re.Pattern[str] | None:
        if kind not in self._patterns:
            if kind == "organisation":
                self._patterns[kind] = _name_pattern(self.alternatives, suffixes=True)
            elif kind == "person":
                self._patterns[kind] = _name_pattern(_person_variants(self.people))
            else:
                self._patterns[kind] = _name_pattern(self.references)
        return self._patterns[kind]


# ---- the pipeline -------------------------------------------------------------------------------

Finder = Callable[[str], Iterable[Span]]


def _long_digits(text: str) -> Iterator[Span]:
    for match in LONG_DIGITS.finditer(text):
        if not YEAR_RANGE.fullmatch(match.group(0)):
            yield match.start(), match.end(), "number"


def _longer_than_phones(text: str) -> Iterator[Span]:
    """Runs of more digits than any phone number has (E.164: 15), taken whole before phones are
    looked for, so that no phone is found inside an account number and leaves its ends."""
    for match in LONG_DIGITS.finditer(text):
        if sum(ch.isdigit() for ch in match.group(0)) > 15:
            yield match.start(), match.end(), "number"


FINDERS: tuple[Finder, ...] = (
    pii_contacts.credentials,
    pii_contacts.emails,
    pii_contacts.urls,
    pii_contacts.uuids,
)
AFTER_TERMS: tuple[Finder, ...] = (
    pii_ids.messaging_ids,
    pii_ids.resident_ids,
    pii_ids.hong_kong_ids,
    pii_ids.other_ids,
    pii_ids.documents,
    pii_ids.company_codes,
    pii_dates.dates,
    pii_dates.ages,
    _longer_than_phones,
    pii_contacts.phones,
    pii_names.people,
    _long_digits,
)
AGE_AFTER_NAME = re.compile(
    r"\s*(?:[(\uff08]\s*\d{1,2}\s*(?:岁|歲|y|yo|yrs?|years?(?:\s+old)?|tuổi)?\s*[)\uff09]"
    r"|[,\uff0c]\s*\d{1,2}\s*(?:岁|歲|y|yo|yrs?|tuổi)?(?=\s*[,\uff0c;\uff1b)\uff09]))"
)


def _terms_finder(pattern: re.Pattern[str], kind: str) -> Finder:
    def find(text: str) -> Iterator[Span]:
        for match in pattern.finditer(text):
            if match.end() > match.start():
                yield match.start(), match.end(), kind

    return find


@dataclass(frozen=True)
class _Clues:
    """What a text holds, looked at once, so that finders that cannot find anything in it are
    not run (each is a pass of regular expressions over the text)."""

    lowered: str
    words: frozenset[str]
    digits: int

    @classmethod
    def of(cls, view: str) -> _Clues:
        lowered = view.lower()
        return cls(lowered, frozenset(_WORDS.findall(lowered)), len(_DIGIT.findall(view)))


# Words of Latin letters (with Vietnamese ones): "WeChat号" holds the word "WeChat".
_WORDS = re.compile(r"[A-Za-z\u00c0-\u024f\u1e00-\u1eff]+")
_DIGIT = re.compile(r"\d")
_URL_HINT = re.compile(r"://|www\.|[a-z0-9]\.[a-z]{2}")
_HEX_RUN = re.compile(r"[0-9a-f]{8}")
MESSAGING_WORDS = pii_ids.MESSAGING_WORDS
MESSAGING_CJK = pii_ids.MESSAGING_CJK
DOCUMENT_WORDS = pii_ids.DOCUMENT_WORDS
DOCUMENT_CJK = pii_ids.DOCUMENT_CJK
Gate = Callable[[_Clues], bool]
GATES: dict[Finder, Gate] = {
    pii_contacts.credentials: lambda c: any(p in c.lowered for p in ("wgc_", "wgs_", "whsec_")),
    pii_contacts.emails: lambda c: "@" in c.lowered or "at" in c.words,
    pii_contacts.urls: lambda c: _URL_HINT.search(c.lowered) is not None,
    pii_contacts.uuids: lambda c: _HEX_RUN.search(c.lowered) is not None,
    pii_ids.messaging_ids: lambda c: (
        bool(c.words & MESSAGING_WORDS) or any(k in c.lowered for k in MESSAGING_CJK)
    ),
    pii_ids.resident_ids: lambda c: c.digits >= 15,
    pii_ids.hong_kong_ids: lambda c: c.digits >= 6,
    pii_ids.other_ids: lambda c: c.digits >= 7,
    pii_ids.documents: lambda c: (
        bool(c.words & DOCUMENT_WORDS) or any(k in c.lowered for k in DOCUMENT_CJK)
    ),
    pii_ids.company_codes: lambda c: c.digits >= 8,
    pii_dates.dates: lambda c: c.digits > 0 or "月" in c.lowered,
    _longer_than_phones: lambda c: c.digits > 15,
    pii_contacts.phones: lambda c: c.digits >= 6,
    _long_digits: lambda c: c.digits >= 8,
}


def _always(_: _Clues) -> bool:
    return True


def _finders(terms: ScrubTerms | None, view: str) -> Iterator[Finder]:
    clues = _Clues.of(view)
    yield from (f for f in FINDERS if GATES.get(f, _always)(clues))
    if terms is not None:
        folded = _fold(view)
        for kind in TERM_KINDS:
            pattern = terms.pattern_for(kind, folded)
            if pattern is not None:
                yield _terms_finder(pattern, kind)
    yield from (f for f in AFTER_TERMS if GATES.get(f, _always)(clues))


def _spans(text: str, terms: ScrubTerms | None) -> list[Span]:
    claimed: list[Span] = []
    masked = text
    for finder in _finders(terms, text):
        new: list[Span] = []
        for start, end, kind in sorted(finder(masked), key=lambda s: (s[0], -s[1])):
            if end <= start or MASK in masked[start:end]:
                continue
            if new and start < new[-1][1]:
                continue
            new.append((start, end, kind))
        if new:
            claimed += new
            pieces = []
            position = 0
            for start, end, _ in new:
                pieces += [masked[position:start], MASK * (end - start)]
                position = end
            pieces.append(masked[position:])
            masked = "".join(pieces)
    # An age in brackets after a person's name: 王小明(14), Maria Lopez (15).
    for _, end, kind in list(claimed):
        if kind == "person":
            after = AGE_AFTER_NAME.match(masked, end)
            if after is not None and MASK not in after.group(0):
                digits = re.search(
                    r"\d{1,2}\s*(?:岁|歲|y|yo|yrs?|years?(?:\s+old)?|tuổi)?", after.group(0)
                )
                assert digits is not None
                claimed.append(
                    (after.start() + digits.start(), after.start() + digits.end(), "age")
                )
    return sorted(claimed)


def redactions(text: str, terms: ScrubTerms | None = None) -> tuple[str, list[Span]]:
    """What `scrub` removes: the text as written (NFC) and the spans of it that go, with their
    kinds, in order."""
    written, view, where = _view(text)
    spans = _spans(view, terms)
    if where is not None:
        spans = [(where[start], where[end - 1] + 1, kind) for start, end, kind in spans]
    return written, spans


def scrub_report(text: str, terms: ScrubTerms | None = None) -> tuple[str, list[str]]:
    """The scrubbed text and the kinds of what was removed, in the order they occurred."""
    written, view, where = _view(text)
    spans = _spans(view, terms)
    if not spans:
        return _drop_format(written) if where is not None else written, []
    return _cut(written, spans, where, tag), [kind for _, _, kind in spans]


def scrub(text: str, terms: ScrubTerms | None = None) -> str:
    """Replace every identifier in `text`; text without any comes back unchanged (normalised)."""
    return scrub_report(text, terms)[0]


def warm_up() -> None:
    """Load what the first Chinese text would otherwise wait for (the Chinese dictionary, built
    from jieba's in about 1 s: `pii_names.load_dictionary`)."""
    pii_names.load_dictionary()


# ---- the read path: member names redacted again --------------------------------------------------


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


# The view's table and the first pass of `_fold` in one: each character as the view writes it,
# folded (a translation is the costly part of the read path's quick test).
_FOLD_VIEW_TABLE: dict[int, str] = {
    **{code: chr(code).translate(_IGNORECASE_EQUIVALENTS) for code in _IGNORECASE_EQUIVALENTS},
    **{code: text.translate(_IGNORECASE_EQUIVALENTS) for code, text in _VIEW_TABLE.items()},
}


def _folded_view(text: str) -> str:
    """`_fold(_view_text(text))`, with one translation fewer."""
    if text.isascii():
        return text.lower()
    view = unicodedata.normalize("NFC", text).translate(_FOLD_VIEW_TABLE)
    return view.lower().translate(_IGNORECASE_EQUIVALENTS)


def _named(folded: str, terms: ScrubTerms, among: frozenset[str] | None = None) -> list[str]:
    """The names (of `among`, if given) whose every piece is in `folded`. Names share pieces (a
    member's name and its slug, the words of a legal form): each piece is looked for once, and
    only while a name still needs it (a page of shared findings is about 10 KB of text to
    search)."""
    present: dict[str, bool] = {}
    found = []
    for name, pieces in terms.name_pieces:
        if among is not None and name not in among:
            continue
        for piece in pieces:
            hit = present.get(piece)
            if hit is None:
                hit = present[piece] = piece in folded
            if not hit:
                break
        else:
            found.append(name)
    return found


# What `names_in` found in each text it searched, for a set of names: a page of shared records
# is read by every member of its group, and searching it for some 50 name pieces is most of the
# cost of reading it (bench/README.md). Keyed by the terms' identity and the text; each entry
# keeps its terms alive, so an identity is never reused while an entry has it (and a hit checks
# it is the same object). Oldest out first, past the bound (about 5 MB of text).
_NAMED_TEXTS: dict[tuple[int, str], tuple[ScrubTerms, tuple[str, ...]]] = {}
NAMED_TEXTS_KEPT = 10_000


# The same, for a whole page at once (the page's texts joined): a page read again, as every member
# of a group reads the same first page, is one look-up instead of one per text. Keyed and kept
# like `_NAMED_TEXTS`, with fewer entries (a page is some 10 KB of text).
_NAMED_PAGES: dict[tuple[int, str], tuple[ScrubTerms, ScrubTerms | None]] = {}
NAMED_PAGES_KEPT = 256
_PAGE_JOIN = "\x00"  # never in stored text: NUL is refused wherever text arrives


def names_in(texts: Iterable[str | None], terms: ScrubTerms) -> ScrubTerms | None:
    """`terms` narrowed to the organisation names that may occur in `texts` (a page of shared
    records), or None if none can. A page seen before with these terms is answered at once;
    otherwise texts not seen before are searched together in one pass (stored text was scrubbed
    when shared and a name in it is rare), then each on its own only for the names that pass
    found, and remembered."""
    present = [text for text in texts if text]
    page_key = (id(terms), _PAGE_JOIN.join(present))
    seen_page = _NAMED_PAGES.get(page_key)
    if seen_page is not None and seen_page[0] is terms:
        return seen_page[1]
    narrowed = _names_in_texts(present, terms)
    if len(_NAMED_PAGES) >= NAMED_PAGES_KEPT:
        del _NAMED_PAGES[next(iter(_NAMED_PAGES))]
    _NAMED_PAGES[page_key] = (terms, narrowed)
    return narrowed


def _names_in_texts(texts: list[str], terms: ScrubTerms) -> ScrubTerms | None:
    found: set[str] = set()
    unseen: list[str] = []
    terms_id = id(terms)
    for text in texts:
        seen = _NAMED_TEXTS.get((terms_id, text))
        if seen is not None and seen[0] is terms:
            found.update(seen[1])
        else:
            unseen.append(text)
    if unseen:
        together = frozenset(_named(_folded_view("\n".join(unseen)), terms))
        for text in dict.fromkeys(unseen):
            named = tuple(_named(_folded_view(text), terms, together)) if together else ()
            found.update(named)
            if len(_NAMED_TEXTS) >= NAMED_TEXTS_KEPT:
                del _NAMED_TEXTS[next(iter(_NAMED_TEXTS))]
            _NAMED_TEXTS[terms_id, text] = (terms, named)
    return organisation_terms(tuple(sorted(found))) if found else None


def redact_organisations(text: str | None, terms: ScrubTerms | None) -> str | None:
    """Only the organisation names: applied again when a shared record is read, so a tenant that
    joined (or was invited) after the record was shared never finds its own name in it."""
    if text is None or terms is None:
        return text
    if not _named(_folded_view(text), terms):
        return text
    written, view, where = _view(text)
    pattern = terms.pattern("organisation")
    if pattern is None:
        return text
    spans = [
        (m.start(), m.end(), "organisation") for m in pattern.finditer(view) if m.end() > m.start()
    ]
    return _cut(written, spans, where, tag) if spans else text
