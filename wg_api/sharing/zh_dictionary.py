"""jieba's Chinese dictionary, held compactly: its words' frequencies and parts of speech, and
its dictionary-only segmentation (`jieba.lcut(run, HMM=False)` for a run of Chinese characters).

jieba keeps its dictionary in Python dicts: `FREQ` (every word and every prefix of one, about
500,000 str -> int) and `posseg`'s part-of-speech table (349,000 str -> str); loaded, they cost
each API worker 165 MB resident, more than half of it. Here the same `dict.txt` (lines
`word freq tag`, found in jieba's package without importing jieba) becomes one `marisa_trie.Trie`
of its words (a static, succinct trie: 1.2 MB) and two arrays indexed by the trie's key ids, the
frequency and the part of speech (an index into the 55 tags): 3.2 MB in all.

Segmentation is jieba 0.42.1's `Tokenizer.get_DAG` and `Tokenizer.calc`, step for step: at each
position the words of the dictionary that start there (jieba walks its prefixes one character at
a time; the trie's prefix search finds the same words, so no zero-frequency prefixes are stored),
else the character alone; then, from the end, the route of highest `log(freq or 1) - log(total)`
sum, a tie going to the longer word as jieba's `max` over `(score, end)` tuples gives it. A word
listed twice keeps its last line, and both count in the total, as in jieba.
`tests/sharing/test_zh_dictionary.py` holds the segmentation and the lookups to jieba's own.

Built in the process, once per worker, in about 0.8 s (jieba took 2.2 s from its cache file): the
file is read twice as a stream of lines (the trie's keys, then the arrays), so no list of 349,000
entries is ever made. marisa's build itself leaves about 18 MB freed but kept by glibc's malloc,
which `malloc_trim` gives back. Measured, `python -c "import wg_api.app"` then `scrub.warm_up()`:
106 MB then 106 MB (jieba: 104 MB then 270 MB). A trie file cached under /tmp (the pods' only
writable place) and memory-mapped would spare each worker the second of CPU and share the 3 MB
between a pod's workers, but would need its own invalidation, locking and a builder whose heap is
then just as high; at 3 MB a worker not worth it.
"""

from __future__ import annotations

import ctypes
import importlib.util
from array import array
from collections.abc import Iterator
from math import log
from pathlib import Path

import marisa_trie


def jieba_dict_file() -> Path:
    """jieba's `dict.txt`, found without importing jieba (its import and its dictionary are what
    this module avoids)."""
    spec = importlib.util.find_spec("jieba")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the jieba package (its dict.txt) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "dict.txt"


def _entries(path: Path) -> Iterator[tuple[str, str, str]]:
    """(word, freq, tag) of each line, parsed as jieba parses them (`strip`, then split on
    single spaces)."""
    with path.open("rb") as lines:
        for line in lines:
            text = line.strip().decode("utf-8")
            if text:
                word, freq, tag = text.split(" ")
                yield word, freq, tag


def _release_freed_memory() -> None:
    """Hand the pages glibc's malloc keeps after the trie's build back to the system (glibc's
    `malloc_trim`; elsewhere, as on musl, nothing)."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return
    trim(0)


class Dictionary:
    """The words of a jieba dictionary file, their frequencies and tags; read-only."""

    def __init__(self, path: Path) -> None:
        self._trie = marisa_trie.Trie(word for word, _, _ in _entries(path))
        size = len(self._trie)
        self._freq = array("I", bytes(size * array("I").itemsize))
        self._tag = array("H", bytes(size * array("H").itemsize))
        tags: dict[str, int] = {}
        total = 0
        longest = 1
        key_id = self._trie.key_id
        for word, freq, tag in _entries(path):
            key = key_id(word)
            count = int(freq)
            # A word listed twice keeps its last line, but both count in the total, as in jieba.
            self._freq[key] = count
            self._tag[key] = tags.setdefault(tag, len(tags))
            total += count
            longest = max(longest, len(word))
        self._tags = tuple(tags)
        self.total = total
        self._log_total = log(total)
        self._longest = longest
        _release_freed_memory()

    def frequency(self, word: str) -> int:
        """The word's frequency, 0 for a word not in the dictionary (`FREQ.get(word, 0)`)."""
        key = self._trie.get(word)
        return 0 if key is None else int(self._freq[key])

    def tag(self, word: str, default: str = "") -> str:
        """The word's part of speech, or `default` for a word not in the dictionary (jieba's
        `posseg.dt.word_tag_tab.get(word, default)`)."""
        key = self._trie.get(word)
        return default if key is None else self._tags[self._tag[key]]

    def segment(self, run: str) -> list[str]:
        """jieba's segmentation of `run` by its dictionary alone (`lcut(run, HMM=False)` for a run
        of Chinese characters): `get_DAG` and `calc`, then the route from the start."""
        n = len(run)
        score = [0.0] * (n + 1)
        end = [0] * (n + 1)
        prefixes = self._trie.iter_prefixes_with_ids
        frequencies = self._freq
        log_total = self._log_total
        longest = self._longest
        for start in range(n - 1, -1, -1):
            best_score = 0.0
            best_end = -1
            for word, key in prefixes(run[start : start + longest]):
                freq = frequencies[key]
                if freq:
                    last = start + len(word) - 1
                    candidate = log(freq) - log_total + score[last + 1]
                    if best_end < 0 or (candidate, last) > (best_score, best_end):
                        best_score, best_end = candidate, last
            if best_end < 0:
                # No word starts here: the character alone, at jieba's `log(1)`.
                best_score, best_end = log(1) - log_total + score[start + 1], start
            score[start] = best_score
            end[start] = best_end
        tokens = []
        position = 0
        while position < n:
            following = end[position] + 1
            tokens.append(run[position:following])
            position = following
        return tokens
