"""The labelled corpus (tests/sharing/corpus): every identifier, contact, date, age and
organisation caught, at least 98 % of people's names, and fewer than 5 % of the other words
redacted. On failure the per-kind figures and what slipped through are printed."""

from __future__ import annotations

from tests.sharing.corpus import evaluate, load


def test_the_corpus_is_big_enough_and_well_formed():
    sentences = load()
    assert len(sentences) >= 300
    assert {s.language for s in sentences} == {"en", "zh", "vi", "holdout", "holdout2"}
    assert sum(bool(s.spans) for s in sentences) >= 150
    assert sum(not s.spans for s in sentences) >= 100


def test_the_scrubber_meets_the_corpus_figures():
    figures = evaluate()
    report = "\n".join([figures.table(), "missed:", *figures.missed, "over:", *figures.over])
    assert figures.failures() == [], report
