"""Words that are nobody's name: the common-word list the service ships, and legal suffixes.

Used twice: an alias that is a common word is refused (nobody may censor an ordinary word), and a
member's name yields its distinctive words (the words of the name that are neither common nor a
legal suffix: "Kestrel" from "Kestrel Apparel Ltd"), which are scrubbed on their own.
"""

from __future__ import annotations

import unicodedata

# Legal forms, in the languages of our members and suppliers (folded: lower case, no dots).
LEGAL_SUFFIXES: frozenset[str] = frozenset(
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
        "ag",
        "ab",
        "sa",
        "sas",
        "sarl",
        "srl",
        "spa",
        "bv",
        "nv",
        "oy",
        "as",
        "aps",
        "kg",
        "pte",
        "pty",
        "bhd",
        "sdn",
        "tnhh",
        "jsc",
        "pt",
        "tbk",
        "pvt",
        "llp",
        "lp",
        "group",
        "holdings",
        "holding",
        "international",
        "intl",
        "enterprise",
        "enterprises",
        "有限公司",
        "有限责任公司",
        "股份有限公司",
        "集团",
        "公司",
        "有限會社",
        "股份公司",
    }
)

# A seed of common English words; the scrubbing work extends it into a shipped word list.
_COMMON_WORDS_TEXT = """
    the of and to in is was for on that with as by at from this be are or an it not but which
    have has had all were their they one more when there can other new some been if would into
    time will only its also about after first many these two three four five may then any such
    most over same used under work worker workers factory factories audit audits auditor team
    apparel garment garments textile textiles fashion clothing kids children child home group
    global trading trade sports sport shoes footwear toys toy brand brands supply chain
    sourcing source quality best good great star sun moon blue green red gold silver north south
    east west asia pacific china world united general national international service services
    products product manufacturing industrial industry management office staff people family
"""
COMMON_WORDS: frozenset[str] = frozenset(_COMMON_WORDS_TEXT.split())


def fold(word: str) -> str:
    """A word as the lists hold it: NFKC, lower case, without dots and surrounding punctuation."""
    return unicodedata.normalize("NFKC", word).casefold().strip(" .,;:()[]\"'").replace(".", "")


def is_common_word(term: str) -> bool:
    """True for a term that is a common word or a legal suffix, whatever its case."""
    folded = fold(term)
    return folded in COMMON_WORDS or folded in LEGAL_SUFFIXES


def distinctive_words(name: str) -> list[str]:
    """The words of an organisation's name that identify it on their own."""
    return [w for w in name.split() if len(fold(w)) >= 3 and not is_common_word(w)]
