"""Chinese text of the Q&A library (问答库): search terms, synonyms, and the bm25 sums.

Citizens ask in their own words: "社保断了" for 社会保险, "公租房" for 公共租赁住房, "好久" for
多久, reordered, with typos ("申清"). Entries and questions are cut into characters and the
pairs of adjacent characters (单字 + 二元组, within a run of letters and digits: punctuation
breaks a run), and questions are widened by the synonym and abbreviation table kept as data
(`deploy/qa/synonyms.json`). Measured, not assumed: on the first 155 entries and 310
questions of the evaluation set, with the same bm25, jieba's search-mode words reached
recall@1 0.66, words with characters 0.75, characters alone 0.77 and characters with pairs
0.79 — a typo or a dialect word breaks a word but keeps most of its characters and pairs, and
pairs keep the order that single characters lose. Adding jieba's words (with a dictionary of
314 district policy terms) to the pairs, at the weights tried (0.1 to 1), or trigrams (on
the whole set: 0.76 against 0.79), lowered recall, so no word segmenter is used; `jiedu bench --parts qa` keeps characters alone as its baseline.

Ranking is bm25 computed by Jiedu itself in whole numbers, so that SQLite and PostgreSQL rank
identically (`projections.qa_library` stores each posting's weight; `services.qa` sums them):

    score(d, q) = Σ_{t ∈ q ∩ d} idf(t) · tf(t, d)·(k1 + 1) / (tf(t, d) + k1·(1 − b + b·|d| / L))

with `L` a fixed pivot length (`PIVOT_LENGTH`) rather than the library's running average, so
that a posting's weight never changes when other entries come and go: the read model stays a
pure function of each entry's own events, and a rebuild gives what live processing gave.

Pure (the synonym table is read once, by `Analyser.from_files`).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from functools import lru_cache
from itertools import pairwise
from pathlib import Path

import orjson

DEPLOY_QA = Path(__file__).resolve().parents[1] / "deploy" / "qa"
SYNONYMS_FILE = DEPLOY_QA / "synonyms.json"

K1 = 1.2
B = 0.5
PIVOT_LENGTH = 200
"""`L` of the formula: about the number of terms of an entry's indexed text (question twice,
keywords, answer, policy title) in the evaluation set."""
WEIGHT_SCALE = 1000
"""A posting's weight, tf·(k1+1)/(tf+k1·(1−b+b·|d|/L)), is stored × this, as a whole number."""
IDF_SCALE = 1000
"""A query term's idf is used × this, as a whole number: scores are exact integer sums."""

STOP_CHARACTERS = frozenset("的了吗呢吧啊呀哦嘛么是我你在和与及或也都就又被把给对从到让个些着过请")
"""Single characters that say nothing of what is asked (虚词): not terms by themselves (they
still count in pairs, where "怎么" and "多少" say what kind of answer is wanted)."""

_RUN = re.compile(r"[^\W_]+")
"""A run of letters and digits (Han characters are letters)."""


class Analyser:
    """Cuts library text and questions into search terms, the same way for both."""

    def __init__(self, synonyms: Mapping[str, Sequence[str]] | None = None) -> None:
        self.synonyms = {k: tuple(v) for k, v in (synonyms or {}).items()}
        self.tokens = lru_cache(maxsize=65536)(self._tokens)

    @classmethod
    def from_files(cls, synonyms: Path = SYNONYMS_FILE) -> Analyser:
        """The district's analyser: the synonym table as kept in `deploy/qa/`."""
        return cls(read_synonyms(synonyms))

    def _tokens(self, text: str) -> tuple[str, ...]:
        """Search terms of `text`, in order (with repeats): each character but the stop
        characters, and each pair of adjacent characters within a run, lower case."""
        out: list[str] = []
        for run in _RUN.findall(text.lower()):
            out += (c for c in run if c not in STOP_CHARACTERS)
            out += (a + b for a, b in pairwise(run))
        return tuple(out)

    def query(self, question: str) -> tuple[tuple[str, ...], ...]:
        """The terms a question is searched by, in groups of alternatives: each of its own
        terms alone, except those of a synonym or abbreviation it contains, which form one
        group with the terms of what it stands for (社保 → 社会保险). A group counts as found
        when any of its terms is (see `coverage`)."""
        own = list(dict.fromkeys(self.tokens(question)))
        grouped: list[dict[str, None]] = []
        for key, expansions in self.synonyms.items():
            if key in question:
                group = dict.fromkeys(self.tokens(key))
                for expansion in expansions:
                    group.update(dict.fromkeys(self.tokens(expansion)))
                grouped.append(group)
        taken = {t for g in grouped for t in g}
        return tuple((t,) for t in own if t not in taken) + tuple(tuple(g) for g in grouped)


def read_synonyms(path: Path) -> dict[str, list[str]]:
    """`{"社保": ["社会保险"], …}`: what a citizen writes → what the library says."""
    loaded = orjson.loads(path.read_bytes())
    if not isinstance(loaded, dict) or not all(
        isinstance(k, str) and isinstance(v, list) and all(isinstance(s, str) for s in v)
        for k, v in loaded.items()
    ):
        raise ValueError(f"{path}: expected an object of term → list of terms")
    return loaded


# ── bm25 in whole numbers ────────────────────────────────────────────────────────────────────


def term_frequencies(tokens: Sequence[str]) -> dict[str, int]:
    return dict(Counter(tokens))


def posting_weight(tf: int, length: int) -> int:
    """The stored weight of a term that occurs `tf` times in an entry of `length` terms."""
    norm = K1 * (1 - B + B * length / PIVOT_LENGTH)
    return round(WEIGHT_SCALE * tf * (K1 + 1) / (tf + norm))


def idf(df: int, entries: int) -> int:
    """bm25's (always positive) inverse document frequency, × `IDF_SCALE`, for a term in `df`
    of `entries` entries; a term in none weighs most."""
    return round(IDF_SCALE * math.log(1 + (entries - df + 0.5) / (df + 0.5)))


def confidence(
    groups: Sequence[Sequence[str]], idfs: Mapping[str, int], found: Collection[str]
) -> float:
    """How sure the library is that an entry answers a question (0..1): the share of the
    question's weight in groups of which the entry holds a term, each group weighing its
    rarest term's idf. A word the library never uses weighs most, so a question about
    something else scores low even when its common words match. (Measured against the best
    hit's score over a perfect entry's, this declined twice as many answerable questions for
    the same share of unanswerable ones answered.)"""
    total = matched = 0
    for group in groups:
        weight = max(idfs[t] for t in group)
        total += weight
        if any(t in found for t in group):
            matched += weight
    return matched / total if total else 0.0
