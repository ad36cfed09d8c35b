"""Identity documents, bank cards and messaging ids in free text.

Check digits are used where a document has one: the mainland resident identity number (ISO 7064
MOD 11-2), the Hong Kong identity card (MOD 11 over letters and digits), the Taiwan national
identification number (its letter's code and weights), bank cards (Luhn, `stdnum.luhn`). Numbers
without a check (Vietnamese CCCD/CMND, passports, Macau ids) are taken after their label, or in
their distinctive written form (`1234567(8)`). Any other run of eight digits or more is redacted
as a `number` later in the pipeline anyway.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache

from stdnum import luhn

Span = tuple[int, int, str]

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


def hkid_check(prefix: str, digits: str) -> str:
    """The check character of a Hong Kong identity card number (`A123456` -> `3`): letters count
    A=10 .. Z=35 and a missing second letter 36, weighted 9 down to 2, MOD 11, 10 written `A`."""
    letters = prefix.upper().rjust(2, " ")
    values = [36 if ch == " " else ord(ch) - ord("A") + 10 for ch in letters]
    values += [int(d) for d in digits]
    remainder = sum(v * w for v, w in zip(values, range(9, 1, -1), strict=True)) % 11
    check = (11 - remainder) % 11
    return "A" if check == 10 else str(check)


_TW_LETTERS = "ABCDEFGHJKLMNPQRSTUVXYWZIO"  # A=10, B=11, ... in the order of their codes


def is_taiwan_id(value: str) -> bool:
    """A Taiwan national identification (or new resident certificate) number: a letter, 1/2 (or
    8/9), eight digits, the last one a check."""
    if not re.fullmatch(r"[A-Z][1289]\d{8}", value):
        return False
    code = _TW_LETTERS.index(value[0]) + 10
    digits = [code // 10, code % 10, *map(int, value[1:])]
    weights = (1, 9, 8, 7, 6, 5, 4, 3, 2, 1, 1)
    return sum(d * w for d, w in zip(digits, weights, strict=True)) % 10 == 0


RESIDENT_ID_18 = re.compile(r"(?<![0-9A-Za-z])\d{17}[0-9Xx](?![0-9A-Za-z])")
RESIDENT_ID_15 = re.compile(r"(?<!\d)\d{15}(?!\d)")
HKID = re.compile(
    r"(?<![A-Za-z0-9])([A-Z]{1,2})(\d{6})\s?(\(\s?([0-9A])\s?\)|([0-9A]))(?![A-Za-z0-9])"
)
MACAU_ID = re.compile(r"(?<![A-Za-z0-9])[1578]\d{6}\s?\(\d\)")
TAIWAN_ID = re.compile(r"(?<![A-Za-z0-9])[A-Z][1289]\d{8}(?!\d)")
CARD = re.compile(r"(?<![\d-])\d{4}(?:[ \-]?\d{4}){2}[ \-]?\d{1,7}(?!\d)")
CARD_LABEL = re.compile(
    r"(?:card|account|acct|a/c|银行卡|卡号|账号|帳號|账户|tài khoản|thẻ)\W{0,3}"
    r"(?:no|number|号|号码|số)?\W{0,3}$",
    re.IGNORECASE,
)

# Documents named before their number: "passport E12345678", "护照号码:EA1234567", "CCCD số
# 001203004567", "HKID: A123456(3)", "ID card no. 123456789".
DOCUMENT_LABEL = (
    r"(?:passport|passport\s+(?:no|number)|pp\s*no|护照|護照|hộ\s+chiếu|travel\s+permit|通行证|"
    r"通行證|回乡证|回鄉證|台胞证|台胞證|身份证|身份證|证件|證件|居民身份证|"
    r"id(?:entity)?\s*card|id\s*(?:no|number|#)|identity\s+(?:no|number|document)|hkid|"
    r"national\s+id|citizen\s+id|resident\s+id|cccd|cmnd|căn\s+cước(?:\s+công\s+dân)?|"
    r"chứng\s+minh(?:\s+nhân\s+dân)?|nid|nik|ktp|aadhaar|cnic|kimlik|bir|ic\s*(?:no|number)|"
    r"(?:employee|staff|worker|badge|card|payroll|personnel)\s*(?:no|number|id|#)|badge|"
    r"工号|工號|工卡号|工卡|厂牌号|厂牌|员工编号|mã\s+(?:số\s+)?nhân\s+viên|mã\s+số|id)"
)
DOCUMENT = re.compile(
    DOCUMENT_LABEL
    + r"[\s.:#=,]*(?:(?:no|number|num|nr|号码|號碼|号|號|số|is|was|of|the|holder)[\s.:#=,]*){0,3}"
    r"(?P<value>(?-i:[A-Z]{0,2}\d[\dA-Z]*(?:[\s\-]\d[\dA-Z]*){0,3}(?:\s?\([0-9A]\))?))",
    re.IGNORECASE,
)

MESSAGING_LABEL = (
    r"(?:(?i:微信号?|微信號|wechat(?:\s*id)?|weixin|wx\s*id|vx|v信|QQ号码|QQ號碼|QQ号|QQ號|QQ|"
    r"whatsapp|what'?s\s*app|zalo|telegram|viber|skype|kakao(?:talk)?|line\s+(?:id|account))|LINE)"
)
MESSAGING = re.compile(
    rf"(?<![A-Za-z])(?P<label>{MESSAGING_LABEL})"
    r"(?P<marker>[\s:\uff1a=]*(?:(?i:id|account|no|number|号码|号|账号|帳號|số)\s*)?"
    r"(?:(?i:is|was|là|:|是|为|為)\s*)?[\s:\uff1a=]*)"
    r"(?P<value>[+@]?[A-Za-z0-9][A-Za-z0-9_\-.@]*(?:[ \-]\d{2,8}){0,4})",
)
# The unified social credit code of a Chinese company: 18 characters, its region in digits.
USCC = re.compile(
    r"(?<![0-9A-Za-z])[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}(?![0-9A-Za-z])"
)
WXID = re.compile(r"(?<![A-Za-z0-9])wxid_[A-Za-z0-9_\-]{4,}", re.IGNORECASE)


def resident_ids(text: str) -> Iterator[Span]:
    for match in RESIDENT_ID_18.finditer(text):
        if is_resident_id(match.group(0)):
            yield match.start(), match.end(), "id_number"
    for match in RESIDENT_ID_15.finditer(text):
        yield match.start(), match.end(), "id_number"


def hong_kong_ids(text: str) -> Iterator[Span]:
    for match in HKID.finditer(text):
        prefix, digits, bracketed, inner, bare = match.groups()
        check = inner or bare
        # "A123456(3)" is an identity card whatever its check says; unbracketed, only if it holds.
        if bracketed.startswith("(") or hkid_check(prefix, digits) == check.upper():
            yield match.start(), match.end(), "id_number"


def other_ids(text: str) -> Iterator[Span]:
    for match in MACAU_ID.finditer(text):
        yield match.start(), match.end(), "id_number"
    for match in TAIWAN_ID.finditer(text):
        if is_taiwan_id(match.group(0)):
            yield match.start(), match.end(), "id_number"
    for match in CARD.finditer(text):
        digits = re.sub(r"\D", "", match.group(0))
        labelled = CARD_LABEL.search(text, max(0, match.start() - 24), match.start())
        unlabelled = len(digits) == 16 or (len(digits) == 19 and digits.startswith("62"))
        if 13 <= len(digits) <= 19 and luhn.is_valid(digits) and (labelled or unlabelled):
            yield match.start(), match.end(), "id_number"


def company_codes(text: str) -> Iterator[Span]:
    for match in USCC.finditer(text):
        if sum(ch.isdigit() for ch in match.group(0)) >= 10:
            yield match.start(), match.end(), "number"


MESSAGING_WORDS = frozenset(
    [
        "wechat",
        "weixin",
        "wx",
        "wxid",
        "vx",
        "qq",
        "whatsapp",
        "whats",
        "line",
        "zalo",
        "telegram",
        "viber",
        "skype",
        "kakao",
        "kakaotalk",
    ]
)
MESSAGING_CJK = ("微信", "v信", "V信", "wxid_", "QQ", "qq")
DOCUMENT_WORDS = frozenset(
    [
        "passport",
        "pp",
        "travel",
        "id",
        "identity",
        "hkid",
        "national",
        "citizen",
        "resident",
        "cccd",
        "cmnd",
        "căn",
        "chứng",
        "nid",
        "nik",
        "ktp",
        "aadhaar",
        "cnic",
        "kimlik",
        "bir",
        "ic",
        "hộ",
        "employee",
        "staff",
        "worker",
        "badge",
        "card",
        "payroll",
        "personnel",
        "mã",
    ]
)
DOCUMENT_CJK = (
    "护照",
    "護照",
    "通行",
    "回乡",
    "回鄉",
    "台胞",
    "身份",
    "居民",
    "证件",
    "證件",
    "工号",
    "工號",
    "工卡",
    "厂牌",
    "员工编号",
)
# Words of Latin letters (with Vietnamese ones): "WeChat号" holds the word "WeChat".
_WORDS = re.compile(r"[A-Za-z\u00c0-\u024f\u1e00-\u1eff]+")


@lru_cache(maxsize=256)
def _label_words(words: frozenset[str]) -> re.Pattern[str]:
    alternatives = "|".join(sorted(map(re.escape, words), key=len, reverse=True))
    letter = "A-Za-z\u00c0-\u024f\u1e00-\u1eff"
    return re.compile(rf"(?<![{letter}])(?:{alternatives})(?![{letter}])", re.IGNORECASE)


def _starts(text: str, words: frozenset[str], cjk: tuple[str, ...]) -> list[int]:
    """Where a label may begin: each word of `words` (any case), each of the `cjk` labels.
    Patterns that begin with a long alternation of labels are tried only there."""
    present = frozenset(_WORDS.findall(text.casefold())) & words
    starts = [m.start() for m in _label_words(present).finditer(text)] if present else []
    for label in cjk:
        position = text.find(label)
        while position != -1:
            starts.append(position)
            position = text.find(label, position + 1)
    return sorted(set(starts))


def documents(text: str) -> Iterator[Span]:
    for start in _starts(text, DOCUMENT_WORDS, DOCUMENT_CJK):
        match = DOCUMENT.match(text, start)
        if match is None:
            continue
        value = match.group("value")
        if sum(ch.isdigit() for ch in value) >= 3:
            yield match.start("value"), match.end("value"), "id_number"


def messaging_ids(text: str) -> Iterator[Span]:
    for match in WXID.finditer(text):
        yield match.start(), match.end(), "messaging_id"
    for start in _starts(text, MESSAGING_WORDS, MESSAGING_CJK):
        labelled = MESSAGING.match(text, start)
        if labelled is None:
            continue
        match = labelled
        value, marker = match.group("value"), match.group("marker")
        label = match.group("label").lower()
        explicit = re.search(r"[:\uff1a=是为為]|id|no|num|号|號|account|số", marker, re.IGNORECASE)
        shaped = any(ch.isdigit() or ch == "_" for ch in value)
        if label.startswith("qq") and not value.replace(" ", "").isdigit():
            continue
        if len(value.replace(" ", "")) >= 5 and (shaped or explicit):
            yield match.start("value"), match.end("value"), "messaging_id"
