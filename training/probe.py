"""A quick look at a reader while it trains: questions of held-out articles, read in their own
paragraph (no retrieval), scored as HasAns F1 (best span, never abstaining) and as how well the
no-answer margin separates answerable from made-up unanswerable questions (AUC).

It is the training curve the model card shows; the product's own numbers come from `article-qa eval`.
"""

from __future__ import annotations

import random

import numpy as np

from article_qa.index.passages import Passage
from training.examples import Item, make_example


def probe_examples(articles, items: list[Item], count: int, seed: int,
                   negative_rate: float = 1 / 3) -> list[tuple[str, str, list[str]]]:
    """(question, paragraph, gold answers) for `count` held-out items, `negative_rate` of them made
    unanswerable (SQuAD 2.0's own unanswerable items stay as they are)."""
    rng = random.Random(f"probe-{seed}")
    chosen = rng.sample(items, min(count, len(items)))
    out = []
    for n, item in enumerate(chosen):
        ex = make_example(articles, item, random.Random(f"probe-{seed}-{n}"), negative_rate=negative_rate)
        golds = [a["text"] for a in item.qa["answers"]] if ex.answer_start >= 0 else []
        out.append((ex.question, ex.context, golds))
    return out


def auc(positive: list[float], negative: list[float]) -> float:
    """Probability that a random positive scores above a random negative (ties count half)."""
    if not positive or not negative:
        return float("nan")
    pos = np.asarray(positive)[:, None]
    neg = np.asarray(negative)[None, :]
    return float(((pos > neg).sum() + 0.5 * (pos == neg).sum()) / (pos.size * neg.size))


def probe(network, tokenizer, examples) -> dict:
    """HasAns F1 and no-answer AUC of a PyTorch QA network over `examples`."""
    import torch

    from article_qa.evaluation.squad import best_scores
    from article_qa.qa.reader import Reader

    def run(arrays):
        with torch.inference_mode():
            device = next(network.parameters()).device
            s, e = network(*(torch.from_numpy(arrays[k]).to(device)
                             for k in ("input_ids", "attention_mask", "token_type_ids")))
        return s.float().cpu().numpy(), e.float().cpu().numpy()

    was_training = network.training
    network.eval()
    try:
        reader = Reader(run, tokenizer.backend_tokenizer if hasattr(tokenizer, "backend_tokenizer") else tokenizer)
        passages = [[Passage(0, 0, len(context), context)] for _, context, _ in examples]
        spans = reader.read_many([q for q, _, _ in examples], passages, batch_size=16)
    finally:
        network.train(was_training)
    f1s, has, no = [], [], []
    for (_, context, golds), candidates in zip(examples, spans):
        best = candidates[0] if candidates else None
        margin = best.margin if best else -100.0
        if golds:
            f1s.append(best_scores(context[best.start:best.end] if best else None, golds)[1])
            has.append(margin)
        else:
            no.append(margin)
    return {
        "has_answer_f1": round(100 * float(np.mean(f1s)), 2) if f1s else None,
        "no_answer_auc": round(auc(has, no), 4),
        "questions": len(examples),
    }
