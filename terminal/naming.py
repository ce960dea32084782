"""Which article answers, said where the user sees it: the chat's first line, and a dim line over
`ask`'s answer on a terminal.

Asked without `--article`, the answer comes from the shipped sample article: a user who forgot
`--article` and asks about something else gets "The article does not say." with nothing to say
why. So the shipped article is named as what it is, with the way to ask about another (in under 80
columns); any other article is named by its path or link as given, and its title (an HTML story's
headline, else its first line). A pipe gets no such line from `ask` (scripts' output stays as it was); `--json` has it as
`"article"` (`index.article.article_ref`: the answer's, the best guess's and each passage's).
"""

from __future__ import annotations

_TITLE_SHOWN = 60  # characters of a title in the one line


def article_name(article) -> str:
    """"the sample article (Ukraine peace talks)", or "news/cnet.html · “Zuckerberg offers …”"."""
    from article_qa.index.article import DEFAULT_ARTICLE_NAME, DEFAULT_ARTICLE_TITLE
    from article_qa.index.printable import printable

    if article.source == DEFAULT_ARTICLE_NAME:
        return f"the sample article ({DEFAULT_ARTICLE_TITLE})"
    shown = printable(article.source)  # as the user gave it: the path, the link or <stdin>
    title = " ".join(article.ref().title.split())
    if not title or title == shown:
        return shown
    if len(title) > _TITLE_SHOWN:
        title = title[: _TITLE_SHOWN - 1].rstrip() + "…"
    return f"{shown} · “{printable(title)}”"


def from_line(article) -> str:
    """The line over `ask`'s answer on a terminal."""
    from article_qa.index.article import DEFAULT_ARTICLE_NAME

    name = article_name(article)
    if article.source == DEFAULT_ARTICLE_NAME:
        return f"from: {name} — --article FILE asks another"
    return f"from: {name}"


def show_from_line(article) -> None:
    """`from_line`, dim, cut at the terminal's edge."""
    from article_qa.terminal.render import Line, Segment, print_lines

    print_lines([Line((Segment(from_line(article), "dim"),), one_line=True)])
