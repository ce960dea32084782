"""What every front end does to a question before it is answered: clean it, shorten it when it is
too long for the reader, and notice when it is not in English.

These belong beside the question rather than in one front end: `ask`, `chat`, `batch` and the web
server all take questions a person typed or pasted, and they must treat them the same way.

- Cleaning: a question is echoed back to terminals and log files, so terminal escape sequences and
  control characters are removed (a pasted colour code is not part of the question), and line
  breaks become spaces so that words never run together. A question longer than
  MAX_QUESTION_CHARS is refused, the same way by every front end: it is a pasted document, not
  a question.
- Shortening: the reader reads at most 64 word pieces of question. People who write long questions
  put the context first and the question last ("I read ... and I wonder, in which city were the
  talks held?"), so the interrogative sentence is kept, not the beginning.
- Language: the models read English only; a German or Chinese question is not answered, and
  without a word the user would think the article does not say. The check is a small heuristic
  (scripts and function words), not a language model: it speaks up only when a question is clearly
  in another language.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Callable

from article_qa.index.sentences import sentence_spans

# Terminal escape sequences, 7-bit (ESC ...) and 8-bit (C1) forms:
# - CSI: ESC [ or U+009B, parameter bytes, intermediate bytes, one final byte ("\x1b[31m");
# - OSC, DCS, SOS, PM, APC: a string up to BEL or ST (ESC \ or U+009C); an unterminated string runs
#   to the next ESC or to the end of the text, as a terminal would swallow it ("\x1b]0;title\x07");
# - any other escape: ESC, intermediate bytes, one final byte ("\x1bc", "\x1b(B").
_ESCAPE_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[\x20-\x2f]*[\x30-\x7e]"
)
# Control characters that separate words become spaces; every other C0/C1 control (and DEL) goes.
_SPACE_CONTROLS = re.compile(r"[\t\n\v\f\r\x85]")
_OTHER_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Lone surrogates (possible through JSON "\ud800" escapes) cannot be written out as UTF-8.
_SURROGATES = re.compile(r"[\ud800-\udfff]")
MAX_QUESTION_CHARS = 2000


def _invisible(text: str) -> bool:
    """Only white space and format characters (zero-width space and joiners, BOM, bidi marks): a
    question nobody could see, refused like an empty one."""
    return all(c.isspace() or unicodedata.category(c) == "Cf" for c in text)


def clean_question(text: str) -> str:
    """Return `text` without terminal escapes and control characters, tabs as spaces, stripped.

    Line breaks and other white-space controls become spaces too, so words never run together; lone
    surrogates become U+FFFD. Raises ValueError (one line, for the user) when nothing visible is left
    (only zero-width characters counts as empty) or when what is left is longer than MAX_QUESTION_CHARS.
    """
    text = _ESCAPE_SEQUENCE.sub("", text)
    text = _SPACE_CONTROLS.sub(" ", text)
    text = _OTHER_CONTROLS.sub("", text)
    text = _SURROGATES.sub("\ufffd", text).strip()
    if not text or _invisible(text):
        raise ValueError("empty question")
    if len(text) > MAX_QUESTION_CHARS:
        raise ValueError(f"question is {len(text):,} characters; the limit is {MAX_QUESTION_CHARS:,}")
    return text


# --- shortening ----------------------------------------------------------------------------------

_QUESTION_WORD = re.compile(r"^\W*(who|whom|whose|what|which|where|when|why|how|is|are|was|were|did|does|do|can|"
                            r"could|will|would|should|has|have|had)\b", re.IGNORECASE)
_ASKING_WORD = re.compile(r"\b(who|whom|whose|what|which|where|when|why|how)\b", re.IGNORECASE)
_CLAUSE_END = re.compile(r"[,;:—–]\s+")


@dataclass(frozen=True)
class Shortened:
    """The question the reader will read, and whether (and how) it was shortened."""

    text: str
    shortened: bool
    how: str = ""  # "its question sentence", "the end of its question sentence" (when shortened)


def shorten_question(question: str, fits: Callable[[str], bool]) -> Shortened:
    """Keep the interrogative sentence of a question too long for the reader (`fits` says what fits).

    The sentence kept is the last one with a question mark, else the last one that starts like a
    question ("Where ...", "Did ..."), else the last sentence: the reader was trained on one-sentence
    questions, and the sentences around it are context for a person, noise for the reader. When the
    question sentence alone is too long, its end is kept from the last clause (after a comma) that
    still holds a question word, else from the earliest word that fits: "…, and I wondered, since the
    article names several cities, in which city the talks were held?" is read as "in which city the
    talks were held?". The result is always a slice of `question`.
    """
    if fits(question):
        return Shortened(question, False)
    spans = sentence_spans(question)
    if not spans:
        return Shortened(question, False)
    start, end = spans[_question_sentence(question, spans)]
    if fits(question[start:end]):
        return Shortened(question[start:end], True, "its question sentence")
    words = [start + m.start() for m in re.finditer(r"\S+", question[start:end])]
    fitting = _first_fitting(words, lambda at: fits(question[at:end]))
    if fitting is None:  # one enormous word: the reader cuts it to its beginning
        return Shortened(question[words[-1] : end], True, "the end of its question sentence")
    clauses = [start + m.end() for m in _CLAUSE_END.finditer(question, start, end)]
    asking = [c for c in clauses if c >= fitting and _ASKING_WORD.search(question, c, end)]
    at = asking[-1] if asking else fitting
    return Shortened(question[at:end], True, "the end of its question sentence")


def _question_sentence(question: str, spans: list[tuple[int, int]]) -> int:
    for test in (lambda s, e: "?" in question[s:e], lambda s, e: bool(_QUESTION_WORD.match(question[s:e]))):
        found = [i for i, (s, e) in enumerate(spans) if test(s, e)]
        if found:
            return found[-1]
    return len(spans) - 1


def _first_fitting(starts: list[int], fits: Callable[[int], bool]) -> int | None:
    """The earliest start whose suffix fits (suffixes only get shorter, so binary search)."""
    lo, hi = 0, len(starts)
    while lo < hi:
        mid = (lo + hi) // 2
        if fits(starts[mid]):
            hi = mid
        else:
            lo = mid + 1
    return starts[lo] if lo < len(starts) else None


# --- language --------------------------------------------------------------------------------------

# Scripts other than Latin, by code point ranges; a question mostly written in one is not English.
_SCRIPTS = (
    ("Japanese", re.compile(r"[\u3040-\u30ff\u31f0-\u31ff]")),  # kana (checked before Han)
    ("Chinese", re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")),
    ("Korean", re.compile(r"[\u1100-\u11ff\u3130-\u318f\uac00-\ud7af]")),
    ("Cyrillic script (Russian, Ukrainian…)", re.compile(r"[\u0400-\u04ff]")),
    ("Greek", re.compile(r"[\u0370-\u03ff]")),
    ("Arabic script", re.compile(r"[\u0600-\u06ff\u0750-\u077f]")),
    ("Hebrew", re.compile(r"[\u0590-\u05ff]")),
    ("Devanagari script (Hindi…)", re.compile(r"[\u0900-\u097f]")),
    ("Thai", re.compile(r"[\u0e00-\u0e7f]")),
)
# Function words of each language that are not also English words or common in English names and
# abbreviations ("die", "war", "was", "also", "de", "la", "un", "son", "con" are left out).
_FUNCTION_WORDS = {
    "German": set("""der das und ist sind wer wie wo wann warum welche welcher welches wurde wurden
        nicht ein eine einen einem dem den mit von zu auf für über sich auch oder aber wird werden hat
        haben im vom zum zur bei nach wieviel wieviele woher wohin wen wem ich sie wir ihr er es""".split()),
    "French": set("""le les des du et est sont qui que quoi où quand pourquoi comment quel quelle quels
        quelles une dans pour sur avec par pas ont été était il elle ils elles au aux ce cette ces lors
        qu combien lequel laquelle leur leurs nous vous""".split()),
    "Spanish": set("""el los las del y es son quién quien qué dónde donde cuándo cuando por qué cómo
        cuál cuáles una unos unas en para con sobre fue fueron está están ha han se lo su sus
        cuánto cuántos""".split()),
    "Italian": set("""il lo gli della delle dei è sono chi cosa dove quando perché come quale quali una
        nel nella per con su stato stata ha hanno si del della""".split()),
    "Portuguese": set("""os das dos é são quem onde quando porque como qual quais uma umas num numa
        em para com foi foram está estão tem têm não ao à""".split()),
    "Dutch": set("""het een en is zijn wie wat waar wanneer waarom hoe welke werd werden niet 
        van voor op bij naar heeft hebben ook maar dat deze""".split()),
}
# A word is English evidence only where it is not also one of the foreign function words above.
_ENGLISH_WORDS = set("""the a an of to and in on at by for with from about into is are was were be been
    being has have had do does did who whom whose what which where when why how that this these those
    it its he she they them his her their there not will would should could can may might must than
    then said says say during after before between against""".split())
# Letters that English words do not have: a word with one counts for the language(s) it belongs to.
_LETTERS = {
    "German": set("äöüß"), "French": set("çœèêàâîôûëï"), "Spanish": set("ñ¿¡áíóú"),
    "Portuguese": set("ãõçáéíóúâêô"), "Italian": set("àèéìòù"),
}
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?")


def language_notice(question: str) -> str | None:
    """One line saying the question is not in English, or None when it is (or might be) English.

    Two signals, each only when clear: most letters in a script other than Latin (Chinese, Russian,
    Arabic…), or at least two function words of one other language and more of them than English
    ones ("Wo fanden die Friedensgespräche statt?"). Foreign names in an English question ("What did
    De Croo say in Brussels?") do not count: names are not function words.
    """
    language = _language(question)
    if language is None:
        return None
    return (f"the question looks like {language}; the models read English only, so it will likely go "
            "unanswered: ask in English")


def _language(question: str) -> str | None:
    words = _WORD.findall(question)
    if not words:
        return None
    # By words, not letters: "Who is Зеленський?" is English with a name in it.
    scripts = [_script(word) for word in words]
    foreign = [name for name in scripts if name != "Latin"]
    if len(foreign) * 2 > len(words):
        return max(set(foreign), key=foreign.count)
    words = [w.lower().replace("’", "'") for w in words]
    english = sum(w in _ENGLISH_WORDS for w in words)
    scores = {name: sum(w in vocabulary or bool(_LETTERS.get(name, set()) & set(w)) for w in words)
              for name, vocabulary in _FUNCTION_WORDS.items()}
    scores["Spanish"] += question.count("¿") + question.count("¡")
    name, best = max(scores.items(), key=lambda item: item[1])
    if best >= 2 and best > english and best * 3 >= len(words):
        return name
    return None


def _script(word: str) -> str:
    """The script most of a word's letters are written in ("Latin" for English and its neighbours)."""
    counts = {name: len(pattern.findall(word)) for name, pattern in _SCRIPTS}
    name, most = max(counts.items(), key=lambda item: item[1])
    latin = sum(1 for c in word if unicodedata.name(c, "").startswith("LATIN"))
    if most > latin:
        return name
    if latin * 2 >= len(word):
        return "Latin"
    return "a language other than English"


def json_type(value: object) -> str:
    """The JSON name of a parsed value's type, for messages about input that is not a question:
    batch lines and web requests say the same thing."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
