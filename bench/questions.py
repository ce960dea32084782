"""Benchmark inputs: question variants and a large article built from the default one.

Every question the benchmark asks is a distinct string (a seed question with a prefix and a suffix),
so a cache of answers, should the tool ever grow one, cannot make a timing look better than it is.
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEED_FILE = ROOT / "tests" / "data" / "seed_dev.squad.json"
CHATS_FILE = ROOT / "tests" / "data" / "seed_dev_chats.jsonl"

PREFIXES = [
    "", "Tell me: ", "Please say: ", "Quick question: ", "I'd like to know: ", "Can you tell me: ",
    "Question: ", "Help me out: ", "One more: ", "Briefly: ", "Do you know: ", "From the article: ",
]
SUFFIXES = ["", " Thanks.", " Please.", " Quickly.", " (from the article)", " Briefly.", " I wonder.",
            " Be precise.", " If you know."]


def seed_questions() -> list[str]:
    """The 12 questions of tests/data/seed_dev.squad.json, in file order."""
    data = json.loads(SEED_FILE.read_text(encoding="utf-8"))
    return [qa["question"] for article in data["data"] for p in article["paragraphs"] for qa in p["qas"]]


def chat_turns() -> list[str]:
    """The follow-up conversation of tests/data/seed_dev_chats.jsonl (a question, then "he ...")."""
    if not CHATS_FILE.is_file():
        return []
    turns = []
    for line in CHATS_FILE.read_text(encoding="utf-8").splitlines():
        if line.strip():
            turns.append(json.loads(line)["question"])
    return turns


def variant(seed: list[str], i: int) -> str:
    """The i-th question variant; distinct for i < len(seed) * len(PREFIXES) * len(SUFFIXES)."""
    n = len(seed)
    prefix = PREFIXES[(i // n) % len(PREFIXES)]
    suffix = SUFFIXES[(i // (n * len(PREFIXES))) % len(SUFFIXES)]
    return f"{prefix}{seed[i % n]}{suffix}"


def variants(seed: list[str], count: int, offset: int = 0) -> list[str]:
    return [variant(seed, offset + i) for i in range(count)]


def big_article(text: str, chars: int) -> str:
    """About `chars` characters made of the article's paragraphs, each copy numbered so none repeat."""
    paragraphs = [p for p in text.splitlines() if p.strip()]
    out, size, copy = [], 0, 0
    while size < chars:
        copy += 1
        for number, paragraph in enumerate(paragraphs, 1):
            piece = f"[Part {copy}.{number}] {paragraph}"
            out.append(piece)
            size += len(piece) + 1
            if size >= chars:
                break
    return "\n".join(out) + "\n"


def perturbed_article(text: str, chars: int, seed: int = 10) -> str:
    """About `chars` characters from the article's paragraphs, deterministic: each copy of a
    paragraph is numbered and has its words shuffled (a fixed seed), so passages differ from one
    another the way a long real text's do, and no two embed alike."""
    import random

    rng = random.Random(seed)
    paragraphs = [p.split() for p in text.splitlines() if p.strip()]
    out, size, copy = [], 0, 0
    while size < chars:
        copy += 1
        for number, words in enumerate(paragraphs, 1):
            shuffled = words[:]
            if copy > 1:
                rng.shuffle(shuffled)
            piece = f"[Part {copy}.{number}] " + " ".join(shuffled)
            out.append(piece)
            size += len(piece) + 1
            if size >= chars:
                break
        out.append("")  # a blank line between copies: paragraphs as an article has them
        size += 1
    return "\n".join(out) + "\n"
