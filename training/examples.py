"""Training examples for the reader: SQuAD 1.0 questions, and the unanswerable ones we make from them.

SQuAD 1.0 has no unanswerable questions, so negatives are made, four kinds in equal shares:
- near misses in the passage: the question's own paragraph with the answer sentence cut out;
- near misses in the question: one name or number swapped for another of the same article that the
  paragraph never mentions (SQuAD 2.0's entity-swap questions);
- the paragraph of the same article that shares most of the question's words;
- a question about something the article never mentions: the question asked against the most
  similar paragraph of another article (what users mostly ask that an article does not answer).
A question whose answer occurs several times is labelled at the occurrence nearest its words.
Every random choice depends only on the seed and the example's position, so training resumes exactly.
"""

from __future__ import annotations

import gzip
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

from article_qa.index.sentences import sentence_spans
from article_qa.qa.words import QUESTION_FUNCTION_WORDS

NEGATIVE_KINDS = (
    "answer sentence removed",
    "entity swapped in the question",
    "most similar other paragraph",
    "question from another article",
)
# SQuAD 2.0's other near misses (see `negated`, `antonym_swapped`); the calibration set has them, and
# `training.reader --negative-kinds` can train on them too.
NEAR_MISS_KINDS = ("negation added", "antonym")
# A SQuAD 2.0 question its writer made to look answerable from the paragraph (`--pool`): the real
# near misses (role reversals, impossible conditions, ...) that no made-up kind imitates.
PEOPLE_WRITTEN = "people-written unanswerable"
_WORD = re.compile(r"\w+")
_STOP = QUESTION_FUNCTION_WORDS
_NAME = re.compile(r"(?<!^)(?<![.?!] )\b(?:[A-Z][\w'-]+)(?: (?:of |de |the )?[A-Z][\w'-]+)*|\b\d[\d,.]*\b")
OTHER_ARTICLE_SAMPLE = 24  # paragraphs of other articles to choose the most similar from


@dataclass(frozen=True)
class Example:
    question: str
    context: str
    answer_start: int  # -1 for "the paragraph does not say"
    answer_text: str
    kind: str = "answerable"


@dataclass(frozen=True)
class Item:
    """One answerable SQuAD question and where it stands."""

    article: int
    paragraph: int
    qa: dict


def content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


def load_articles(path: Path) -> list[list[dict]]:
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        data = json.load(f)["data"]
    return [article["paragraphs"] for article in data]


def question_items(articles: list[list[dict]], skip_articles: frozenset[int] = frozenset(),
                   unanswerable: bool = False) -> list[Item]:
    """Every answerable question, except those of `skip_articles` (held out for calibration);
    with `unanswerable`, SQuAD 2.0's unanswerable questions too."""
    return [
        Item(a, p, qa)
        for a, paragraphs in enumerate(articles) if a not in skip_articles
        for p, paragraph in enumerate(paragraphs)
        for qa in paragraph["qas"]
        if (qa.get("answers") and not qa.get("is_impossible")) or (unanswerable and qa.get("is_impossible"))
    ]


def held_out_articles(n_articles: int, count: int, seed: int) -> frozenset[int]:
    """Articles the reader never trains on: the confidence calibrator is fitted on them, so its
    probabilities describe questions the reader has not seen, as a user's are."""
    if count <= 0:
        return frozenset()
    return frozenset(random.Random(f"holdout-{seed}").sample(range(n_articles), min(count, n_articles)))


def epoch_order(n_items: int, position: int, seed: int) -> int:
    """Which item the example at `position` is: each pass over the data has its own shuffle."""
    epoch, offset = divmod(position, n_items)
    order = _permutation(n_items, seed, epoch)
    return order[offset]


_PERMUTATIONS: dict[tuple[int, int, int], list[int]] = {}


def _permutation(n: int, seed: int, epoch: int) -> list[int]:
    key = (n, seed, epoch)
    if key not in _PERMUTATIONS:
        order = list(range(n))
        random.Random(seed if epoch == 0 else f"{seed}-epoch-{epoch}").shuffle(order)
        _PERMUTATIONS.clear()
        _PERMUTATIONS[key] = order
    return _PERMUTATIONS[key]


def best_occurrence(context: str, answer: str, guessed_start: int, question: str) -> int:
    """Start of the occurrence of `answer` closest to the question's words in the paragraph.

    Each question word found in the paragraph adds 1 / (1 + its distance in words from the
    occurrence), so words right next to an occurrence count most.
    """
    starts = [m.start() for m in re.finditer(re.escape(answer), context)]
    if len(starts) <= 1:
        return starts[0] if starts else guessed_start
    q_words = content_words(question)
    words = [(m.start(), m.group().lower()) for m in _WORD.finditer(context)]
    positions: dict[str, list[int]] = {}
    for i, (_, word) in enumerate(words):
        if word in q_words:
            positions.setdefault(word, []).append(i)

    def closeness(start: int) -> float:
        at = next((i for i, (offset, _) in enumerate(words) if offset >= start), len(words))
        return sum(1.0 / (1 + min(abs(p - at) for p in ps)) for ps in positions.values())

    return max(starts, key=lambda s: (closeness(s), -s))


def make_example(articles: list[list[dict]], item: Item, rng: random.Random, negative_rate: float,
                 kinds: tuple[str, ...] = NEGATIVE_KINDS) -> Example:
    """The item as an answerable example, or (with probability `negative_rate`) a negative of one
    of `kinds` drawn evenly; a kind that cannot be made for this item falls back to the next."""
    context = articles[item.article][item.paragraph]["context"]
    question = item.qa["question"]
    if item.qa.get("is_impossible"):
        return Example(question, context, -1, "", PEOPLE_WRITTEN)
    answer = item.qa["answers"][0]
    start = best_occurrence(context, answer["text"], answer["answer_start"], question)
    if rng.random() >= negative_rate:
        return Example(question, context, start, answer["text"])
    first = rng.randrange(len(kinds))
    for k in range(len(kinds)):
        kind = kinds[(first + k) % len(kinds)]
        negative = _negative(kind, articles, item, context, start, answer["text"], rng)
        if negative is not None:
            return negative
    return Example(question, context, start, answer["text"])


def _negative(kind, articles, item: Item, context, start, answer, rng) -> Example | None:
    question = item.qa["question"]
    paragraphs = articles[item.article]
    if kind == "answer sentence removed":
        cut = without_answer_sentence(context, start, start + len(answer))
        if cut and answer not in cut:
            return Example(question, cut, -1, "", kind)
    elif kind == "entity swapped in the question":
        swapped = swap_entity(question, context, paragraphs, item.paragraph, rng)
        if swapped is not None:
            return Example(swapped, context, -1, "", kind)
    elif kind == "negation added":
        negative = negated(question)
        if negative is not None:
            return Example(negative, context, -1, "", kind)
    elif kind == "antonym":
        swapped = antonym_swapped(question, context)
        if swapped is not None:
            return Example(swapped, context, -1, "", kind)
    elif kind == "most similar other paragraph":
        candidates = [(i, par["context"]) for i, par in enumerate(paragraphs) if i != item.paragraph]
        other = most_overlapping(question, answer, candidates)
        if other is not None:
            return Example(question, other, -1, "", kind)
    else:
        sample = []
        for _ in range(OTHER_ARTICLE_SAMPLE):
            a = rng.randrange(len(articles))
            if a != item.article and articles[a]:
                p = rng.randrange(len(articles[a]))
                sample.append((p, articles[a][p]["context"]))
        other = most_overlapping(question, answer, sample)
        if other is not None:
            return Example(question, other, -1, "", kind)
    return None


def swap_entity(question: str, context: str, paragraphs, own: int, rng: random.Random) -> str | None:
    """The question with one name or number replaced by one from another paragraph of the same
    article that its own paragraph never mentions: a plausible question the paragraph cannot
    answer, like SQuAD 2.0's entity-swap questions (a fifth of its unanswerable ones)."""
    targets = [m for m in _NAME.finditer(question)]
    if not targets:
        return None
    target = rng.choice(targets)
    is_number = target.group()[0].isdigit()
    lowered = context.lower()
    pool = sorted({
        m.group()
        for i, par in enumerate(paragraphs) if i != own
        for m in _NAME.finditer(par["context"])
        if m.group()[0].isdigit() == is_number and m.group().lower() not in lowered
    })
    if not pool:
        return None
    replacement = rng.choice(pool)
    return question[: target.start()] + replacement + question[target.end():]


def without_answer_sentence(context: str, start: int, end: int) -> str:
    kept = [context[s:e] for s, e in sentence_spans(context) if e <= start or s >= end]
    return " ".join(kept)


def most_overlapping(question: str, answer: str, candidates: list[tuple[int, str]]) -> str | None:
    """The candidate paragraph sharing most of the question's words, among those that do not
    contain the answer."""
    q_words = content_words(question)
    scored = [
        (len(q_words & content_words(text)), -i, text)
        for i, text in candidates
        if answer.lower() not in text.lower()
    ]
    if not scored:
        return None
    return max(scored)[2]


def encode_example(tokenizer, ex: Example, max_length: int, rng: random.Random):
    """One window of `ex` as token ids plus start/end labels (0, 0 = no answer)."""
    enc = tokenizer(
        ex.question,
        ex.context,
        truncation="only_second",
        max_length=max_length,
        stride=max_length // 3,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
    )
    windows = []
    for w in range(len(enc["input_ids"])):
        seq = enc.sequence_ids(w)
        offsets = enc["offset_mapping"][w]
        ctx = [i for i, s in enumerate(seq) if s == 1]
        if not ctx:
            continue
        if ex.answer_start < 0:
            windows.append((w, 0, 0))
            continue
        a_start, a_end = ex.answer_start, ex.answer_start + len(ex.answer_text)
        if offsets[ctx[0]][0] > a_start or offsets[ctx[-1]][1] < a_end:
            continue
        s = next(i for i in ctx if offsets[i][1] > a_start)
        e = next(i for i in reversed(ctx) if offsets[i][0] < a_end)
        windows.append((w, s, e))
    if not windows:
        return None
    w, s, e = rng.choice(windows)
    return enc["input_ids"][w], enc["token_type_ids"][w], s, e


# SQuAD 2.0's other near misses (Rajpurkar et al. 2018): a negation added (9% of its unanswerable
# questions) or a word replaced by its antonym (20%), so that the passage's sentence still matches
# the question word for word while no longer answering it.
_NEGATED_AUX = {
    "is": "isn't", "are": "aren't", "was": "wasn't", "were": "weren't", "did": "didn't", "does": "doesn't",
    "do": "don't", "has": "hasn't", "have": "haven't", "had": "hadn't", "can": "can't", "could": "couldn't",
    "will": "won't", "would": "wouldn't", "should": "shouldn't",
}
_AUX_NEAR_START = re.compile(
    r"^((?:(?:in|on|at|for|by|from|to|during|of|after|before) )?"
    r"(?:what|who|whom|which|when|where|why|how)(?: [\w'-]+){0,3}? )(" + "|".join(_NEGATED_AUX) + r")\b",
    re.IGNORECASE,
)
_ANTONYMS = dict(
    pair
    for a, b in (
        ("first", "last"), ("largest", "smallest"), ("biggest", "smallest"), ("highest", "lowest"),
        ("most", "least"), ("earliest", "latest"), ("before", "after"), ("increase", "decrease"),
        ("increased", "decreased"), ("won", "lost"), ("win", "lose"), ("north", "south"), ("east", "west"),
        ("northern", "southern"), ("eastern", "western"), ("longest", "shortest"), ("oldest", "youngest"),
        ("maximum", "minimum"), ("major", "minor"), ("inside", "outside"), ("above", "below"),
        ("more", "less"), ("best", "worst"), ("began", "ended"), ("start", "end"), ("started", "ended"),
        ("open", "closed"), ("opened", "closed"), ("accepted", "rejected"), ("allowed", "banned"),
        ("public", "private"), ("ancient", "modern"), ("upper", "lower"), ("early", "late"),
        ("strongest", "weakest"), ("richest", "poorest"), ("cheapest", "most expensive"),
        ("supported", "opposed"), ("entered", "left"), ("arrived", "departed"), ("born", "died"),
    )
    for pair in ((a, b), (b, a))
)


def negated(question: str) -> str | None:
    """The question with its auxiliary verb negated ("What did X announce?" → "What didn't X
    announce?"), or None when it has no auxiliary near its start or already holds a negation."""
    if re.search(r"\b(?:not|never|no)\b|n't\b", question, re.IGNORECASE):
        return None
    m = _AUX_NEAR_START.match(question)
    if not m:
        return None
    aux = m.group(2)
    replacement = _NEGATED_AUX[aux.lower()]
    if aux[0].isupper():
        replacement = replacement.capitalize()
    return question[: m.start(2)] + replacement + question[m.end(2):]


def antonym_swapped(question: str, context: str) -> str | None:
    """The question with one word replaced by its antonym that the context never uses ("the first
    emperor" → "the last emperor"), or None when it has no such word."""
    lowered = context.lower()
    if re.search(r"\bor\b", question, re.IGNORECASE):
        return None  # "did it increase or decrease?" asks both ways
    for m in _WORD.finditer(question):
        word = m.group()
        opposite = _ANTONYMS.get(word.lower())
        if opposite and not re.search(rf"\b{re.escape(opposite)}\b", lowered + " " + question.lower()):
            if word[0].isupper():
                opposite = opposite.capitalize()
            return question[: m.start()] + opposite + question[m.end():]
    return None
