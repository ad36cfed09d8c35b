"""People's names in free text, found without being told them.

- Chinese: jieba's dictionary segments the text (as jieba does by its dictionary alone, without
  its slow hidden Markov model) and its part-of-speech table tells person names (`nr`), both held
  compactly by `zh_dictionary` (jieba's own Python dicts cost a worker 170 MB); a name must begin
  with a surname of `data/surnames_zh.txt`. Names jieba does not know come out as single
  characters: a surname followed by one or two characters that can stand in a given name is one.
  Place names (邵阳, tagged `nr` by jieba), words jieba wrongly tags (童工, 明白) and surnames that
  are also common words (于, 向, 和) need a role word before them (童工, 工人, 主管, 女儿, 名叫).
  The dictionary is built (about 1 s) once, at start-up (`scrub.warm_up`) or else on the first
  text with Chinese in it.
- Latin script: capitalised words after a title (Mr, Ms, Dr) or a role word (worker, supervisor,
  child ... named); a known given name followed by a capitalised word; a pinyin surname with a
  pinyin given name (Li Wei, Zhang Xiaoming); a Vietnamese surname with its given names (Nguyễn
  Thị Lan).
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Iterator
from functools import cache

from wg_api.sharing.words import COMMON_WORDS, DATA, is_cjk
from wg_api.sharing.zh_dictionary import Dictionary, jieba_dict_file

Span = tuple[int, int, str]


def _lines(name: str) -> list[str]:
    text = (DATA / name).read_text(encoding="utf-8")
    return [w for line in text.splitlines() if not line.startswith("#") for w in line.split()]


def _sections(name: str) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    current = ""
    for line in (DATA / name).read_text(encoding="utf-8").splitlines():
        if line.startswith("# ["):
            current = line[3 : line.index("]")]
        elif not line.startswith("#"):
            sections.setdefault(current, []).extend(line.split())
    return sections


SURNAMES_ZH = _lines("surnames_zh.txt")
COMPOUND_SURNAMES = frozenset(s for s in SURNAMES_ZH if len(s) > 1)
SINGLE_SURNAMES = frozenset(s for s in SURNAMES_ZH if len(s) == 1)
_PLACES = _sections("places.txt")
PLACES_ZH = frozenset(_PLACES.get("zh", []))
PLACES_LATIN = frozenset(_PLACES.get("latin", []))
GIVEN_NAMES = frozenset(_lines("given_names.txt"))

# ---- Chinese ------------------------------------------------------------------------------------

# Surnames that are also everyday words: a name only after a role word.
AMBIGUOUS_SURNAMES = frozenset(
    "于向和将从与以及对为由被把比经但都也还就又才只很更最一不没有是上下中大小多少新老第每各该其此"
    "这那几两三四五六七八九十百千万元时明文方高安成全平常金石白红黄蓝黑東东南西北左右前后内外"
    "乐海江山林田谷关门车马牛羊花云雷雨风水火土木书信和宁康福禄寿喜"
)
# Characters that end a name rather than continue it: function words, verbs of saying, numbers,
# measure words and the words of work that follow a name in an audit.
STOP_GIVEN = frozenset(
    "的了在是和与说讲称她他它们也都被把将于从向对为每个岁名人年月日时号第等及或但不没有到给让用"
    "以就还又才并而且很这那哪些所其该各已曾正后前上下中内外里要会能可应当请由因此如虽之次元条款"
    "项位家户间厂司部处工作加班休息天周表示告诉承认提到介绍说反映透露回答当场今昨去来进出入"
    "在住于是否及其他她们我你您咱俩共约近多少几两一二三四五六七八九十百千万零〇半整每某"
    "、\uff0c。\uff1b\uff1a\uff01\uff1f\uff08\uff09《》“”\u2018\u2019"
)
ROLE_WORDS_ZH = (
    "未成年工",
    "童工",
    "工人",
    "员工",
    "女工",
    "男工",
    "职工",
    "普工",
    "学徒",
    "实习生",
    "学生",
    "小孩",
    "孩子",
    "女孩",
    "男孩",
    "主管",
    "经理",
    "厂长",
    "老板",
    "组长",
    "班长",
    "拉长",
    "主任",
    "文员",
    "人事",
    "保安",
    "司机",
    "审核员",
    "审计员",
    "验厂员",
    "翻译",
    "女儿",
    "儿子",
    "母亲",
    "父亲",
    "妈妈",
    "爸爸",
    "姐姐",
    "哥哥",
    "弟弟",
    "妹妹",
    "丈夫",
    "妻子",
    "同事",
    "工友",
    "师傅",
    "负责人",
    "联系人",
    "名叫",
    "叫做",
    "叫",
    "姓名",
    "名字",
    "法人",
    "法定代表人",
    "董事长",
    "总经理",
    "副总",
    "车间主任",
    "生产主管",
    "人事主管",
    "人事经理",
    "招聘员",
    "中介",
    "监护人",
    "老师",
    "医生",
    "护士",
    "员工代表",
    "工会主席",
    "证人",
)
ROLE_BEFORE_ZH = re.compile(
    "(?:"
    + "|".join(ROLE_WORDS_ZH)
    + r"|[^\W\d_][员长师]|主任|主管|经理|专员|代表|工)\s*[:\uff1a]?\s*$"
)
# Titles after a surname: 梁先生, 王女士 (the surname goes, the title stays).
TITLE_AFTER_ZH = (
    "先生",
    "女士",
    "小姐",
    "师傅",
    "阿姨",
    "老师",
    "经理",
    "主管",
    "厂长",
    "老板",
    "总",
)
# Parts of speech of the dictionary words that, after a role word, are names (高峰 nr, 常乐 a).
NAME_LIKE_TAGS = frozenset({"nr", "nrt", "nrfg", "nz", "a", "ng", "nt"})
# Parts of speech a name never has (verbs, adverbs, prepositions, ...).
NOT_NAME_TAGS = frozenset(
    {"v", "vd", "vn", "d", "p", "c", "u", "uj", "ul", "r", "m", "q", "ad", "f", "y", "e", "o"}
)
# A name before these is a name: 王小明说, 李建国表示, 陈秀英(14岁).
AFTER_NAME_ZH = re.compile(
    r"^(?:说|称|表示|告诉|承认|提到|介绍|反映|透露|回答|说明|解释|确认|今年|现年|年仅|\(\d|, ?\d|"
    r"同学|先生|女士|小姐|师傅|阿姨|经理|主管|厂长)"
)
PLACE_AFTER_ZH = re.compile(
    r"^(?:省|市|县|縣|区|區|镇|鎮|乡|鄉|村|街道|路|街|大道|工业区|人(?!员))"
)
CJK_RUN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")

_dictionary_lock = threading.Lock()
_dictionary: Dictionary | None = None


def dictionary_loaded() -> bool:
    return _dictionary is not None


def load_dictionary() -> Dictionary:
    """jieba's dictionary (`zh_dictionary`), built once (about 1 s) from its `dict.txt`."""
    global _dictionary
    if _dictionary is not None:
        return _dictionary
    with _dictionary_lock:
        if _dictionary is None:
            _dictionary = Dictionary(jieba_dict_file())
    return _dictionary


def _surname_at(token: str) -> str | None:
    if token[:2] in COMPOUND_SURNAMES:
        return token[:2]
    if token[:1] in SINGLE_SURNAMES:
        return token[:1]
    return None


def _given_char(token: str) -> bool:
    return len(token) == 1 and is_cjk(token) and token not in STOP_GIVEN


def _is_role(token: str) -> bool:
    return token in ROLE_WORDS_ZH or token[-1] in "员工长师" or token in TITLE_AFTER_ZH


def _known_name(token: str, dictionary: Dictionary) -> bool:
    """A word of jieba's dictionary tagged as a person's name that is one: a surname that is
    not also an everyday word and a two-character given name, and rare (jieba also tags 许可证,
    银行卡 and 安全检查 nr, but they are frequent words or begin with an everyday one)."""
    surname = _surname_at(token)
    return (
        surname is not None
        and surname not in AMBIGUOUS_SURNAMES
        and len(token) - len(surname) == 2
        and dictionary.tag(token).startswith("nr")
        and dictionary.frequency(token) < 100
        and dictionary.frequency(token[:2]) < 300  # not an everyday word and a character: 宿舍楼
        and all(ch not in STOP_GIVEN for ch in token[len(surname) :])
    )


def _chinese_names(run: str, offset: int, text: str) -> Iterator[Span]:
    dictionary = load_dictionary()
    tokens = dictionary.segment(run)
    starts = []
    position = 0
    for token in tokens:
        starts.append(position)
        position += len(token)
    i = 0
    while i < len(tokens):
        token = tokens[i]
        start = starts[i]
        found: tuple[int, int] | None = None
        surname = _surname_at(token)
        role = (
            surname is not None
            and ROLE_BEFORE_ZH.search(text, max(0, offset + start - 8), offset + start) is not None
        )
        following = tokens[i + 1] if i + 1 < len(tokens) else ""
        if surname is not None and token not in PLACES_ZH and token not in COMMON_WORDS:
            if len(token) == len(surname):
                # A surname on its own, then one or two characters of a given name (or 某).
                given = 0
                if following in ("某", "某某"):
                    given = 1
                elif following in TITLE_AFTER_ZH:
                    if role or token not in AMBIGUOUS_SURNAMES:
                        found = (start, start + len(token))
                elif _given_char(following):
                    given = 2 if i + 2 < len(tokens) and _given_char(tokens[i + 2]) else 1
                elif (
                    len(following) == 2
                    and is_cjk(following)
                    and following not in PLACES_ZH
                    and (following not in COMMON_WORDS or role)
                    and not _is_role(following)
                    and dictionary.tag(following, "nr") in NAME_LIKE_TAGS | {"t", "ns"}
                    and (dictionary.tag(following).startswith("nr") or role or len(surname) == 2)
                ):
                    given = 1
                if given:
                    end = i + 1 + given
                    after = run[starts[end - 1] + len(tokens[end - 1]) :]
                    plain = token not in AMBIGUOUS_SURNAMES
                    if (role or plain or AFTER_NAME_ZH.match(after)) and not PLACE_AFTER_ZH.match(
                        after
                    ):
                        found = (start, starts[end - 1] + len(tokens[end - 1]))
                        i = end - 1
            elif (
                token.endswith(TITLE_AFTER_ZH)
                and token[: len(surname)] == surname
                and (
                    len(token) - len(surname) in (1, 2) and token[len(surname) :] in TITLE_AFTER_ZH
                )
            ):
                found = (start, start + len(surname))  # 梁先生: the surname, not the title
            elif 2 <= len(token) <= 4 and not _is_role(token):
                # A word of the dictionary: a rare three-character name (王小明), or, after a
                # role word, any word that could be a name (主管高峰, 工人常乐): jieba tags many
                # ordinary two-character words nr (明白, 师傅).
                after = run[start + len(token) :]
                if (
                    _known_name(token, dictionary)
                    or (
                        (role or AFTER_NAME_ZH.match(after))
                        and dictionary.tag(token, "nr") in NAME_LIKE_TAGS
                        and token not in COMMON_WORDS
                    )
                ) and not PLACE_AFTER_ZH.match(after):
                    found = (start, start + len(token))
        if found is not None:
            yield offset + found[0], offset + found[1], "person"
        i += 1


# 小王, 老李: a surname called familiarly, before what people say or do.
FAMILIAR = re.compile(
    "(?:小|老)[王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶"
    "程苏魏吕丁沈姚卢姜崔钟谭陆汪范廖贾夏韦付邹孟熊秦邱尹薛闫段雷侯陶黎贺顾毛郝龚邵钱严覃武戴莫孔汤]"
    "(?=说|称|表示|是|在|和|、|,|。|也|的|告诉|承认|没有|负责|今年|每天|经常|让|要求|被)"
)


def chinese_names(text: str) -> Iterator[Span]:
    if CJK_RUN.search(text) is None:
        return
    for match in FAMILIAR.finditer(text):
        yield match.start(), match.end(), "person"
    for match in CJK_RUN.finditer(text):
        yield from _chinese_names(match.group(0), match.start(), text)


# ---- Latin script -------------------------------------------------------------------------------

_UPPER = "A-ZÀ-ÖØ-ÞĀ-ſƀ-ɏḀ-\u1eff"
_LOWER = "a-zß-öø-ÿĀ-ſƀ-ɏḀ-\u1eff"
NAME_WORD = rf"[{_UPPER}][{_LOWER}]+(?:[-'\u2019](?![sS]\b)[{_UPPER}]?[{_LOWER}]+)?"
# Particles inside names: Mohammed bin Salem, Nguyễn Thị Lan, Maria de la Cruz, Abdul Karim.
PARTICLE = r"(?:bin|binti|bint|van|von|der|de|la|da|dos|del|al|el|ibn|Thị|Thi|Văn|Van)"
NAME = rf"{NAME_WORD}(?:\s+(?:{PARTICLE}\s+)?{NAME_WORD}){{0,3}}"
TITLES = (
    r"(?:Mr|Mrs|Ms|Miss|Mx|Dr|Madam|Mdm|Sir|Prof|Mister|Ông|Bà|Anh|Chị|Cô|Chú|Bác|Em|Mme|Mlle|"
    r"Herr|Frau|Bapak|Pak|Ibu|Bu|Encik|Puan|Khun|Bay|Daw|U|Sri|Shri|Smt|Bey|Han\u0131m|"
    r"anh|chị|em|ông|bà|cô|chú|bác)"
)
ROLE_WORDS = (
    r"(?:worker|workers|employee|employees|operator|operators|supervisor|supervisors|"
    r"manager|managers|foreman|forewoman|forelady|team\s+leader|line\s+leader|line\s+chief|"
    r"leader|chief|head|director|owner|boss|officer|clerk|recruiter|agent|broker|guard|driver|"
    r"cleaner|cook|nurse|doctor|teacher|principal|auditor|auditors|assessor|interpreter|"
    r"translator|interviewee|witness|complainant|trainee|apprentice|intern|student|pupil|"
    r"child|children|boy|girl|minor|youth|son|daughter|mother|father|parent|guardian|brother|"
    r"sister|sisters|brothers|sons|daughters|girls|boys|mothers|siblings|twins|wife|husband|uncle|aunt|cousin|colleague|colleagues|co-worker|coworker|sewer|"
    r"machinist|packer|helper|contact|representative|rep|chairman|chairwoman|chairperson|"
    r"president|accountant|cashier|secretary|HR|contractor|subcontractor|sub-contractor|"
    r"landlord|tailor|weaver|labourer|laborer|middleman|sardar|caretaker|warden|matron|"
    r"merchandiser|inspector|technician|mechanic|electrician|storekeeper|receptionist|"
    r"trainer|coordinator|officer|executive|assistant|administrator|welfare\s+officer|"
    r"named|called|name|names|known\s+as|aka|a\.k\.a\.|signed\s+by|interviewed|"
    r"công\s+nhân|nhân\s+viên|tổ\s+trưởng|quản\s+lý|giám\s+đốc|em|cháu|con|tên(?:\s+là)?)"
)
_NAME_AFTER_TITLE = re.compile(rf"(?<![\w]){TITLES}\.?\s+(?P<name>{NAME})")
_NAME_AFTER_ROLE = re.compile(
    rf"(?<![\w])(?i:{ROLE_WORDS})(?:\s*[,:(]\s*|\s+)(?:(?i:is|was|of)\s+)?(?P<name>{NAME})"
)
_CHAINED = re.compile(rf"^(?:\s*,\s*|\s+(?:and|&|or|và)\s+|\s*,\s*(?:and|&)\s+)(?P<name>{NAME})")
_ANY_NAME = re.compile(rf"(?<![\w]){NAME}")
_WORD = re.compile(rf"{NAME_WORD}|{PARTICLE}")

MONTH_WORDS = frozenset(
    [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ]
)
VIET_SURNAMES = frozenset(
    [
        "Nguyễn",
        "Trần",
        "Lê",
        "Phạm",
        "Hoàng",
        "Huỳnh",
        "Phan",
        "Vũ",
        "Võ",
        "Đặng",
        "Bùi",
        "Đỗ",
        "Hồ",
        "Ngô",
        "Dương",
        "Lý",
        "Đinh",
        "Trương",
        "Lâm",
        "Đào",
        "Lưu",
        "Tạ",
        "Lương",
        "Quách",
        "Phùng",
        "Nguyen",
        "Tran",
        "Pham",
        "Hoang",
        "Huynh",
        "Dang",
        "Bui",
        "Duong",
        "Dinh",
        "Truong",
        "Luong",
    ]
)
VIET_MIDDLE = frozenset(
    ["Thị", "Văn", "Thi", "Van", "Hữu", "Đức", "Ngọc", "Minh", "Quang", "Xuân", "Thanh"]
)

# A pinyin syllable; a given name is one or two of them (Wei, Xiaoming, Xiao-Ming).
_SYLLABLE = (
    r"(?:zh|ch|sh|[bpmfdtnlgkhjqxrzcsyw])?"
    r"(?:iang|iong|uang|ueng|ang|eng|ing|ong|ian|iao|uai|uan|ai|ei|ao|ou|an|en|in|un|ia|ie|iu|"
    r"ua|uo|ui|ue|er|a|o|e|i|u|v|ü)"
)
PINYIN_WORD = re.compile(rf"(?i:{_SYLLABLE}(?:[-']?{_SYLLABLE})?)")


@cache
def _pinyin_surnames() -> frozenset[str]:
    return frozenset(
        [
            "wang",
            "li",
            "zhang",
            "liu",
            "chen",
            "yang",
            "huang",
            "zhao",
            "wu",
            "zhou",
            "xu",
            "sun",
            "ma",
            "zhu",
            "hu",
            "guo",
            "he",
            "gao",
            "lin",
            "luo",
            "zheng",
            "liang",
            "xie",
            "song",
            "tang",
            "han",
            "feng",
            "deng",
            "cao",
            "peng",
            "zeng",
            "xiao",
            "tian",
            "dong",
            "yuan",
            "pan",
            "yu",
            "jiang",
            "cai",
            "du",
            "ye",
            "cheng",
            "su",
            "wei",
            "lu",
            "ding",
            "ren",
            "shen",
            "yao",
            "cui",
            "zhong",
            "tan",
            "fan",
            "jin",
            "shi",
            "liao",
            "jia",
            "xia",
            "fu",
            "fang",
            "bai",
            "zou",
            "meng",
            "xiong",
            "qin",
            "qiu",
            "yin",
            "xue",
            "yan",
            "duan",
            "lei",
            "hou",
            "long",
            "tao",
            "gu",
            "mao",
            "hao",
            "gong",
            "shao",
            "qian",
            "dai",
            "mo",
            "kong",
            "xiang",
            "chang",
            "wen",
            "kang",
            "niu",
            "ge",
            "xing",
            "an",
            "qi",
            "yi",
            "qiao",
            "pang",
            "ni",
            "zhuang",
            "nie",
            "yue",
            "zhai",
            "zhan",
            "ou",
            "geng",
            "guan",
            "lan",
            "jiao",
            "zuo",
            "gan",
            "bao",
            "ning",
            "shang",
            "shu",
            "ruan",
            "ke",
            "ji",
            "mei",
            "tong",
            "ling",
            "bi",
            "shan",
            "pei",
            "huo",
            "tu",
            "miao",
            "sheng",
            "qu",
            "weng",
            "ran",
            "you",
            "xin",
            "chai",
            "hua",
            "pu",
            "teng",
            "rao",
            "mu",
            "ai",
            "si",
            "zhuo",
            "jian",
            "che",
            "lian",
            "ouyang",
            "situ",
            "zhuge",
            "sima",
            "chan",
            "chow",
            "chau",
            "cheung",
            "wong",
            "leung",
            "lau",
            "ng",
            "ho",
            "kwok",
            "tse",
            "tsang",
            "yip",
            "yeung",
            "lam",
            "kwan",
            "tam",
            "mak",
            "fung",
            "chiu",
            "lai",
            "siu",
            "hui",
            "ko",
            "szeto",
            "tsui",
            "lui",
            "chui",
            "pang",
            "lee",
        ]
    )


def _is_place(words: list[str]) -> bool:
    joined = unicodedata.normalize("NFC", "".join(words)).casefold()
    return joined in PLACES_LATIN or any(w.casefold() in PLACES_LATIN for w in words)


def _plain(word: str) -> bool:
    """A capitalised word that is an ordinary word, a month or a day, not a name."""
    folded = word.casefold()
    return folded in COMMON_WORDS or folded in MONTH_WORDS


# Capitalised words that end a name: what follows a name in an address or an organisation.
NAME_ENDS = frozenset(
    [
        "ltd",
        "limited",
        "co",
        "company",
        "factory",
        "garments",
        "garment",
        "apparel",
        "textiles",
        "textile",
        "group",
        "industrial",
        "industries",
        "road",
        "street",
        "district",
        "province",
        "city",
        "town",
        "village",
        "section",
        "line",
        "department",
        "office",
        "the",
        "and",
        "of",
        "in",
        "at",
        "on",
        "for",
        "from",
        "to",
        "with",
        "by",
    ]
)


def _trim(name: str, *, after_title: bool) -> str:
    """The name part of a match: its words up to the first ordinary word (after a title the
    first word counts whatever it is: Mr Long, Ms May). Once a name has begun, capitalised
    words go on with it (Hla Hla Win, Đặng Văn Long) up to a word that ends names."""
    words = _WORD.findall(name)
    kept: list[str] = []
    for number, word in enumerate(words):
        particle = re.fullmatch(PARTICLE, word) is not None
        if particle and kept:
            kept.append(word)
            continue
        if kept:
            if word.casefold() in NAME_ENDS or word.casefold() in MONTH_WORDS:
                break
            if word.casefold() in PLACES_LATIN:
                break
            kept.append(word)
            continue
        following = words[number + 1] if number + 1 < len(words) else ""
        name_follows = following in GIVEN_NAMES or (following != "" and not _plain(following))
        if (
            _plain(word)
            and not (after_title and number == 0)
            and word not in GIVEN_NAMES
            # An everyday word that is also a name, before a name: "daughter Bao Ngoc".
            and not (
                name_follows
                and word not in _TITLE_WORDS
                and word.casefold() not in NAME_ENDS
                and word.casefold() not in MONTH_WORDS
            )
        ):
            break
        if word.casefold() in PLACES_LATIN and not (after_title and number == 0):
            break
        kept.append(word)
    while kept and re.fullmatch(PARTICLE, kept[-1]):
        kept.pop()
    if not kept:
        return ""
    # The span of the kept words in the original (their separators as written).
    pattern = r"\s+".join(re.escape(w) for w in kept)
    found = re.match(pattern, name)
    return found.group(0) if found else ""


_TITLE_WORDS = frozenset(re.findall(r"[^\W\d_]+", TITLES.replace(r"\u0131", "\u0131")))
_ROLE_FIRST_WORDS = frozenset(
    re.match(r"[^\W\d_]+", alternative).group(0).casefold()  # type: ignore[union-attr]
    for alternative in ROLE_WORDS[3:-1].replace(r"(?:\s+là)?", "").split("|")
)
# Words of Latin letters (with Vietnamese ones): "WeChat号" holds the word "WeChat".
_WORDS = re.compile(r"[A-Za-z\u00c0-\u024f\u1e00-\u1eff]+")


def _latin_candidates(text: str) -> Iterator[tuple[int, str, bool]]:
    """Names after a title or a role word: the patterns are tried only where such a word
    begins (an alternation of a hundred words tried at every character is slow)."""
    for word in _WORDS.finditer(text):
        value = word.group(0)
        if value in _TITLE_WORDS:
            match = _NAME_AFTER_TITLE.match(text, word.start())
            if match is not None:
                yield match.start("name"), match.group("name"), True
        if value.casefold() in _ROLE_FIRST_WORDS:
            match = _NAME_AFTER_ROLE.match(text, word.start())
            if match is not None:
                yield match.start("name"), match.group("name"), False


def latin_names(text: str) -> Iterator[Span]:
    spans: list[Span] = []
    for start, candidate, after_title in _latin_candidates(text):
        name = _trim(candidate, after_title=after_title)
        if not name or _is_place(name.split()):
            continue
        spans.append((start, start + len(name), "person"))
        # "workers Rahim Uddin and Karim Mia": the names listed after the first.
        end = start + len(name)
        while chained := _CHAINED.match(text[end:]):
            more = _trim(chained.group("name"), after_title=False)
            if not more or _is_place(more.split()):
                break
            begin = end + chained.start("name")
            spans.append((begin, begin + len(more), "person"))
            end = begin + len(more)
    for match in _ANY_NAME.finditer(text):
        sequence = match.group(0)
        words = _WORD.findall(sequence)
        for k in range(len(words)):
            recognised = _recognised(words[k:])
            if recognised:
                # Capitalised words just before it belong to the name (Bao Ngoc, Siti Nurhaliza).
                while k > 0 and not (
                    _plain(words[k - 1])
                    or words[k - 1].casefold() in NAME_ENDS
                    or words[k - 1].casefold() in PLACES_LATIN
                    or words[k - 1] in _TITLE_WORDS
                    or words[k - 1].casefold() in _ROLE_FIRST_WORDS
                ):
                    k -= 1
                    recognised = [words[k], *recognised]
                where = re.search(r"\s+".join(re.escape(w) for w in recognised), sequence)
                if where:
                    begin = match.start() + where.start()
                    spans.append((begin, begin + len(where.group(0)), "person"))
                break
    yield from spans


def _recognised(words: list[str]) -> list[str]:
    """The leading words that make a name on their own: a known given name (and the capitalised
    words after it), a Vietnamese surname with its names, or a pinyin surname and given name."""
    if not words:
        return []
    first = words[0]
    folded = first.casefold()
    if not (
        first in GIVEN_NAMES
        or first in VIET_SURNAMES
        or (len(words) > 1 and PINYIN_WORD.fullmatch(first) and not _plain(first))
        or (len(words) > 1 and folded in _pinyin_surnames())
    ):
        return []
    rest = []
    for word in words[1:]:
        if word.casefold() in NAME_ENDS or word.casefold() in MONTH_WORDS:
            break
        if word.casefold() in PLACES_LATIN:
            break
        rest.append(word)
    if _is_place([first, *rest]) or _is_place([first]):
        return []
    if first in GIVEN_NAMES:
        return [first, *rest]
    if first in VIET_SURNAMES and rest:
        ascii_only = first.isascii()
        if not ascii_only or rest[0] in VIET_MIDDLE or not any(w.isascii() for w in rest):
            return [first, *rest]
        if ascii_only and len(rest) >= 2:
            return [first, *rest]
    if rest and first.casefold() in _pinyin_surnames() and PINYIN_WORD.fullmatch(first):
        given = [w for w in rest[:2] if PINYIN_WORD.fullmatch(w)]
        if (
            given
            and given == rest[: len(given)]
            and not (_plain(first) and all(_plain(w) for w in given))
        ):
            return [first, *given]
    # Given name first, as written in English: Xiaoming Wang, Meiling Chen.
    if (
        rest
        and PINYIN_WORD.fullmatch(first)
        and not _plain(first)
        and rest[0].casefold() in _pinyin_surnames()
        and len(first) >= 4
    ):
        return [first, rest[0]]
    return []


def people(text: str) -> Iterator[Span]:
    yield from chinese_names(text)
    yield from latin_names(text)
