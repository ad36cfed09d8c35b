"""The compact dictionary (`wg_api.sharing.zh_dictionary`) against jieba itself: the same
segmentation of every run of Chinese characters of our corpora and of generated text, the same
frequencies and parts of speech for every word and prefix jieba knows and for words it does not.
jieba is imported here only (tests), as the reference."""

from __future__ import annotations

import logging
import random
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from wg_api.sharing.pii_names import CJK_RUN, load_dictionary
from wg_api.sharing.words import DATA
from wg_api.sharing.zh_dictionary import Dictionary, jieba_dict_file

TESTS = Path(__file__).parent
# jieba's cut() treats only these as Chinese (re_han_default); CJK_RUN is wider.
JIEBA_HAN = "\u4e00-\u9fd5"


def _jieba() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its modules raise SyntaxWarnings on import
        import jieba  # type: ignore[import-untyped]
        import jieba.posseg  # type: ignore[import-untyped]

    jieba.setLogLevel(logging.ERROR)
    return jieba


@pytest.fixture(scope="module")
def jieba() -> Any:
    module = _jieba()
    module.dt.initialize()
    return module


def reference_segment(tokenizer: Any, run: str) -> list[str]:
    """What pii_names segmented with before: jieba's get_DAG and calc on the whole run."""
    route: dict[int, tuple[float, int]] = {}
    tokenizer.calc(run, tokenizer.get_DAG(run), route)
    tokens, position = [], 0
    while position < len(run):
        end = route[position][1] + 1
        tokens.append(run[position:end])
        position = end
    return tokens


def corpus_runs() -> Iterator[str]:
    """Every run of Chinese characters in the scrubbing corpus, the word lists and the tests."""
    paths = [*(TESTS / "corpus").glob("*.txt"), *DATA.glob("*.txt"), *TESTS.glob("test_*.py")]
    for path in sorted(paths):
        for match in CJK_RUN.finditer(path.read_text(encoding="utf-8")):
            yield match.group(0)


def dictionary_words() -> list[str]:
    with jieba_dict_file().open(encoding="utf-8") as lines:
        return [line.split(" ")[0] for line in lines]


def generated_runs(count: int, seed: int) -> list[str]:
    """Runs of dictionary words, pieces of words cut across and characters jieba has no word
    for (CJK extension A, compatibility ideographs, beyond jieba's range), seeded."""
    rng = random.Random(seed)
    words = [w for w in dictionary_words() if CJK_RUN.fullmatch(w)]
    rare = [chr(c) for c in (*range(0x3400, 0x3420), *range(0x9FD6, 0x9FE0), 0xF900, 0xFA10)]
    runs = []
    for _ in range(count):
        pieces = []
        for _ in range(rng.randint(1, 12)):
            word = rng.choice(words)
            kind = rng.random()
            if kind < 0.6:
                pieces.append(word)
            elif kind < 0.8:
                cut = rng.randint(0, len(word))
                pieces.append(word[cut:] if rng.random() < 0.5 else word[:cut])
            elif kind < 0.9:
                pieces.append(rng.choice(rare))
            else:
                pieces.append(chr(rng.randint(0x4E00, 0x9FD5)))
        if run := "".join(pieces):
            runs.append(run)
    return runs


def test_segmentation_is_jiebas_on_the_corpora(jieba: Any) -> None:
    dictionary = load_dictionary()
    runs = sorted(set(corpus_runs()))
    assert len(runs) > 3000  # the word lists alone give 3,000
    words = 0
    for run in runs:
        tokens = dictionary.segment(run)
        assert tokens == reference_segment(jieba.dt, run), run
        if all(JIEBA_HAN[0] <= ch <= JIEBA_HAN[-1] for ch in run):
            assert tokens == jieba.lcut(run, HMM=False), run
        words += sum(len(token) > 1 for token in tokens)
    assert words > 1000


def test_segmentation_is_jiebas_on_generated_text(jieba: Any) -> None:
    dictionary = load_dictionary()
    for run in generated_runs(4000, seed=15):
        tokens = dictionary.segment(run)
        assert tokens == reference_segment(jieba.dt, run), run
        if all(JIEBA_HAN[0] <= ch <= JIEBA_HAN[-1] for ch in run):
            assert tokens == jieba.lcut(run, HMM=False), run
        assert "".join(tokens) == run


def test_lookups_are_jiebas(jieba: Any) -> None:
    dictionary = load_dictionary()
    frequencies: dict[str, int] = jieba.dt.FREQ
    tags: dict[str, str] = jieba.posseg.dt.word_tag_tab
    assert dictionary.total == jieba.dt.total
    assert len(tags) > 300_000
    # Every word and every prefix jieba holds (prefixes at 0), with and without a tag.
    for word, frequency in frequencies.items():
        assert dictionary.frequency(word) == frequency, word
        assert dictionary.tag(word, "?") == tags.get(word, "?"), word
    assert set(tags) <= set(frequencies)
    # Words it does not hold: dictionary words with a character more or less in front.
    rng = random.Random(15)
    absent = 0
    for word in rng.sample(sorted(tags), 20_000):
        for other in (word + rng.choice("的了者们"), "㐀" + word, word[1:]):
            assert dictionary.frequency(other) == frequencies.get(other, 0), other
            assert dictionary.tag(other) == tags.get(other, ""), other
            absent += other not in frequencies
    assert absent > 10_000


def jieba_on(path: Path, cache: Path) -> tuple[Any, dict[str, str]]:
    """jieba's tokenizer and part-of-speech table for a dictionary file of our own."""
    jieba = _jieba()
    tokenizer = jieba.Tokenizer(str(path))
    tokenizer.tmp_dir = str(cache)  # its cache file
    tokenizer.initialize()
    return tokenizer, jieba.posseg.POSTokenizer(tokenizer).word_tag_tab


@pytest.mark.parametrize(
    ("lines", "run", "expected"),
    [
        # A word listed twice (the last line wins, both count in the total), a word at frequency
        # 0 (tagged, never a segment) and a line with spaces around it.
        (
            "工厂 30 n\n工人 20 n\n工 5 n\n厂 4 n\n人 50 n\n工人 40 nr\n"
            "童工 0 n\n童 3 ng\n  加班 12 v \n加 7 v\n班 6 n\n",
            "童工工厂工人加班",
            ["童", "工", "工厂", "工人", "加班"],
        ),
        # A tie (log 3 + log 3 - 2 log 9 == log 1 - log 9): the longer word, as jieba's max.
        ("甲乙 1 n\n甲 3 n\n乙 3 n\n丙 2 n\n", "甲乙", ["甲乙"]),
        # A character no word starts with counts as frequency 1: 1/150 beats 100/150 * 1/150.
        ("甲乙 1 n\n甲 100 n\n丙 49 n\n", "甲乙", ["甲乙"]),
    ],
)
def test_a_dictionary_of_our_own_reads_as_jieba_reads_it(
    tmp_path: Path, lines: str, run: str, expected: list[str]
) -> None:
    path = tmp_path / "dict.txt"
    path.write_text(lines, encoding="utf-8")
    tokenizer, tags = jieba_on(path, tmp_path)
    dictionary = Dictionary(path)

    assert dictionary.total == tokenizer.total
    words = {line.split()[0] for line in lines.splitlines()}
    others = {a + b for a in words for b in words} | {w[:1] for w in words} | {"x", "乙丙丁"}
    for word in sorted(words | others):
        assert dictionary.frequency(word) == tokenizer.FREQ.get(word, 0), word
        assert dictionary.tag(word) == tags.get(word, ""), word
    for other in sorted(others):
        for text in (other, other + run, run + other):
            assert dictionary.segment(text) == reference_segment(tokenizer, text), text
            assert dictionary.segment(text) == tokenizer.lcut(text, HMM=False), text
    assert dictionary.segment(run) == tokenizer.lcut(run, HMM=False) == expected


def test_a_word_listed_twice_keeps_its_last_line(tmp_path: Path) -> None:
    path = tmp_path / "dict.txt"
    path.write_text("工人 20 n\n童工 0 n\n工人 40 nr\n", encoding="utf-8")
    dictionary = Dictionary(path)
    assert (dictionary.frequency("工人"), dictionary.tag("工人")) == (40, "nr")
    assert (dictionary.frequency("童工"), dictionary.tag("童工")) == (0, "n")
    assert dictionary.total == 60
    assert dictionary.segment("童工人") == ["童", "工人"]
