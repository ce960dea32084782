"""The page's three files as shipped: nothing external (works offline, no CDN, no fonts), no way
for text to become HTML, keyboard and screen-reader basics, and small."""

from __future__ import annotations

import re

from article_qa.web.app import CONTENT_SECURITY_POLICY, STATIC, static_files

FILES = static_files()
HTML, CSS, JS = (FILES[name].decode("utf-8") for name in ("index.html", "app.css", "app.js"))


def test_the_page_is_three_shipped_files():
    assert sorted(FILES) == ["app.css", "app.js", "index.html"]
    assert {name for name, _ in STATIC.values()} == set(FILES)
    assert '<link rel="stylesheet" href="/app.css">' in HTML
    assert '<script type="module" src="/app.js"></script>' in HTML


def test_nothing_is_loaded_from_elsewhere():
    for name, text in FILES.items():
        text = text.decode("utf-8")
        assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", text, re.I), name
        assert "@import" not in text and "@font-face" not in text and "url(" not in text, name
    assert "<style" not in HTML and " style=" not in HTML and "<script>" not in HTML  # the CSP forbids inline
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY and "'unsafe-eval'" not in CONTENT_SECURITY_POLICY


def test_text_never_becomes_html():
    for sink in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
                 "setAttribute(\"on", "DOMParser", "createContextualFragment"]:
        assert sink not in JS, sink
    assert "textContent" in JS and "createTextNode" in JS


def test_accessible_basics():
    assert '<html lang="en">' in HTML and 'name="viewport"' in HTML
    assert '<label for="question">' in HTML and 'id="question"' in HTML
    assert 'aria-live="polite"' in HTML
    assert ":focus-visible" in CSS and "prefers-reduced-motion" in CSS and "@media (max-width:" in CSS
    assert "aria-pressed" in JS  # answers are toggle buttons: reachable and announced


def test_page_stays_small():
    total = sum(len(b) for b in FILES.values())
    assert total < 32_000, f"HTML+CSS+JS is {total:,} bytes"


def test_the_page_says_what_the_terminal_says():
    """The verdict and the confidence come from `Answer.to_dict`; the page uses the terminal's words
    for them rather than working them out again ("Best guess", "100%")."""
    from article_qa.qa.answer import CLOSEST_TEXT, NO_ANSWER_TEXT, NOT_SURE_TEXT, VERDICTS

    assert f"{NOT_SURE_TEXT} {CLOSEST_TEXT} " in JS and NO_ANSWER_TEXT in JS
    for verdict in VERDICTS[:2]:
        assert f'result.verdict === "{verdict}"' in JS
    assert "result.confidence" in JS and "Math.round" not in JS
