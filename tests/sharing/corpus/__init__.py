"""The labelled scrubbing corpus: realistic, fictional audit sentences in English, Chinese and
Vietnamese (`en.txt`, `zh.txt`, `vi.txt`, and `holdout.txt`, `holdout2.txt`: sentences written
after the scrubber was tuned, measured once as they were, then kept), one a line, each personal
or identifying detail marked inline as `{{kind:text}}` (`\\uXXXX` writes an invisible character).
`load()` strips the markup into spans; `evaluate()` scrubs every sentence with the fixed terms
below and counts what was caught (every character of a span inside a redaction, whatever kind the
scrubber gave it) and which other words were redacted. Used by tests/sharing/test_scrub_corpus.py
and `python -m bench.scrub`.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from pathlib import Path

from wg_api.sharing.scrub import KINDS, ScrubTerms, redactions

HERE = Path(__file__).parent
LANGUAGES = ("en", "zh", "vi", "holdout", "holdout2")
MARK = re.compile(r"\{\{(?P<kind>[a-z_]+):(?P<text>.+?)\}\}")

# The group's member tenants (names, slugs, aliases), the contributor's people and references.
MEMBERS = (
    ("Kestrel Apparel Ltd", "kestrel-apparel", ("KAL", "凯斯特服装", "Kestrel Kids")),
    ("Osprey Outdoor GmbH", "osprey-outdoor", ("鱼鹰户外",)),
    ("Nordlys Kläder AB", "nordlys", ("Nordlys Kids",)),
    ("Plover & Finch Co., Ltd.", "plover-finch", ()),
)
PEOPLE = ("Chen Meiling", "李美玲", "Sofia Lindqvist", "Jonas Berg")
REFERENCES = ("KA-2024-0117", "SUP-88123", "SMETA-4471203")
TERMS = ScrubTerms(
    organisations=tuple(n for name, slug, aliases in MEMBERS for n in (name, slug, *aliases)),
    people=PEOPLE,
    references=REFERENCES,
)
# Must be caught whole, every one; people's names at 98 % at least.
STRICT_KINDS = tuple(k for k in KINDS if k != "person")
PERSON_RECALL = 0.98
FALSE_POSITIVE_RATE = 0.05
WORD = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|[^\W_]+")


@dataclasses.dataclass(frozen=True)
class Sentence:
    language: str
    line: int
    text: str
    spans: tuple[tuple[int, int, str], ...]


def _unescape(line: str) -> str:
    return re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), line)


def parse(line: str) -> tuple[str, tuple[tuple[int, int, str], ...]]:
    text, spans, position = "", [], 0
    for match in MARK.finditer(line):
        text += _unescape(line[position : match.start()])
        inner = _unescape(match.group("text"))
        spans.append((len(text), len(text) + len(inner), match.group("kind")))
        text += inner
        position = match.end()
    text += _unescape(line[position:])
    return text, tuple(spans)


def load() -> list[Sentence]:
    sentences = []
    for language in LANGUAGES:
        lines = (HERE / f"{language}.txt").read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, 1):
            if line.strip() and not line.startswith("#"):
                text, spans = parse(line)
                for _, _, kind in spans:
                    assert kind in KINDS, (language, number, kind)
                sentences.append(Sentence(language, number, text, spans))
    return sentences


@dataclasses.dataclass
class Figures:
    sentences: int = 0
    spans: Counter[str] = dataclasses.field(default_factory=Counter)
    caught: Counter[str] = dataclasses.field(default_factory=Counter)
    same_kind: Counter[str] = dataclasses.field(default_factory=Counter)
    words: int = 0
    redacted_words: int = 0
    missed: list[str] = dataclasses.field(default_factory=list)
    over: list[str] = dataclasses.field(default_factory=list)
    chars: int = 0

    def recall(self, kind: str) -> float:
        return self.caught[kind] / self.spans[kind] if self.spans[kind] else 1.0

    @property
    def false_positive_rate(self) -> float:
        return self.redacted_words / self.words if self.words else 0.0

    def failures(self) -> list[str]:
        failed = [
            f"{kind}: {self.caught[kind]}/{self.spans[kind]}"
            for kind in STRICT_KINDS
            if self.caught[kind] < self.spans[kind]
        ]
        if self.recall("person") < PERSON_RECALL:
            failed.append(f"person: {self.recall('person'):.1%} < {PERSON_RECALL:.0%}")
        if self.false_positive_rate >= FALSE_POSITIVE_RATE:
            failed.append(f"other words redacted: {self.false_positive_rate:.1%}")
        return failed

    def table(self) -> str:
        rows = [f"{'kind':<14}{'spans':>7}{'caught':>8}{'recall':>9}{'same kind':>11}"]
        for kind in KINDS:
            if self.spans[kind]:
                rows.append(
                    f"{kind:<14}{self.spans[kind]:>7}{self.caught[kind]:>8}"
                    f"{self.recall(kind):>9.1%}{self.same_kind[kind]:>11}"
                )
        rows.append(
            f"other words redacted: {self.redacted_words}/{self.words} "
            f"({self.false_positive_rate:.2%})"
        )
        return "\n".join(rows)


def evaluate(sentences: list[Sentence] | None = None, terms: ScrubTerms = TERMS) -> Figures:
    figures = Figures()
    for sentence in sentences if sentences is not None else load():
        figures.sentences += 1
        figures.chars += len(sentence.text.encode())
        text, found = redactions(sentence.text, terms)
        assert text == sentence.text, "the corpus is written in NFC"
        covered = [False] * len(text)
        kinds: list[str | None] = [None] * len(text)
        for start, end, kind in found:
            for i in range(start, end):
                covered[i] = True
                kinds[i] = kind
        where = f"{sentence.language}:{sentence.line}"
        for start, end, kind in sentence.spans:
            figures.spans[kind] += 1
            inside = [i for i in range(start, end) if not text[i].isspace()]
            if all(covered[i] for i in inside):
                figures.caught[kind] += 1
                if all(kinds[i] == kind for i in inside):
                    figures.same_kind[kind] += 1
            else:
                figures.missed.append(f"{where} {kind}: {text[start:end]!r} in {text!r}")
        labelled = [False] * len(text)
        for start, end, _ in sentence.spans:
            for i in range(start, end):
                labelled[i] = True
        for word in WORD.finditer(text):
            if any(labelled[word.start() : word.end()]):
                continue
            figures.words += 1
            if any(covered[word.start() : word.end()]):
                figures.redacted_words += 1
                figures.over.append(f"{where}: {word.group(0)!r} in {text!r}")
    return figures
