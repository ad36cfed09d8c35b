"""Normalising supplier names and addresses so the same factory typed two ways is one supplier.

Case, punctuation, whitespace and common legal suffixes (Co., Ltd., Factory, 有限公司, TNHH, ...)
are dropped; a name in Chinese script keeps its script (only its suffixes go).
"""

from __future__ import annotations

import re
import unicodedata

_LATIN_SUFFIXES = frozenset(
    {
        "co",
        "company",
        "ltd",
        "limited",
        "inc",
        "incorporated",
        "corp",
        "corporation",
        "llc",
        "plc",
        "gmbh",
        "ag",
        "sa",
        "srl",
        "bv",
        "pte",
        "pvt",
        "jsc",
        "tnhh",
        "mtv",
        "cty",
        "factory",
        "mfg",
        "manufactory",
        "group",
        "the",
    }
)
# Longest first so 股份有限公司 goes before 有限公司 and 公司.
_CJK_SUFFIXES = tuple(
    sorted(
        [
            "股份有限公司",
            "有限责任公司",
            "有限公司",
            "有限責任公司",
            "公司",
            "工厂",
            "工廠",
            "厂",
            "廠",
        ],
        key=len,
        reverse=True,
    )
)
# The same suffixes as a PostgreSQL regular expression, to strip them from stored local names.
CJK_SUFFIX_PATTERN = "(" + "|".join(_CJK_SUFFIXES) + ")$"
_ADDRESS_WORDS = {
    "rd": "road",
    "st": "street",
    "ave": "avenue",
    "dist": "district",
    "ind": "industrial",
    "bldg": "building",
    "no": "",
    "zone": "zone",
    "prov": "province",
    "blvd": "boulevard",
}
_NON_WORD = re.compile(r"[^\w]+", re.UNICODE)
_VIETNAMESE_PREFIXES = ("cong ty tnhh", "cong ty co phan", "cong ty")


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    return _NON_WORD.sub(" ", text).replace("_", " ").strip()


def _strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).replace("đ", "d")


def _strip_cjk_suffix(text: str) -> str:
    for suffix in _CJK_SUFFIXES:
        if text.endswith(suffix):
            # A name that is nothing but a suffix stays whole (有限公司 must not become 有限).
            return text[: -len(suffix)] if len(text) > len(suffix) else text
    return text


def normalise_local_name(local_name: str) -> str:
    """A local name in its own script without its legal suffix, for similarity only."""
    return _strip_cjk_suffix(unicodedata.normalize("NFKC", local_name).strip())


def normalise_name(name: str) -> str:
    text = unicodedata.normalize("NFKC", name).strip()
    text = _strip_cjk_suffix(text)
    folded = _strip_accents(_fold(text))
    for prefix in _VIETNAMESE_PREFIXES:
        if folded.startswith(prefix + " "):
            folded = folded[len(prefix) + 1 :]
            break
    words = [w for w in folded.split() if w not in _LATIN_SUFFIXES]
    return " ".join(words) or folded


def normalise_address(address: str) -> str:
    words = []
    for word in _strip_accents(_fold(address)).split():
        replaced = _ADDRESS_WORDS.get(word, word)
        if replaced:
            words.append(replaced)
    return " ".join(words)


def match_key(name: str, address: str, country: str) -> str:
    return f"{country.upper()}|{normalise_name(name)}|{normalise_address(address)}"


OS_ID = re.compile(r"^[A-Z]{2}[0-9]{7}[A-Z0-9]{6}$")


def is_valid_os_id(value: str) -> bool:
    return bool(OS_ID.match(value))
