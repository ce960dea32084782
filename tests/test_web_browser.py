"""The page in a real browser: headless Chromium (Debian's `chromium` and `chromium-driver`, driven
by Selenium with those executables; nothing downloads a browser) asks a question, sees the answer
marked inside the article and scrolled into view, the passages read tinted, a follow-up read in
context, an earlier answer highlighted again on click, Up recalling questions, and the page usable
at phone width. Screenshots go to test-artifacts/ (gitignored).

Skipped, with the reason, where Chromium, its driver or Selenium is missing; `.ci/run` installs
Chromium so that CI always runs it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from helpers_web import WAIT_S, running

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
PEACE_TALKS = "Where were the peace talks held?"
WHO_ANNOUNCED = "Who announced that Ukraine is dropping its NATO bid?"
FOLLOW_UP = "How did he speak to journalists?"


def _browser() -> tuple[str, str]:
    chromium = next(filter(None, map(shutil.which, ["chromium", "chromium-browser"])), None)
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        pytest.skip("headless Chromium test skipped: no chromium and chromedriver on PATH "
                    "(Debian: apt-get install chromium chromium-driver; .ci/run installs them)")
    try:
        import selenium  # noqa: F401
    except ImportError:
        pytest.skip("headless Chromium test skipped: the selenium package is missing (pip install -e '.[test]')")
    return chromium, driver


@pytest.fixture(scope="module")
def browser():
    chromium, driver_path = _browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as DriverService

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,800", "--no-first-run", "--disable-extensions",
                     "--force-color-profile=srgb", "--hide-scrollbars", "--lang=en-US"]:
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=DriverService(executable_path=driver_path))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def page_url(default_qa):
    with running(default_qa) as url:
        yield url


def open_page(driver, url: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(url)
    wait(driver, lambda d: d.find_element(By.ID, "article").get_attribute("aria-busy") == "false", "the article")


def wait(driver, condition, what: str):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT_S, poll_frequency=0.1).until(lambda d: condition(d), message=what)


def ask(driver, question: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    done = len(driver.find_elements(By.CSS_SELECTOR, "#log .turn:not(.pending)"))
    box = driver.find_element(By.ID, "question")
    box.send_keys(question, Keys.ENTER)  # Enter asks
    wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#log .turn:not(.pending)")) == done + 1,
         f"an answer to {question!r}")


MARKED = """
const marks = [...document.querySelectorAll('#article mark.' + arguments[0])];
return marks.map(m => m.textContent).join('');
"""
# The first mark is in the article pane's visible area and in the window, and nothing covers it.
VISIBLE = """
const mark = document.querySelector('#article mark');
if (!mark) return false;
const r = mark.getBoundingClientRect(), pane = document.getElementById('article').getBoundingClientRect();
const inside = r.top >= Math.max(0, pane.top) && r.bottom <= Math.min(innerHeight, pane.bottom)
  && r.left >= 0 && r.right <= innerWidth && r.height > 0;
const hit = document.elementFromPoint((r.left + r.right) / 2, (r.top + r.bottom) / 2);
return inside && (hit === mark || mark.contains(hit));
"""
TINTED_VISIBLE_CHARS = """
const tinted = [...document.querySelectorAll('#article .read')].map(e => e.textContent).join('');
return [...tinted.replace(/\\s/g, '')].length;  // code points, as Python counts
"""


def visible_chars_in(text: str, ranges) -> int:
    covered = set()
    for start, end in ranges:
        covered.update(i for i in range(start, end) if not text[i].isspace())
    return len(covered)


def test_page_marks_answers_in_the_article(browser, page_url, default_qa):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from article_qa.web.blocks import article_blocks

    ARTIFACTS.mkdir(exist_ok=True)
    text = default_qa.article.text
    chat = default_qa.conversation()
    expected = [chat.ask(q).to_dict() for q in (PEACE_TALKS, WHO_ANNOUNCED, FOLLOW_UP)]

    driver = browser
    driver.set_window_size(1280, 800)
    open_page(driver, page_url)
    paragraphs = [p.text for p in driver.find_elements(By.CSS_SELECTOR, "#article p")]
    assert paragraphs == [text[b.start : b.end] for b in article_blocks(text)]  # each as in the file
    # One article: no list of articles and no choice of where to search, as before corpora.
    assert not driver.find_element(By.ID, "list-pane").is_displayed()
    assert not driver.find_element(By.ID, "within").is_displayed()

    # Start scrolled to the end, so the answer is out of view until the page brings it in.
    driver.execute_script("const a = document.getElementById('article'); a.scrollTop = a.scrollHeight;")
    assert not driver.execute_script(VISIBLE)

    ask(driver, PEACE_TALKS)
    assert driver.execute_script(MARKED, "answer") == "Brussels, Belgium"
    wait(driver, lambda d: d.execute_script(VISIBLE), "'Brussels, Belgium' scrolled into view")
    passages = [(p["start"], p["end"]) for p in expected[0]["passages"]]
    assert driver.execute_script(TINTED_VISIBLE_CHARS) == visible_chars_in(text, passages) > 0
    first_answer = driver.find_element(By.CSS_SELECTOR, "#log .turn .a")
    assert "Brussels, Belgium" in first_answer.text and first_answer.get_attribute("aria-pressed") == "true"

    # A follow-up, read in the light of the question before it, as the terminal chat does.
    ask(driver, WHO_ANNOUNCED)
    ask(driver, FOLLOW_UP)
    turns = driver.find_elements(By.CSS_SELECTOR, "#log .turn")
    last = turns[-1]
    assert last.find_element(By.CSS_SELECTOR, ".read-as").text == f"read as: {expected[2]['read_as']}"
    shown = expected[2]["answer"] or expected[2]["best_guess"]
    kind = "answer" if expected[2]["answer"] else "guess"
    assert shown is not None
    assert driver.execute_script(MARKED, kind) == shown["text"] == text[shown["start"] : shown["end"]]
    wait(driver, lambda d: d.execute_script(VISIBLE), "the follow-up's answer scrolled into view")
    driver.save_screenshot(str(ARTIFACTS / "serve-desktop.png"))

    # Clicking an earlier answer highlights it again.
    first_answer.click()
    assert driver.execute_script(MARKED, "answer") == "Brussels, Belgium"
    wait(driver, lambda d: d.execute_script(VISIBLE), "the first answer back in view")
    assert first_answer.get_attribute("aria-pressed") == "true"

    # Up recalls the last question, then the one before; Down goes back.
    box = driver.find_element(By.ID, "question")
    box.click()
    box.send_keys(Keys.ARROW_UP)
    assert box.get_attribute("value") == FOLLOW_UP
    box.send_keys(Keys.ARROW_UP)
    assert box.get_attribute("value") == WHO_ANNOUNCED
    box.send_keys(Keys.ARROW_DOWN, Keys.ARROW_DOWN)
    assert box.get_attribute("value") == ""

    # Text is inserted as text: markup in a question stays characters, nothing is created or run.
    ask(driver, '<img src=x onerror="document.body.dataset.pwned=1"> Who is the U.S. envoy?')
    question_shown = driver.find_elements(By.CSS_SELECTOR, "#log .turn .q")[-1]
    assert question_shown.text.startswith("<img src=x onerror=")
    assert not driver.find_elements(By.CSS_SELECTOR, "#log img, #article img")
    assert driver.execute_script("return document.body.dataset.pwned") is None

    # Phone width: article above, chat below, no sideways scrolling, the answer still shown in place.
    driver.set_window_size(390, 844)
    first_answer.click()
    wait(driver, lambda d: d.execute_script(VISIBLE), "the answer in view at phone width")
    assert driver.execute_script("return document.documentElement.scrollWidth <= innerWidth")
    assert driver.find_element(By.ID, "question").is_displayed()
    driver.save_screenshot(str(ARTIFACTS / "serve-phone.png"))


STYLE = "const e = document.querySelector(arguments[0]); return e && getComputedStyle(e)[arguments[1]];"


def test_not_sure_and_no_answer_look_different_from_answers(browser, default_qa):
    """The real pipeline with a decision no span can pass: a best guess shows as "not sure"; with no
    guess allowed either, "the article does not say" and only the passages read are tinted."""
    from selenium.webdriver.common.by import By

    from article_qa.qa.answer import Decision

    driver = browser
    driver.set_window_size(1280, 800)
    unsure = default_qa.with_settings(decision=Decision(null_threshold=1000.0, guess_floor=0.0))
    expected = unsure.ask(PEACE_TALKS)
    assert expected.verdict == "not sure"
    with running(unsure) as url:
        open_page(driver, url)
        ask(driver, PEACE_TALKS)
        button = driver.find_element(By.CSS_SELECTOR, "#log .turn .a")
        assert "not-sure" in button.get_attribute("class") and button.text.startswith("Not sure. The closest the article comes: ")
        assert driver.execute_script(MARKED, "guess") == expected.best_guess.text
        assert driver.execute_script(MARKED, "answer") == ""
        wait(driver, lambda d: d.execute_script(VISIBLE), "the best guess in view")
        guess_look = (driver.execute_script(STYLE, "#article mark.guess", "backgroundColor"),
                      driver.execute_script(STYLE, "#article mark.guess", "outlineStyle"),
                      driver.execute_script(STYLE, "#log .a", "borderLeftStyle"))
        driver.save_screenshot(str(ARTIFACTS / "serve-not-sure.png"))
    with running(default_qa) as url:
        open_page(driver, url)
        ask(driver, PEACE_TALKS)
        answer_look = (driver.execute_script(STYLE, "#article mark.answer", "backgroundColor"),
                       driver.execute_script(STYLE, "#article mark.answer", "outlineStyle"),
                       driver.execute_script(STYLE, "#log .a", "borderLeftStyle"))
    assert guess_look[1:] == ("dashed", "dashed") and answer_look[1:] == ("none", "solid")
    assert guess_look[0] != answer_look[0]

    silent = default_qa.with_settings(decision=Decision(null_threshold=1000.0, guess_floor=1.1))
    assert silent.ask(PEACE_TALKS).verdict == "not in the article"
    with running(silent) as url:
        open_page(driver, url)
        ask(driver, PEACE_TALKS)
        button = driver.find_element(By.CSS_SELECTOR, "#log .turn .a")
        assert "none" in button.get_attribute("class") and button.text.startswith("The article does not say.")
        assert not driver.find_elements(By.CSS_SELECTOR, "#article mark")
        assert driver.find_elements(By.CSS_SELECTOR, "#article .read")


def test_a_corpus_lists_its_articles_filters_them_and_an_answer_opens_its_article(browser, news, news_qa):
    """Over a corpus: the list of articles, a filter that narrows it as you type and works from the
    keyboard, an answer that opens its own article with the span marked in view, and a question
    asked only within the article shown."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from article_qa.web.blocks import article_blocks

    _, texts = news
    driver = browser
    driver.set_window_size(1280, 800)

    def listed():
        return [b.get_attribute("data-id") for b in driver.find_elements(By.CSS_SELECTOR, "#articles li:not([hidden]) button")]

    def shown(title):
        wait(driver, lambda d: d.find_element(By.ID, "article-title").text == title, f"the article {title!r}")
        current = driver.find_elements(By.CSS_SELECTOR, '#articles button[aria-current="true"]')
        return [b.get_attribute("data-id") for b in current]

    with running(news_qa) as url:
        open_page(driver, url)
        assert listed() == ["bridge.txt", "ukraine.txt", "sub/lamp.md"]
        assert driver.find_element(By.ID, "list-meta").text == "3 articles"
        assert shown("Bridge News") == ["bridge.txt"]  # the first article is open

        # The filter narrows the list as you type; Enter opens the first match, Escape clears it.
        box = driver.find_element(By.ID, "filter")
        box.send_keys("LAMP")
        assert listed() == ["sub/lamp.md"] and driver.find_element(By.ID, "list-meta").text == "1 of 3 articles"
        box.send_keys(Keys.ENTER)
        assert shown("Lamp History") == ["sub/lamp.md"]
        lamp = texts["sub/lamp.md"]
        assert [p.text for p in driver.find_elements(By.CSS_SELECTOR, "#article p")] == \
            [lamp[b.start:b.end] for b in article_blocks(lamp)]
        box.send_keys(Keys.ESCAPE)
        assert listed() == ["bridge.txt", "ukraine.txt", "sub/lamp.md"]
        # Down goes into the list and along it; Enter opens the article there.
        box.send_keys(Keys.ARROW_DOWN)
        driver.switch_to.active_element.send_keys(Keys.ARROW_DOWN)
        assert driver.switch_to.active_element.get_attribute("data-id") == "ukraine.txt"
        driver.switch_to.active_element.send_keys(Keys.ENTER)
        assert shown(news_qa.index.refs["ukraine.txt"].title) == ["ukraine.txt"]

        # A question over every article: its answer opens the bridge article, marked and in view.
        expected = news_qa.conversation().ask("When did the Tay bridge open?").to_dict()
        assert expected["answer"]["article"]["id"] == "bridge.txt"
        ask(driver, "When did the Tay bridge open?")
        assert shown("Bridge News") == ["bridge.txt"]
        wait(driver, lambda d: d.execute_script(MARKED, "answer") == "March 2024", "March 2024 marked")
        wait(driver, lambda d: d.execute_script(VISIBLE), "the answer scrolled into view")
        bridge_answer = driver.find_elements(By.CSS_SELECTOR, "#log .turn .a")[-1]
        assert "in Bridge News" in bridge_answer.text
        driver.save_screenshot(str(ARTIFACTS / "serve-corpus.png"))

        # Only in the article shown: the lamp article stays open, and only its passages are read.
        driver.find_element(By.CSS_SELECTOR, '#articles button[data-id="sub/lamp.md"]').click()
        assert shown("Lamp History") == ["sub/lamp.md"]
        driver.find_element(By.ID, "within").click()
        assert "Lamp History" in driver.find_element(By.ID, "scope").text
        ask(driver, "When did the Tay bridge open?")
        assert shown("Lamp History") == ["sub/lamp.md"]
        assert "March 2024" not in driver.execute_script(MARKED, "answer")
        assert driver.find_elements(By.CSS_SELECTOR, "#article .read")

        # Clicking the earlier answer opens its article again with the span marked.
        bridge_answer.click()
        assert shown("Bridge News") == ["bridge.txt"]
        wait(driver, lambda d: d.execute_script(MARKED, "answer") == "March 2024", "March 2024 marked again")

        # Phone width: the list, the article and the chat one above the other, no sideways scrolling.
        driver.set_window_size(390, 844)
        bridge_answer.click()
        wait(driver, lambda d: d.execute_script(VISIBLE), "the answer in view at phone width")
        assert driver.execute_script("return document.documentElement.scrollWidth <= innerWidth")
        assert driver.find_element(By.ID, "filter").is_displayed() and driver.find_element(By.ID, "question").is_displayed()
        driver.save_screenshot(str(ARTIFACTS / "serve-corpus-phone.png"))
