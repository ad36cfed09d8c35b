"""Words that are nobody's name: the common-word list the service ships, and legal suffixes.

Used twice: an alias that is a common word is refused (nobody may censor an ordinary word), and a
member's name yields its distinctive words (the words of the name that are neither common nor a
legal suffix: "Kestrel" from "Kestrel Apparel Ltd", 凯斯特 from 东莞凯斯特服装有限公司), which are
scrubbed on their own.

The list is `data/common_words.txt`: about 2,100 English words (everyday and workplace), 250
Vietnamese syllables and the 3,000 most frequent Chinese words of jieba's dictionary that are not
names of people, places or organisations.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

DATA = Path(__file__).with_name("data")

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
        "集團",
        "有限責任公司",
    }
)

# Chinese words that name a trade or a place rather than a company: stripped from the ends of a
# Chinese company name to find its distinctive part (东莞 + 凯斯特 + 服装 + 有限公司).
CJK_TRADE_WORDS: tuple[str, ...] = (
    "股份有限公司",
    "有限责任公司",
    "有限責任公司",
    "有限公司",
    "股份公司",
    "公司",
    "集团",
    "集團",
    "控股",
    "股份",
    "国际",
    "國際",
    "实业",
    "實業",
    "贸易",
    "貿易",
    "服装",
    "服裝",
    "服饰",
    "服飾",
    "制衣",
    "製衣",
    "童装",
    "童裝",
    "鞋业",
    "鞋業",
    "鞋厂",
    "玩具",
    "纺织",
    "紡織",
    "针织",
    "針織",
    "织造",
    "印染",
    "皮具",
    "箱包",
    "家具",
    "工艺品",
    "电子",
    "電子",
    "科技",
    "工业",
    "工業",
    "制品",
    "製品",
    "用品",
    "时装",
    "時裝",
    "品牌",
    "商贸",
    "工厂",
    "厂",
    "中国",
    "中國",
    "香港",
    "澳门",
    "台湾",
    "上海",
    "北京",
    "广州",
    "深圳",
    "东莞",
    "佛山",
    "宁波",
    "杭州",
    "苏州",
    "温州",
    "泉州",
    "厦门",
    "广东",
    "浙江",
    "江苏",
    "福建",
    "越南",
)
CJK_RANGES = ((0x3400, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x2FA1F))


def _load_common_words() -> frozenset[str]:
    lines = (DATA / "common_words.txt").read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))


COMMON_WORDS: frozenset[str] = _load_common_words()


def fold(word: str) -> str:
    """A word as the lists hold it: NFKC, lower case, without dots and surrounding punctuation."""
    return unicodedata.normalize("NFKC", word).casefold().strip(" .,;:()[]\"'").replace(".", "")


_CJK = re.compile("[" + "".join(f"{chr(low)}-{chr(high)}" for low, high in CJK_RANGES) + "]")


def is_cjk(text: str) -> bool:
    """True if `text` holds a Chinese, Japanese or Korean ideograph."""
    return _CJK.search(text) is not None


def is_common_word(term: str) -> bool:
    """True for a term that is a common word or a legal suffix, whatever its case."""
    folded = fold(term)
    if folded in COMMON_WORDS or folded in LEGAL_SUFFIXES:
        return True
    # Plurals of common words: toys, factories, boxes.
    singulars = (folded[:-1], folded[:-2], folded[:-3] + "y") if folded.endswith("s") else ()
    return any(s in COMMON_WORDS for s in singulars if len(s) >= 3)


def _cjk_core(name: str) -> str:
    """A Chinese name without the trade, legal-form and place words at either end."""
    core = name.strip()
    changed = True
    while changed and core:
        changed = False
        for word in CJK_TRADE_WORDS:
            if core.endswith(word) and len(core) > len(word):
                core, changed = core[: -len(word)], True
            if core.startswith(word) and len(core) > len(word):
                core, changed = core[len(word) :], True
    return core


_WORD_SPLIT = re.compile(r"[\s\-_/,&+]+")


def distinctive_words(name: str) -> list[str]:
    """The words of an organisation's name that identify it on their own: for a name in Latin
    script, each word (split at spaces, hyphens and underscores) of at least 3 characters that is
    not a number, a common word or a legal suffix; for a Chinese name, what is left between the
    place, trade and legal-form words at its ends, if at least 2 characters."""
    name = unicodedata.normalize("NFKC", name)
    words: list[str] = []
    for word in _WORD_SPLIT.split(name.strip()):
        word = word.strip(" .,;:()[]\"'")
        if not word:
            continue
        if is_cjk(word):
            core = _cjk_core(word)
            if len(core) >= 2 and core != word and not is_common_word(core):
                words.append(core)
            elif len(word) >= 2 and not is_common_word(word) and _cjk_core(word) == word:
                words.append(word)
        elif len(fold(word)) >= 3 and not is_common_word(word) and not word.isdigit():
            # ("Acme 2024 Ltd": a year on its own names no one.)
            words.append(word)
    return list(dict.fromkeys(words))
