"""Follow-up questions read in the light of the previous turns.

The reader sees one question at a time, so a follow-up is rewritten into a question that stands on
its own, the way a person would hear it:
- a bare question word takes the previous question's predicate, and a place or time the previous
  "where"/"when" question got as its answer: "Where were the peace talks held?" (Brussels) then
  "When?" reads "When were the peace talks held in Brussels?", then "When were the peace talks
  held?";
- "And the German chancellor?" / "What about X?" takes the previous question's frame with X in
  place of its subject: "Who is the U.S. envoy?" then "Who is the German chancellor?";
- a pronoun stands for something the last turns were about: "he" for a person they named, "they"
  or "it" for the previous answer or the previous question's subject ("When will they continue?"
  after a question about the peace talks);
- "then" after a time answer is that time: "When will the talks continue?" (Monday) then "What will
  happen then?" reads "What will happen on Monday?";
- a leading "And"/"So" before a question that is complete is dropped.

Without a parser such rewrites are guesses, so a follow-up gets a few readings, most plausible
first, and the conversation keeps the one the article answers most confidently (`ask_in_context`).
A question with no follow-up cue is read as it is.

What a conversation remembers lives here too, once for every front end: a `Conversation` (the
chat's, one web page's, one batch conversation's) and `Conversations`, the keeper of conversations
by id that batch, eval and the web server ask through.
"""

from __future__ import annotations

import re
import secrets
from collections import OrderedDict
from dataclasses import dataclass

from article_qa.qa.words import MONTHS, TIME_WORDS_OF_DATES

MAX_READINGS = 4
WH_PHRASE_WORDS = 8  # "how much of the profits from the new shoots is she giving away"
_AUX = frozenset(
    "is are was were am be been being do does did has have had will would can could should shall may might must".split()
)
_WH = frozenset("what which who whom whose when where why how".split())
_PREPOSITIONS = frozenset(
    "to from for by with of about in on at since until till during after before into against toward towards "
    "through under over between among".split()
)
# Irregular participles: "were the talks held", "was the treaty written".
_PARTICIPLES = frozenset(
    "held done given taken seen known shown written built sent met led won lost told found brought thought "
    "paid kept left begun chosen spoken broken driven drawn grown thrown sold bought put set cut hit let "
    "born worn torn sworn struck caught taught fought sought".split()
)
# Words that end a noun phrase: a verb here is usually the question's main verb.
_VERBS = frozenset(
    "say said give gave make made do see call called mean want ask tell take get go come know think use find "
    "offer present announce demand support seek describe explain continue happen include become leave provide "
    "hold meet speak talk sign agree win lose play start end die live work run build write lead send sell buy "
    "transfer drop join pursue face plan expect frame react respond view consider argue claim believe help "
    "refuse reject accept allow move cause create begin show".split()
    # common verbs in their bare form, which follow do/does/did and will/would/can/...:
    # "did Facebook pay for WhatsApp", "will the opposition try again"
    + "try pay cost vote ban kill die fail decide matter mean open close reopen stop keep put set bring carry "
      "change turn grow rise fall raise reach remain stay return visit travel fly arrive attack invade fight "
      "protect threaten warn order force push pull break destroy save spend earn owe lend borrow invest "
      "develop discover invent design produce publish release launch approve pass block cancel delay "
      "postpone resign retire hire fire arrest charge accuse sue judge rule vote elect appoint name own "
      "control manage serve treat cure test study learn teach read watch hear feel look seem appear "
      "need like love hate prefer hope wish fear worry agree deny admit confirm report reveal suggest "
      "propose promise expect predict estimate measure count".split()
) | _PARTICIPLES
_BARE_VERB_AUX = frozenset("do does did will would can could should shall may might must".split())
# Last words that make a capitalised name a place, an event or an organisation, not a person.
_NOT_PERSON = frozenset(
    "show museum university institute party company corporation corp inc ltd media parliament street "
    "boulevard avenue road city council court house hall center centre school college church bank group "
    "news times post journal agency ministry department office army navy police fund foundation union "
    "league club association committee commission republic kingdom states state island river sea ocean "
    "airport station square park bridge tower palace hotel festival fair war games cup prize award code "
    "act law biology science review magazine".split()
)
_LEADING_CONJUNCTION = re.compile(r"^\s*(?:and|but|so|also|then|ok|okay|well)\b[\s,]*", re.IGNORECASE)
_FRAME = re.compile(r"^\s*(?:(?:and\s+)?(?:what|how)\s+about|and)\s+(?P<topic>.+?)\s*[?.!]*\s*$", re.IGNORECASE)
_PERSON_PRONOUN = re.compile(r"\b(he|him|his|she|her|hers)\b", re.IGNORECASE)
# "that one"/"this one" point back at a thing as "it" does ("Who negotiated that one?" after a
# question about the Instagram deal); a bare "that" is more often a conjunction, so it is not here.
_THING_PRONOUN = re.compile(r"\b(they|them|their|theirs|it|its|that one|this one)\b", re.IGNORECASE)
_TIME_PRONOUN = re.compile(r"(?<!^)\b(?:then|at that time|at that point|that day)\b", re.IGNORECASE)
_POSSESSIVES = frozenset({"his", "her", "hers", "their", "theirs", "its"})
_OBJECT_PRONOUNS = frozenset({"it", "them", "him", "that one", "this one"})
_WORD = re.compile(r"[\w’'.-]+")
_TIME_WORDS = TIME_WORDS_OF_DATES
_NAME_PARTICLES = frozenset({"de", "van", "von", "der", "den", "da", "di", "du", "del", "la", "le", "al", "bin", "ibn"})
_TITLES = frozenset(
    "president chancellor minister prime envoy secretary general king queen prince senator governor mayor "
    "ambassador director chief leader spokesman spokeswoman mr mrs ms dr sir".split()
)
_NAME = re.compile(r"\b[A-Z][\w’'-]*(?:\s+(?:(?:de|van|von|der|da|di|du|del|la|le|al|bin|ibn)\s+)?[A-Z][\w’'-]*)*")


@dataclass(frozen=True)
class Turn:
    """A finished turn: the question as asked and as read, and the answer's text (None: no answer)."""

    question: str
    answer_text: str | None
    read_as: str | None = None

    @property
    def reading(self) -> str:
        return self.read_as or self.question


@dataclass(frozen=True)
class Contextual:
    """One reading of a question: what the reader is asked and what retrieval searches for."""

    question: str
    query: str


def _words(text: str) -> list[str]:
    return text.rstrip(" ?.!").split()


def _is_fragment(question: str) -> bool:
    """"When?", "To whom?", "From which countries?": a question word and at most two more, no verb
    ("Who announced it?" and "Who won?" are whole questions)."""
    words = [w.lower().strip(",") for w in _words(question)]
    if not words or len(words) > 4 or words[1:2] == ["about"]:  # "What about X?" asks about X
        return False
    if words[0] in _PREPOSITIONS:
        words = words[1:]
    return bool(words) and words[0] in _WH and not any(w in _AUX or _is_verb(w) for w in words[1:])


def _is_past_participle(word: str) -> bool:
    return (len(word) > 4 and word.endswith("ed")) or word in _PARTICIPLES


def _is_participle(word: str) -> bool:
    return _is_past_participle(word) or (len(word) > 4 and word.endswith("ing"))


def _is_verb(word: str) -> bool:
    return word in _VERBS or (word.endswith("s") and word[:-1] in _VERBS) or (len(word) > 4 and word.endswith("ed"))


def _split_wh(question: str) -> tuple[str, str, bool]:
    """(question-word phrase, the rest, whether the rest starts with an auxiliary verb).

    "Where were the talks held?" -> ("Where", "were the talks held", True);
    "Who then transfers the weapons?" -> ("Who", "then transfers the weapons", False).
    """
    words = _words(question)
    i = 0
    if i < len(words) and words[i].lower() in _PREPOSITIONS:
        i += 1
    if i >= len(words) or words[i].lower() not in _WH:
        return "", " ".join(words), False
    head = words[i].lower()
    i += 1
    # "which countries", "how many people", "how much of the profits from the new shoots": the
    # phrase runs to the auxiliary.
    if head in {"which", "what", "whose", "how"}:
        j = i
        while j < len(words) and j - i < WH_PHRASE_WORDS and words[j].lower() not in _AUX:
            j += 1
        if j < len(words) and words[j].lower() in _AUX:
            i = j
    rest = words[i:]
    return " ".join(words[:i]), " ".join(rest), bool(rest) and rest[0].lower() in _AUX


def _subject(rest: str) -> str | None:
    """The noun phrase after the auxiliary: "were the peace talks held" -> "the peace talks"."""
    words = rest.split()[1:]
    if words and _is_participle(words[0].lower().strip(",")):
        return None  # "is suing Facebook": the question word is the subject, there is no other
    passive = _passive_subject(rest.split()[0].lower(), words)
    if passive:
        return passive
    taken = []
    for word in words:
        bare = word.lower().strip(",")
        # A possessive needs its noun: after "Oculus's original" an -ing or -ed word ("asking
        # price") is part of the phrase, not its verb.
        modifier = _POSSESSIVE_SUFFIX.search(taken[0]) if taken else None
        if taken and (bare in _PREPOSITIONS or bare in _VERBS or bare in _AUX
                      or (len(bare) > 4 and bare.endswith(("ing", "ed")) and not modifier)):
            break
        taken.append(word)
    if len(taken) > 1 and len(taken) == len(words) and rest.split()[0].lower() in _BARE_VERB_AUX \
            and not any(w.lower().strip(",") in _VERBS for w in taken):
        taken.pop()  # "did the library reopen": after do, the last word is the verb
    return " ".join(taken) or None


_BE_HAVE = frozenset("is are was were has have had".split())


def _passive_subject(auxiliary: str, words: list[str]) -> str | None:
    """After a form of be or have, the subject runs to the participle: "was the first neon sign
    switched on" → "the first neon sign" ("sign" is a noun there, though it can be a verb; "the
    ruling party" keeps its -ing word). None when no past participle follows before a preposition
    or another auxiliary."""
    if auxiliary not in _BE_HAVE or len(words) < 2:
        return None
    for i, word in enumerate(words[1:], 1):
        bare = word.lower().strip(",")
        if bare in _PREPOSITIONS or bare in _AUX:
            return None
        if _is_past_participle(bare) and not word[:1].isupper():  # "Has the United States agreed": a name
            return " ".join(words[:i])
    return None


def _when(time: str) -> str:
    """A time answer as an adverbial: "Monday" → "on Monday", "1990" → "in 1990"."""
    first = time.split()[0].lower()
    if first in {"on", "in", "at", "by", "during", "since", "until", "before", "after"}:
        return time
    if first.isdigit() and len(first) == 4 or first in MONTHS:
        return f"in {time}"
    return f"on {time}"


def _is_time(text: str) -> bool:
    words = [w.lower().strip(".,") for w in text.split()]
    return bool(words) and all(w in _TIME_WORDS or w.isdigit() or w in {"on", "in", "the", "of"} for w in words)


def _names(text: str) -> list[str]:
    """Capitalised word runs that are not the question's first word or an acronym-only run."""
    found = []
    for m in _NAME.finditer(text):
        name = m.group().strip()
        words = name.split()
        while words and (words[0].lower() in _WH or words[0].lower() in _AUX or words[0].lower() in _TITLES
                         or (m.start() == 0 and words[0].lower() in _PREPOSITIONS)):
            words = words[1:]
        if words and not all(w.isupper() for w in words) and not _is_time(" ".join(words)):
            found.append(" ".join(words))
    return found


def _looks_like_person(text: str | None) -> bool:
    """A capitalised name of one to six words that is not a time, an acronym, or a place, event or
    organisation by its last word ("Paris Motor Show", "Columbia University")."""
    if not text:
        return False
    words = text.split()
    return 1 <= len(words) <= 6 and all(w[:1].isupper() or w.lower() in _NAME_PARTICLES for w in words) \
        and not all(w.isupper() for w in words) and not _is_time(text) \
        and words[-1].lower().strip(".,;:'’\"") not in _NOT_PERSON


_POSSESSIVE_SUFFIX = re.compile(r"['’]s$")


def last_name(name: str) -> str:
    """"Volodymyr Zelensky" → "Zelensky", "Alexander De Croo" → "De Croo"; a possessive is no
    part of a name ("Is Hicks's husband still serving?" names Hicks)."""
    words = [_POSSESSIVE_SUFFIX.sub("", w.strip(".,;:'’\"")) for w in name.split()]
    kept = [words[-1]]
    for word in reversed(words[:-1]):
        if word.lower() not in _NAME_PARTICLES:
            break
        kept.insert(0, word)
    return " ".join(kept)


def _people(history: list[Turn]) -> list[str]:
    """People the last turns named, most recent first (answers before their questions)."""
    people: list[str] = []
    for turn in reversed(history[-3:]):
        candidates = []
        asked_where = _split_wh(turn.reading)[0].lower().split()[-1:] == ["where"]
        if _looks_like_person(turn.answer_text) and not asked_where:
            candidates.append(turn.answer_text)
        candidates += [n for n in _names(turn.reading) if _looks_like_person(n)]
        for c in candidates:
            name = last_name(c)
            if name not in people:
                people.append(name)
    return people


def _things(history: list[Turn], pronoun: str = "it", own_subject: bool = False) -> list[str]:
    """What "it" or "they" (`pronoun`) may stand for, most likely first: the last answer (unless a
    time, a reason or a manner), the last question's subject or object, then the same for the turn
    before. Neither stands for a person the conversation named ("Who translated it?" → Michael
    Wells; "Does it have any pictures?" asks about the book), and "they" not for a place either
    ("Where?" → Los Angeles; "Why did they stop traffic?" asks about the signs).

    With `own_subject` (an object pronoun of a question that names who acts: "How did Zuckerberg
    get it for less?") the name that acted in an earlier question ("How much did Facebook end up
    paying?") comes last: the new question has its own actor, and "it" is what was acted on. The
    owner of a possessive subject is a candidate too ("Oculus's original asking price": Oculus)."""
    plural = pronoun.lower() in {"they", "them", "their", "theirs"}
    things: list[str] = []
    actors: list[str] = []
    for turn in reversed(history[-2:]):
        candidates = []
        wh, rest, inverted = _split_wh(turn.reading)
        asked = wh.lower().split()[-1:] if wh else []
        # A reason, a manner or an amount ("Why?" → "because …", "How?" → "via WhatsApp", "How much
        # did the renovation cost?" → "$14 million") is not what "it" stands for; the subject is.
        explains = bool(asked) and asked[0] in {"why", "how", "much", "many", "long", "old", "far", "often"}
        person = asked[:1] in (["who"], ["whom"]) and _looks_like_person(turn.answer_text)
        place = asked == ["where"]
        if turn.answer_text and not explains and not _is_time(turn.answer_text) and _is_noun_phrase(turn.answer_text) \
                and not person and not (plural and place) and not _is_amount(turn.answer_text):
            candidates.append(turn.answer_text)
        # The phrase the question names: its subject, or the object of a "Who took …?" question.
        named = _subject(rest) if inverted else _object(rest)
        if named and named.lower() in {"he", "she", "they", "it", "you", "we", "i"}:
            named = None
        # The names further on: "How much did Facebook pay for Oculus?" is about Oculus too, and
        # more likely its "it" than the name that acts (Facebook), which is rather "they".
        further = [n for n in reversed(_names(rest)) if not named or n not in named]
        actor = bool(named) and named[:1].isupper()
        owner = _possessor(named) if named else None
        if actor and own_subject and not owner:
            actors.append(named)
            candidates += further
        else:
            candidates += ([*further, named] if actor and not plural else [named, *further]) if named else further
        if owner:
            candidates.append(owner)
        for c in candidates:
            if c not in things:
                things.append(c)
    return things + [a for a in actors if a not in things]


_AMOUNT = re.compile(r"^(?:about |around |nearly |almost |over |more than |less than )?[$€£]?\d[\d,.]*\s*"
                     r"(?:%|percent|million|billion|trillion|thousand|hundred)?$", re.IGNORECASE)


def _is_amount(text: str) -> bool:
    """An answer that is only an amount ("$4 billion", "13%"): "it" stands for what has the amount
    (the price, the deal), not the number, whatever the question word was."""
    return bool(_AMOUNT.match(text.strip()))


def _possessor(phrase: str) -> str | None:
    """The name that owns a possessive phrase: "Oculus's original asking price" → "Oculus"."""
    first = phrase.split()[0]
    if len(phrase.split()) > 1 and first[:1].isupper() and _POSSESSIVE_SUFFIX.search(first):
        return _POSSESSIVE_SUFFIX.sub("", first)
    return None


def _object(rest: str) -> str | None:
    """The object of a question whose question word is its subject: "took the controversial photo"
    → "the controversial photo" (the verb, whatever its form, then a noun phrase that starts with a
    determiner and ends at a preposition, a comma or the end). Without a determiner, a short run of
    plain lower-case words to the end is the object too ("invented neon lights" → "neon lights")."""
    words = rest.split()
    if len(words) >= 2 and words[0].lower() not in _AUX and words[1].lower() not in _DETERMINERS:
        return _bare_object(words[1:])
    if len(words) < 3 or words[0].lower() in _AUX or words[1].lower() not in _DETERMINERS:
        return None
    taken = []
    for word in words[1:]:
        bare = word.lower().strip(",")
        if taken and (bare in _PREPOSITIONS or bare in _AUX or bare in {"and", "or", "that", "which"}):
            break
        taken.append(word.strip(","))
        if word.endswith(","):
            break
    return " ".join(taken) if len(taken) > 1 else None


_NOT_NOUNS = frozenset("he she it they them him her us me you we i there here then so again now first also "
                       "still even just only more most less".split())


def _bare_object(words: list[str]) -> str | None:
    """A verb's object without a determiner, when it is the question's last words and reads as a
    noun phrase: up to three lower-case words, none a verb, pronoun, adverb or preposition."""
    bare = [w.lower().strip(",") for w in words]
    if not 1 <= len(bare) <= 3 or any(not w.isalpha() or w in _NOT_NOUNS or w in _PREPOSITIONS or w in _AUX
                                      or w in _WH or w.endswith("ly") or _is_verb(w) for w in bare):
        return None
    if any(not w[:1].islower() for w in words):
        return None
    return " ".join(w.strip(",") for w in words)


_DETERMINERS = frozenset(
    "the a an his her their its this that these those some many all each every no one two three four five "
    "six seven eight nine ten several both".split()
)


def _is_noun_phrase(text: str) -> bool:
    """Whether an answer can stand for "it" or "they": a name, or a short phrase with no verb in it
    ("the peace talks", "bilateral guarantees"; not "perform a direction discrimination task" or
    "very disappointing"). A phrase that starts with a determiner or a capital may be longer."""
    words = [w.strip(".,;:'’\"“”") for w in text.split()]
    if not words or len(words) > 12 or any(w.lower() in _AUX for w in words):
        return False
    first = words[0]
    if first[:1].isupper() or first.lower() in _DETERMINERS or first[:1].isdigit() or first[:1] in "$€£":
        return True
    return len(words) <= 4 and not any(_is_verb(w.lower()) or w.lower().endswith("ing") for w in words)


def _points_outside(question: str, pattern: re.Pattern) -> bool:
    """Whether the question's first such pronoun can only mean something said before: not when the
    question names someone or something ahead of it ("Who announced that Ukraine is dropping its
    NATO bid?" — "its" is Ukraine's)."""
    match = pattern.search(question)
    if match is None:
        return False
    before = question[: match.start()]
    following = question[match.end():].split()[:1]
    if match.group(1).lower() in _OBJECT_PRONOUNS and not (following and following[0].lower() in _AUX):
        # An object is never its own clause's subject: in "When did Facebook buy it?" and "How did
        # Zuckerberg get it for less?" "it" is something said before.
        _, rest, inverted = _split_wh(question)
        subject = _subject(rest) if inverted else None
        if subject and subject in before:
            before = before.replace(subject, " ", 1)
    return not _names(before) and not re.search(r"\b(?:the|a|an)\s+\w+", before, re.IGNORECASE)


def _substitute(question: str, pattern: re.Pattern, entity: str) -> str:
    """The question with its first such pronoun replaced by `entity` (a possessive as "X's"); a
    subject "they" that becomes one thing takes the auxiliary in the singular: "How many votes were
    they short?" → "How many votes was the attempt short?", "What do they accuse it of?" → "What
    does ZeniMax Media accuse it of?"."""
    match = pattern.search(question)
    if match is None:
        return question
    word = match.group(1)
    if word.lower() in _POSSESSIVES:
        entity_text = f"{entity}’s" if "’" in question else f"{entity}'s"
    else:
        entity_text = entity
    before, after = question[: match.start()], question[match.end():]
    if word.lower() == "they" and not _is_plural(entity) and " and " not in entity:
        before = _AUX_BEFORE.sub(lambda m: f"{_SINGULAR_OF_AUX[m.group(1).lower()]}{m.group(2)}"
                                 if m.group(1).islower() else
                                 f"{_SINGULAR_OF_AUX[m.group(1).lower()].capitalize()}{m.group(2)}", before)
        after = _AUX_AFTER.sub(lambda m: f"{m.group(1)}{_SINGULAR_OF_AUX[m.group(2).lower()]}", after)
    return before + entity_text + after


_AUX_BEFORE = re.compile(r"\b(are|were|have|do)(\s+)$", re.IGNORECASE)  # "were they", "do they"
_AUX_AFTER = re.compile(r"^(\s+)(are|were|have)\b", re.IGNORECASE)  # "they are" ("they do" is a verb too)


def _answer_slot(rest: str, answer: str) -> str:
    """The previous question's predicate with its answer put where the question word stood:
    "is Kiev seeking instead of NATO membership" + "bilateral guarantees" ->
    "is Kiev seeking bilateral guarantees instead of NATO membership"."""
    words = rest.split()
    for i, word in enumerate(words[1:], 1):
        bare = word.lower()
        if bare in _VERBS or (len(bare) > 4 and bare.endswith(("ing", "ed", "en"))):
            return " ".join(words[: i + 1] + [answer] + words[i + 1:])
    return f"{rest} {answer}"


_NUMBER_OF_AUX = {"is": "are", "was": "were", "has": "have", "does": "do"}


def _is_plural(phrase: str) -> bool:
    """Whether a noun phrase's head (its last word before a preposition) is a plural common noun:
    "the first ones in America", not "the press", "Hicks" or "the news"."""
    head = ""
    for word in phrase.split():
        if word.lower() in _PREPOSITIONS:
            break
        head = word
    bare = head.lower().strip(".,;:'’\"")
    return len(bare) > 3 and bare.endswith("s") and not bare.endswith(("ss", "us", "is", "news")) \
        and not head[:1].isupper()


_SINGULAR_OF_AUX = {plural: single for single, plural in _NUMBER_OF_AUX.items()}


def _agreeing(rest: str, subject: str) -> str:
    """The predicate's auxiliary in the number of its new subject: "was the first neon sign
    switched on" with "the first ones in America" → "were the first ones in America switched on"."""
    aux, _, tail = rest.partition(" ")
    lowered = aux.lower()
    plural = _is_plural(subject)
    if plural and lowered in _NUMBER_OF_AUX:
        return f"{_NUMBER_OF_AUX[lowered]} {tail}"
    if not plural and lowered in _SINGULAR_OF_AUX and subject.split()[0].lower() in {"the", "a", "an", "this", "that"}:
        return f"{_SINGULAR_OF_AUX[lowered]} {tail}"
    return rest


def _fragment_readings(fragment: str, previous: Turn) -> list[str]:
    wh, rest, inverted = _split_wh(previous.reading)
    if not rest:
        return []
    words = fragment.rstrip(" ?.!")
    answer = previous.answer_text
    if inverted:
        lowered = wh.lower().split()
        asks_for_thing = bool(lowered) and lowered[-1] in {"what", "which", "who", "whom"} or (
            len(lowered) > 1 and lowered[0] in {"what", "which"})
        if answer and asks_for_thing:
            return [f"{words} {_answer_slot(rest, answer)}?", f"{words} {rest}?"]
        anchor = _anchor(lowered[-1:], answer)
        if anchor:
            # "When?" after "Where did he first show it off?" (the Paris Motor Show) asks when he
            # showed it off there: the place (or the time) keeps the reader on that event.
            return [f"{words} {rest} {anchor}?", f"{words} {rest}?"]
        return [f"{words} {rest}?"]
    # The previous question word was the subject ("Who then transfers the weapons?"): its answer is.
    if answer:
        return [f"{words} {answer} {rest}?", f"{words} {rest}?"]
    return [f"{words} {rest}?"]


_AT_PLACES = frozenset("show fair festival museum hall stadium airport station conference summit games "
                       "university college school church court".split())


def _anchor(asked: list[str], answer: str | None) -> str | None:
    """The previous answer as an adverbial of place or time, for a fragment asked after a "where"
    or "when" question: "Paris Motor Show" → "at the Paris Motor Show", "Brussels" → "in Brussels",
    "1912" → "in 1912". None for any other question word or an answer that is no short phrase."""
    if not answer or asked not in (["where"], ["when"]) or len(answer.split()) > 8:
        return None
    first = answer.split()[0].lower()
    if asked == ["when"]:
        return _when(answer) if _is_time(answer) else None  # "after the ceasefire collapsed" is an event
    if first in _PREPOSITIONS:
        return answer
    if not answer[:1].isupper() and first not in {"the", "a", "an"}:
        return None  # "outside a synagogue in the city of Djerba" keeps its own words; a clause is no place
    last = answer.split()[-1].lower().strip(".,;:'’\"")
    if last in _AT_PLACES:
        return f"at {answer}" if first in {"the", "a", "an"} else f"at the {answer}"
    return f"in {answer}"


def _predicate_turn(history: list[Turn]) -> Turn:
    """The last turn as the next fragment or "What about X?" builds on it: without the place or
    time a fragment took from the turn before (`_anchor`). "Where?" read as "Where was the first
    neon sign switched on in 1912?", then "What about the first ones in America?" asks where those
    were switched on, not where they were in 1912."""
    previous = history[-1]
    if len(history) < 2 or not previous.read_as or not _is_fragment(_LEADING_CONJUNCTION.sub("", previous.question)):
        return previous
    prior = history[-2]
    wh = _split_wh(prior.reading)[0]
    anchor = _anchor(wh.lower().split()[-1:], prior.answer_text)
    suffix = f" {anchor}?" if anchor else None
    if suffix and previous.read_as.endswith(suffix):
        return Turn(previous.question, previous.answer_text, previous.read_as[: -len(suffix)] + "?")
    return previous


def _frame_readings(topic: str, history: list[Turn]) -> list[str]:
    """"And X?" / "What about X?": the previous question with X in place of the phrase X stands in
    for, of the same kind, most plausible first. A phrase with a preposition replaces the previous
    phrase of that preposition ("by guns" → "by terrorism") or, with none, is added at the end ("in
    2014"); a gerund replaces the gerund ("breaking the Flag Code" → "burning the flag"); a noun
    phrase replaces the subject, or a name ("WhatsApp" → "Instagram"). X is never put beside the
    phrase it replaces. A pronoun in X ("his approval rating") stands for the person last named."""
    previous = _predicate_turn(history)
    wh, rest, inverted = _split_wh(previous.reading)
    if not wh and rest.split()[:1] and rest.split()[0].lower() in _AUX:
        inverted = True  # a yes/no question: "Are there penalties for breaking the Flag Code?"
    if not rest or not (wh or inverted):  # a yes/no question ("Are there penalties for …?") has no wh
        return []
    if _points_outside(topic, _PERSON_PRONOUN) and _people(history):
        topic = _substitute(topic, _PERSON_PRONOUN, _people(history)[0])
    first = topic.split()[0].lower()
    readings = []
    if first in _PREPOSITIONS:
        same = re.search(rf"\b{re.escape(first)}\s+[^,;?]+?(?=[,;]|\s+(?:{'|'.join(_PREPOSITIONS)})\s|$)",
                         rest, re.IGNORECASE)
        if same:
            readings.append(f"{wh} {rest[:same.start()]}{topic}{rest[same.end():]}?")
        else:
            readings.append(f"{wh} {rest} {topic}?")
    elif len(first) > 4 and first.endswith("ing"):
        gerund = re.search(r"\b\w{2,}ing\b[^,;?]*", rest)
        if gerund:
            readings.append(f"{wh} {rest[:gerund.start()]}{topic}{rest[gerund.end():]}?")
    else:
        subject = _subject(rest) if inverted else None
        if subject:
            readings.append(f"{wh} {_agreeing(rest.replace(subject, topic, 1), topic)}?")
        for name in reversed(_names(rest)):
            if (not subject or name not in subject) and name in rest:
                readings.append(f"{wh} {rest.replace(name, topic, 1)}?")
        if not readings:
            readings.append(f"{wh} {rest} {topic}?")
        if wh and wh.lower() not in {"what", "which", "who", "whom"} and not _looks_like_person(topic) \
                and not topic.lower().endswith("s") and not any(w.lower() in _PREPOSITIONS for w in topic.split()):
            readings.append(f"What is {topic}?")  # "When will they vote again?" then "And his approval rating?"
    return [r.strip() for r in readings]


def readings(question: str, history: list[Turn]) -> list[Contextual]:
    """The ways to read `question` after `history`, most plausible first (at most MAX_READINGS)."""
    if not history:
        return [Contextual(question, question)]
    previous = history[-1]
    stripped = _LEADING_CONJUNCTION.sub("", question, count=1)
    candidates: list[str] = []
    frame = _FRAME.match(question)
    condition = _condition_reading(question, previous)
    if condition:
        candidates.append(condition)
    elif _is_fragment(stripped):
        # "To whom?" after "How much is she giving away?": the pronoun the frame brings along is
        # someone the conversation named.
        people = _people(history)
        candidates += [_substitute(r, _PERSON_PRONOUN, people[0]) if people and _points_outside(r, _PERSON_PRONOUN)
                       else r for r in _fragment_readings(stripped, _predicate_turn(history))]
    elif frame and not _split_wh(frame.group("topic"))[0] and len(frame.group("topic").split()) <= 6 \
            and not any(w.lower() in _AUX for w in frame.group("topic").split()):
        candidates += _frame_readings(frame.group("topic"), history)
    else:
        base = stripped[:1].upper() + stripped[1:] if stripped != question else question
        if previous.answer_text and _is_time(previous.answer_text) and _TIME_PRONOUN.search(base):
            # "When will the talks continue?" → Monday; "What will happen then?" → "… on Monday?"
            candidates.append(_TIME_PRONOUN.sub(_when(previous.answer_text), base, count=1))
        candidates += _pronoun_readings(base, history)
        if base != question:
            candidates.append(base)
    out, seen = [], set()
    for c in (c[:1].upper() + c[1:] for c in candidates):
        if c not in seen and c != question:
            seen.add(c)
            out.append(Contextual(c, c))
    out = out[: MAX_READINGS - 1]
    if not out:
        return [Contextual(question, question)] if not is_follow_up(question) else [
            Contextual(question, f"{question} {previous.reading} {previous.answer_text or ''}".strip())]
    # The question as it was asked, searched with the previous turn's words, stays a reading: a
    # pronoun may point inside the question itself.
    out.append(Contextual(question, f"{question} {previous.reading}"))
    return out


def _pronoun_readings(base: str, history: list[Turn]) -> list[str]:
    """Readings of a question whose pronouns point at earlier turns: "he"/"she" become the people
    named, "it"/"they" the things talked about. A question with both gets both resolved ("Where did
    he first show it off?" after "Who invented neon lights?" → "Where did Claude first show neon
    lights off?"): a reading that names the person but keeps "it" gives the reader half a question.
    The readings that resolve only the person follow, in case "it" points inside the question."""
    person = _points_outside(base, _PERSON_PRONOUN)
    thing = _points_outside(base, _THING_PRONOUN) and not _does_it(base)
    if not thing:
        return [_substitute(base, _PERSON_PRONOUN, p) for p in _people(history)[:2]] if person else []
    # What the question names itself is not what its "it" stands for ("When did Facebook buy
    # it?" after "How much did Facebook pay for Instagram?" asks about Instagram).
    pronoun = _THING_PRONOUN.search(base).group(1)
    things = [t for t in _things(history, pronoun, _own_subject(base, pronoun)) if t.lower() not in base.lower()]
    if not person:
        return [_substitute(base, _THING_PRONOUN, t) for t in things[:3]]
    people = _people(history)[:2]
    both = [_substitute(_substitute(base, _PERSON_PRONOUN, p), _THING_PRONOUN, t) for p in people[:1] for t in things[:2]]
    return both + [_substitute(base, _PERSON_PRONOUN, p) for p in people]


_DO = frozenset("do does did doing done".split())


def _does_it(question: str) -> bool:
    """Whether the question's "it" follows a form of "do": "Why did he do it?" asks about an
    action the last turns told of, which no noun phrase of theirs names."""
    match = _THING_PRONOUN.search(question)
    if match is None or match.group(1).lower() != "it":
        return False
    before = question[: match.start()].split()
    # The auxiliary right after the question word ("What did it show?", "Does it have …?") is no
    # main verb.
    auxiliary_at = len(_split_wh(question)[0].split())
    return len(before) - 1 > auxiliary_at and before[-1].lower() in _DO


def _own_subject(question: str, pronoun: str) -> bool:
    """Whether `pronoun` is the object of a question that names its own subject: "How did
    Zuckerberg get it for less?" (not "When did it happen?" or "What did it show?")."""
    if pronoun.lower() not in _OBJECT_PRONOUNS:
        return False
    _, rest, inverted = _split_wh(question)
    subject = _subject(rest) if inverted else None
    return bool(subject) and subject.lower() not in {"he", "she", "they", "it", "you", "we", "i"} \
        and not _PERSON_PRONOUN.fullmatch(subject.split()[0])


_CONDITION = re.compile(r"^\s*(?:(?:and|but|so)\s+)?(?P<clause>(?:if|when|unless|once|until|while)\s+.+?)\s*[?.!]*\s*$",
                        re.IGNORECASE)


def _condition_reading(question: str, previous: Turn) -> str | None:
    """"And if shareholders vote it down?" / "And when that doesn't work?": a bare conditional
    clause asks the previous question again under that condition ("How did Zuckerberg get Oculus
    for less when that doesn't work?"). It is a clause, not a question, when a subject and a verb
    follow the conjunction ("when will they vote?" inverts: a question of its own; "when?" is a
    fragment); it is never put inside the previous question, whose words it would break."""
    match = _CONDITION.match(question)
    if match is None:
        return None
    clause = match.group("clause")
    words = [w.lower().strip(",") for w in clause.split()]
    if len(words) < 3 or words[1] in _AUX or words[1] in _WH or "," in clause:
        return None
    if not any(w in _AUX or w.endswith(("n't", "n’t")) or _is_verb(w) for w in words[2:]):
        return None
    return f"{previous.reading.rstrip(' ?.!')} {clause[:1].lower()}{clause[1:]}?"


def _points_back_with_this_or_that(question: str) -> bool:
    """Whether a bare "that"/"this" stands for what was just said: as the question's last word
    ("Who decided that?", "Why did he say this?") or as the subject of a bare verb after "do",
    "will", ... ("When did this happen?"). Elsewhere "that" is mostly a conjunction ("Who said that
    the talks failed?") or a determiner ("that deal"), which name their own thing."""
    words = [w.lower().strip(",") for w in _words(question)]
    if len(words) < 2:
        return False
    if words[-1] in {"that", "this"}:
        return True
    return any(w in {"that", "this"} and words[i - 1] in _BARE_VERB_AUX and i + 1 < len(words)
               and words[i + 1] in _VERBS for i, w in enumerate(words) if i > 0)


def is_follow_up(question: str) -> bool:
    """Whether the question leans on earlier turns: a pronoun with nothing in the question for it
    to stand for (a bare "that" included), a bare question word, "And X?"/"What about X?", a
    leading "And"."""
    return bool(
        _points_outside(question, _PERSON_PRONOUN) or _points_outside(question, _THING_PRONOUN)
        or _FRAME.match(question) or _LEADING_CONJUNCTION.match(question) or _is_fragment(question)
        or _points_back_with_this_or_that(question)
    )


# --- conversations ---------------------------------------------------------------------------------

READING_PREFERENCE = 0.05  # probability a later (less plausible) reading of a follow-up gives up per rank


def ask_in_context(qa, questions: list[str], histories: list[list[Turn]],
                   within: list[str | None] | None = None) -> list:
    """Answers to questions asked after their conversations' `histories`, from `qa.ask_many`.

    A follow-up may have several readings (`readings`); all are answered in one batch and the one
    the article answers most confidently is kept, the more plausible reading winning a near tie, so
    "they" becomes whatever the article can say something about.
    """
    options = [readings(q, h) for q, h in zip(questions, histories)]
    asked = [q for q, opts in zip(questions, options) for _ in opts]
    contexts = [c for opts in options for c in opts]
    if within is not None and any(w is not None for w in within):  # each reading keeps its question's article
        answers = qa.ask_many(asked, contexts, [w for w, opts in zip(within, options) for _ in opts])
    else:
        answers = qa.ask_many(asked, contexts)
    return _chosen_readings(options, answers, lambda answer: answer.score)


def evidence_in_context(qa, questions: list[str], histories: list[list[Turn]]) -> list[tuple]:
    """`ask_in_context` with each chosen reading's evidence: (Evidence, Answer) pairs from
    `qa.evidence_many`, chosen by the same rule (what the confidence is fitted on for follow-ups)."""
    options = [readings(q, h) for q, h in zip(questions, histories)]
    asked = [q for q, opts in zip(questions, options) for _ in opts]
    pairs = qa.evidence_many(asked, [c for opts in options for c in opts])
    return _chosen_readings(options, pairs, lambda pair: pair[1].score)


def _chosen_readings(options: list[list[Contextual]], results: list, score) -> list:
    """Per question, the result of its most confidently answered reading (`results` holds one per
    reading, in order), a later reading giving up READING_PREFERENCE per rank."""
    results = iter(results)
    chosen = []
    for opts in options:
        candidates = [next(results) for _ in opts]
        chosen.append(max(enumerate(candidates), key=lambda rc: score(rc[1]) - READING_PREFERENCE * rc[0])[1])
    return chosen


def turn_after(answer) -> Turn:
    """What a conversation remembers of a question: its answer, or the best guess the user was
    shown ("Not sure. The closest the article comes: NATO allies"), which is what a follow-up
    such as "To whom?" or "What did they do?" then builds on."""
    return Turn(answer.question, answer.remembered_text, answer.read_as)


class Conversation:
    """Questions asked one after another, each read in the light of the previous turns, with the
    pipeline `qa` (it may be swapped for another view of it, as the chat's `:k` does). The last
    `max_turns` turns are kept (None: all); a follow-up looks back only a few."""

    def __init__(self, qa, max_turns: int | None = None):
        self.qa = qa
        self.max_turns = max_turns
        self.turns: list[Turn] = []

    def ask(self, question: str, within: str | None = None):
        """The answer to `question` after the turns so far; `within` limits it to one article of a corpus."""
        answer = ask_in_context(self.qa, [question], [self.turns], None if within is None else [within])[0]
        self.remember(turn_after(answer))
        return answer

    def remember(self, turn: Turn) -> None:
        """Add a finished turn (one answered here, or one an earlier batch run answered)."""
        self.turns.append(turn)
        if self.max_turns is not None:
            del self.turns[: -self.max_turns]

    def reset(self) -> None:
        self.turns.clear()


class Conversations:
    """Conversations by id, all with the pipeline `qa`: the lines of a batch file that share a
    "conversation", the turns of an eval chat, the web page's clients.

    The `max_conversations` most recently used are kept (None: all), the least recently used
    dropped first; each keeps its last `max_turns` turns. Not thread-safe: one thread asks.
    """

    def __init__(self, qa, *, max_conversations: int | None = None, max_turns: int | None = None):
        self.qa = qa
        self.max_conversations = max_conversations
        self.max_turns = max_turns
        self._by_id: OrderedDict[str, Conversation] = OrderedDict()

    def __len__(self) -> int:
        return len(self._by_id)

    def new(self) -> str:
        """Start a conversation under a new random, unguessable id, and return the id."""
        conversation_id = secrets.token_urlsafe(12)
        self.named(conversation_id)
        return conversation_id

    def get(self, conversation_id: str) -> Conversation | None:
        """The conversation of this id (now the most recently used), or None: unknown or dropped."""
        conversation = self._by_id.get(conversation_id)
        if conversation is not None:
            self._by_id.move_to_end(conversation_id)
        return conversation

    def named(self, conversation_id: str) -> Conversation:
        """The conversation of this id, started when there is none (ids a batch file or chats file
        gives)."""
        conversation = self.get(conversation_id)
        if conversation is None:
            conversation = self._by_id[conversation_id] = Conversation(self.qa, self.max_turns)
            while self.max_conversations is not None and len(self._by_id) > self.max_conversations:
                self._by_id.popitem(last=False)  # the least recently used
        return conversation

    def ask_many(self, asked: list[tuple[str | None, str]], within: list[str | None] | None = None) -> list:
        """Answers to (conversation id, question) pairs, in order, in one batched call; a question
        without an id stands alone. One call holds at most one question of a conversation: a
        conversation's turns depend on each other, so they are asked in calls one after another."""
        conversations = [None if cid is None else self.named(cid) for cid, _ in asked]
        ids = [cid for cid, _ in asked if cid is not None]
        if len(ids) != len(set(ids)):
            raise ValueError("one call asks at most one question of each conversation")
        answers = ask_in_context(self.qa, [q for _, q in asked], [c.turns if c else [] for c in conversations],
                                 within)
        if len(answers) != len(asked):  # zip would drop questions silently
            raise RuntimeError(f"{len(answers)} answers for {len(asked)} questions")
        for conversation, answer in zip(conversations, answers):
            if conversation is not None:
                conversation.remember(turn_after(answer))
        return answers
