"""Warm per-question latency, in process: `python -m bench.latency INDEX_DIR PASSES`.

Run by `python -m bench` as a child process so that the models it loads (and ONNX Runtime's worker
threads) neither bloat nor disturb the benchmark process that times the other rows. Prints one JSON
line prefixed with RESULT_MARKER: per-question milliseconds for `ArticleQA.conversation().ask` (the
chat path, follow-up rewriting included) and for `ArticleQA.ask`.
"""

from __future__ import annotations

import json
import sys
import time

RESULT_MARKER = "BENCH-LATENCY "


def main(argv: list[str]) -> None:
    from bench.questions import chat_turns, seed_questions, variants
    from article_qa.qa.pipeline import ArticleQA

    index_dir, passes = argv[0], int(argv[1])
    seed = seed_questions()
    turns = chat_turns()
    per_pass = len(seed) * 2
    started = time.perf_counter()
    qa = ArticleQA.open(None, index_dir=index_dir)
    # Warm-up (not timed): loads the encoder and reader sessions and touches every code path.
    for question in ["Warm-up: " + q for q in seed[:4] + turns]:
        qa.ask(question)
    warm_up_s = time.perf_counter() - started

    offset = 0
    conversation_ms = []
    for _ in range(passes):
        conversation = qa.conversation()  # one chat session per pass: a follow-up, then plain questions
        for question in turns + variants(seed, per_pass, offset):
            t = time.perf_counter()
            conversation.ask(question)
            conversation_ms.append((time.perf_counter() - t) * 1000)
        offset += per_pass
    ask_ms = []
    for _ in range(passes):
        for question in variants(seed, per_pass, offset):
            t = time.perf_counter()
            qa.ask(question)
            ask_ms.append((time.perf_counter() - t) * 1000)
        offset += per_pass
    print(RESULT_MARKER + json.dumps({
        "conversation_ms": conversation_ms,
        "ask_ms": ask_ms,
        "open_and_warm_up_s": warm_up_s,
        "encoder_runtime": qa.index.embedder.runtime_in_use,
        "reader_runtime": qa.reader.name,
    }))


if __name__ == "__main__":
    main(sys.argv[1:])
