"""The word lists the answering path and its training share, each defined once.

They differ by use, and each use is fitted to its list: the confidence's features (and the
calibrator fitted on them) weigh the content words of a question without `STOP_WORDS`; the
training data leaves out only `QUESTION_FUNCTION_WORDS`, the words every question has; follow-up
readings take an answer made of `TIME_WORDS_OF_DATES` for a time ("then" after "Monday"), while a
"when" question's answer is the right kind when it holds one of `TIME_WORDS_OF_ANSWERS`. Changing
a list changes what those fitted to it see: retrain or refit with it.
"""

from __future__ import annotations

WEEKDAYS = frozenset("monday tuesday wednesday thursday friday saturday sunday".split())
MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
          "november", "december")

# Articles, prepositions, auxiliaries, question words and pronouns: what a question says besides its content.
QUESTION_FUNCTION_WORDS = frozenset(
    "a an the of in on at to for by with from and or is was were are be been what which who whom "
    "whose when where why how did does do that this these those as it its his her their".split()
)
# Those and a few more (modals, negations, other pronouns): not content words of a question.
STOP_WORDS = QUESTION_FUNCTION_WORDS | frozenset(
    "being has have had will would can could should may might must about into than then so not no s "
    "they he she them him there".split()
)
# A time a "when" question may be answered with.
TIME_WORDS_OF_ANSWERS = WEEKDAYS | frozenset(MONTHS) | frozenset(
    "century decade year years today yesterday morning night".split()
)
# Words a date is made of ("Monday", "next week", "May 2015"): an answer of only these is a time.
TIME_WORDS_OF_DATES = WEEKDAYS | frozenset(MONTHS) | frozenset("today yesterday tomorrow week month year".split())
