// article-qa serve: the article with answers marked in place, and a chat beside it; over a corpus,
// the list of its articles too, and an answer opens its own article.
// Every piece of article, question or answer text goes into the page with textContent or as a
// text node, never as HTML, and the server's Content-Security-Policy allows no other script.

const $ = (id) => document.getElementById(id);
const reduceMotion = window.matchMedia("(prefers-reduced-motion: reduce)").matches;

const state = {
  corpus: false,    // more than one article: the list is shown and answers name their article
  articleId: null,  // the article shown
  opening: 0,       // counts article loads, so that only the latest one is shown
  loaded: new Map(), // the last few articles opened, by id
  entries: [],      // the list: {id, title, source, passages}
  complete: true,   // the list holds every article (filter here) or not (ask the server)
  filterTimer: 0,
  text: "",
  astral: [],       // code-point offsets of characters beyond U+FFFF (two UTF-16 units in JS)
  blocks: [],       // {kind, start, end} from /api/article, in order, not overlapping
  nodes: [],        // the element showing each block
  painted: new Set(), // blocks holding marks now
  conversation: null, // id the server gave; null starts a new conversation
  asked: [],        // questions asked, for the Up key
  recall: -1,       // position in `asked` while recalling, -1 when not
  busy: false,
  current: null,    // the answer button whose marks are shown
};

function count(n, noun) {
  return `${n.toLocaleString()} ${noun}${n === 1 ? "" : "s"}`;
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

async function api(path, body) {
  const init = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new Error("the server cannot be reached (is article-qa serve still running?)");
  }
  let data = null;
  try { data = await response.json(); } catch { /* not JSON: said below */ }
  if (!response.ok) {
    const error = new Error((data && data.error) || `${response.status} ${response.statusText}`);
    error.status = response.status;
    throw error;
  }
  return data;
}

// -- the article --

// The API's offsets count code points (Python string indices, as `ask --json` does); JavaScript
// strings count UTF-16 units, and an emoji before an answer is one code point but two units.
function astralPositions(text) {
  const positions = [];
  for (let unit = 0, point = 0; unit < text.length; unit++, point++) {
    const code = text.charCodeAt(unit);
    if (code >= 0xd800 && code <= 0xdbff && unit + 1 < text.length) {
      const next = text.charCodeAt(unit + 1);
      if (next >= 0xdc00 && next <= 0xdfff) { positions.push(point); unit++; }
    }
  }
  return positions;
}

function units(point) { // code-point offset -> UTF-16 offset
  const astral = state.astral;
  let lo = 0, hi = astral.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (astral[mid] < point) lo = mid + 1; else hi = mid;
  }
  return point + lo;
}

function inUnits(range) {
  return { ...range, start: units(range.start), end: units(range.end) };
}

const TAGS = { h1: "h2", h2: "h3", h3: "h4", h4: "h5", h5: "h6", h6: "h6", p: "p", lines: "p" };

function showArticle(data) {
  state.articleId = data.id;
  state.painted = new Set();
  state.text = data.text;
  state.astral = astralPositions(data.text);
  state.blocks = data.blocks.map(inUnits);
  const root = $("article");
  const fragment = document.createDocumentFragment();
  state.nodes = state.blocks.map((block) => {
    const node = el(TAGS[block.kind] || "p", block.kind === "lines" ? "lines" : "");
    node.textContent = state.text.slice(block.start, block.end);
    fragment.append(node);
    return node;
  });
  root.replaceChildren(fragment);
  root.setAttribute("aria-busy", "false");
  const name = state.corpus ? data.title || data.id : data.source.split(/[\\/]/).pop() || data.source;
  $("article-title").textContent = name;
  $("article-meta").textContent = (state.corpus ? `${data.id} · ` : "") +
    `${count(data.passages.length, "passage")} · ${(data.text.length - state.astral.length).toLocaleString()} characters`;
  document.title = `${name} · article-qa`;
  $("within-title").textContent = `“${name}”`;
  for (const button of $("articles").querySelectorAll("button")) {
    if (button.dataset.id === data.id) button.setAttribute("aria-current", "true");
    else button.removeAttribute("aria-current");
  }
}

// Opens article `id` (fetched once, the last few kept); false when a later opening overtook it.
async function openArticle(id) {
  const ticket = ++state.opening;
  let data = state.loaded.get(id);
  if (!data) {
    $("article").setAttribute("aria-busy", "true");
    data = await api(`/api/article/${encodeURIComponent(id)}`);
    state.loaded.set(id, data);
    if (state.loaded.size > 8) state.loaded.delete(state.loaded.keys().next().value);
  }
  if (ticket !== state.opening) return false;
  if (state.articleId !== id) {
    showArticle(data);
    if (state.current) state.current.setAttribute("aria-pressed", "false");
    state.current = null;
  }
  return true;
}

// -- the list of articles (a corpus) --

function listItem(entry) {
  const item = el("li");
  const button = el("button", "pick");
  button.type = "button";
  button.dataset.id = entry.id;
  button.title = entry.title; // shown in full on hover; the list clamps it to two lines
  button.append(el("span", "label", entry.title || entry.id), el("span", "detail", `${entry.id} · ${count(entry.passages, "passage")}`));
  if (entry.id === state.articleId) button.setAttribute("aria-current", "true");
  button.addEventListener("click", () => openArticle(entry.id).catch((error) => failArticle(error)));
  item.append(button);
  return item;
}

function showList(data) {
  state.entries = data.articles;
  state.complete = data.matched === data.articles.length && data.total === data.matched;
  $("articles").replaceChildren(...data.articles.map(listItem));
  countList(data.matched, data.total);
}

function countList(matched, total) {
  const shown = $("articles").querySelectorAll("li:not([hidden])").length;
  $("list-meta").textContent = shown < matched
    ? `${shown.toLocaleString()} shown of ${matched.toLocaleString()}${matched < total ? ` matching (${total.toLocaleString()} in all)` : ""}: type to narrow`
    : matched === total ? `${total.toLocaleString()} articles` : `${matched.toLocaleString()} of ${total.toLocaleString()} articles`;
}

// The filter narrows the list as you type: every word must be in the title or the id, as on the
// server, which is asked only when the list does not hold every article.
function filterList() {
  const query = $("filter").value;
  if (!state.complete) {
    clearTimeout(state.filterTimer);
    state.filterTimer = setTimeout(async () => {
      try {
        const data = await api(`/api/articles?q=${encodeURIComponent(query)}`);
        if ($("filter").value !== query) return;
        $("articles").replaceChildren(...data.articles.map(listItem));
        countList(data.matched, data.total);
      } catch (error) {
        $("list-meta").textContent = `Could not filter: ${error.message}`;
      }
    }, 150);
    return;
  }
  const words = query.toLocaleLowerCase().split(/\s+/).filter(Boolean);
  let matched = 0;
  for (const [i, item] of [...$("articles").children].entries()) {
    const entry = state.entries[i];
    const where = `${entry.title}\n${entry.id}`.toLocaleLowerCase();
    item.hidden = !words.every((word) => where.includes(word));
    matched += !item.hidden;
  }
  countList(matched, state.entries.length);
}

// Keyboard: Down from the filter goes into the list, Up and Down move in it, Enter in the filter
// opens the first match, Escape clears the filter.
function listKeys(event) {
  const buttons = [...$("articles").querySelectorAll("li:not([hidden]) button")];
  const at = buttons.indexOf(document.activeElement);
  if (event.target === $("filter")) {
    if (event.key === "ArrowDown" && buttons.length) buttons[0].focus();
    else if (event.key === "Enter" && buttons.length) buttons[0].click();
    else if (event.key === "Escape" && $("filter").value) { $("filter").value = ""; filterList(); }
    else return;
  } else if (at !== -1 && event.key === "ArrowDown") {
    buttons[Math.min(at + 1, buttons.length - 1)].focus();
  } else if (at !== -1 && event.key === "ArrowUp") {
    (at === 0 ? $("filter") : buttons[at - 1]).focus();
  } else {
    return;
  }
  event.preventDefault();
}

function failArticle(error) {
  $("article-meta").textContent = `Could not load the article: ${error.message}`;
  $("article").setAttribute("aria-busy", "false");
}

// Blocks overlapping [start, end): binary search for the first, then walk.
function blocksIn(start, end) {
  const blocks = state.blocks;
  let lo = 0, hi = blocks.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (blocks[mid].end <= start) lo = mid + 1; else hi = mid;
  }
  const found = [];
  for (let i = lo; i < blocks.length && blocks[i].start < end; i++) found.push(i);
  return found;
}

// Show `marks` ({start, end, kind: "answer" | "guess" | "read"}) in the article, replacing the
// previous ones; returns the first answer or guess mark.
function paint(marks) {
  const touched = new Set();
  for (const mark of marks) for (const i of blocksIn(mark.start, mark.end)) touched.add(i);
  for (const i of state.painted) {
    if (!touched.has(i)) state.nodes[i].textContent = state.text.slice(state.blocks[i].start, state.blocks[i].end);
  }
  let first = null;
  for (const i of [...touched].sort((a, b) => a - b)) {
    const found = paintBlock(i, marks);
    first = first || found;
  }
  state.painted = touched;
  return first;
}

function paintBlock(i, marks) {
  const block = state.blocks[i];
  const cuts = new Set([block.start, block.end]);
  for (const m of marks) {
    if (m.end > block.start && m.start < block.end) {
      cuts.add(Math.max(m.start, block.start));
      cuts.add(Math.min(m.end, block.end));
    }
  }
  const points = [...cuts].sort((a, b) => a - b);
  const parts = [];
  let first = null;
  for (let k = 0; k + 1 < points.length; k++) {
    const start = points[k], end = points[k + 1];
    const text = state.text.slice(start, end);
    const covers = (m) => m.start <= start && m.end >= end;
    const span = marks.find((m) => m.kind !== "read" && covers(m));
    const read = marks.some((m) => m.kind === "read" && covers(m));
    if (span) {
      const mark = el("mark", span.kind + (read ? " read" : ""), text);
      mark.title = span.kind === "answer" ? "the answer" : "best guess (not sure)";
      parts.push(mark);
      first = first || mark;
    } else if (read) {
      const tint = el("span", "read", text);
      tint.title = "a passage that was read";
      parts.push(tint);
    } else {
      parts.push(document.createTextNode(text));
    }
  }
  state.nodes[i].replaceChildren(...parts);
  return first;
}

// The article an answer is in: its span's, else its best passage's (nothing was found).
function articleOf(result) {
  const named = result.answer || result.best_guess || result.passages[0];
  return named && named.article ? named.article.id : state.articleId;
}

function marksOf(result) {
  const here = (span) => !span.article || span.article.id === state.articleId;
  const marks = result.passages.filter(here).map((p) => ({ start: p.start, end: p.end, kind: "read" }));
  const span = result.answer || result.best_guess;
  if (span && here(span)) marks.push({ start: span.start, end: span.end, kind: result.answer ? "answer" : "guess" });
  return marks.map(inUnits);
}

async function show(result, button) {
  if (!(await openArticle(articleOf(result)))) return;
  const first = paint(marksOf(result));
  if (state.current) state.current.setAttribute("aria-pressed", "false");
  state.current = button;
  button.setAttribute("aria-pressed", "true");
  const target = first || $("article").querySelector(".read");
  if (target) target.scrollIntoView({ block: "center", behavior: reduceMotion ? "auto" : "smooth" });
}

// -- the chat --

// The verdict and the confidence come as the server says them (Answer.to_dict), so the page and
// the terminal agree: "not sure" is shown as "Not sure. The closest the article comes: …", and a
// confidence never reads 100% (">99%").
function answerButton(result) {
  const button = el("button", "a");
  button.type = "button";
  button.setAttribute("aria-pressed", "false");
  const span = result.answer || result.best_guess;
  const where = state.corpus && span && span.article ? ` · in ${span.article.title || span.article.id}` : "";
  if (result.verdict === "answered") {
    button.classList.add("answered");
    button.append(el("span", "label", result.answer.text));
    button.append(el("span", "detail",
      `answer${where} · characters ${result.answer.start}–${result.answer.end} · score ${result.answer.score.toFixed(2)} (${result.confidence} likely)`));
  } else if (result.verdict === "not sure") {
    button.classList.add("not-sure");
    button.append("Not sure. The closest the article comes: ", el("span", "label", result.best_guess.text));
    button.append(el("span", "detail",
      `not sure${where} · characters ${result.best_guess.start}–${result.best_guess.end} · ${result.confidence} likely`));
  } else {
    button.classList.add("none");
    button.append("The article does not say.");
    button.append(el("span", "detail", `${result.passages.length} passages read`));
  }
  button.addEventListener("click", () => show(result, button).catch(failArticle));
  return button;
}

function addTurn(question) {
  const item = el("li", "turn pending");
  item.append(el("p", "q", question));
  const waiting = el("p", "a", "Reading…");
  item.append(waiting);
  $("log").append(item);
  item.scrollIntoView({ block: "end" });
  return item;
}

function fillTurn(item, result) {
  item.classList.remove("pending");
  const children = [el("p", "q", result.question)];
  if (result.read_as) children.push(el("p", "read-as", `read as: ${result.read_as}`));
  const button = answerButton(result);
  children.push(button);
  item.replaceChildren(...children);
  item.scrollIntoView({ block: "end" });
  return button;
}

function failTurn(item, message) {
  item.classList.remove("pending");
  item.classList.add("error");
  item.setAttribute("role", "alert");
  item.lastElementChild.textContent = `Could not answer: ${message}`;
}

async function ask(question) {
  const body = { question };
  if (state.corpus && $("within").checked) body.article = state.articleId;
  if (state.conversation) body.conversation = state.conversation;
  try {
    return await api("/api/ask", body);
  } catch (error) {
    if (error.status === 404 && state.conversation && error.message.startsWith("unknown conversation")) { // the server forgot it
      state.conversation = null;
      delete body.conversation;
      return await api("/api/ask", body);
    }
    throw error;
  }
}

async function submit(event) {
  event.preventDefault();
  const input = $("question");
  const question = input.value.trim();
  if (!question || state.busy) return;
  state.busy = true;
  $("ask-button").disabled = true;
  state.asked.push(question);
  state.recall = -1;
  input.value = "";
  const item = addTurn(question);
  try {
    const result = await ask(question);
    state.conversation = result.conversation;
    await show(result, fillTurn(item, result)).catch(failArticle);
  } catch (error) {
    failTurn(item, error.message);
  } finally {
    state.busy = false;
    $("ask-button").disabled = false;
    input.focus();
  }
}

function recall(event) {
  const input = $("question");
  if (event.key === "ArrowUp" && state.asked.length) {
    if (state.recall === -1 && input.value.trim()) return; // a question being typed: leave it be
    state.recall = state.recall === -1 ? state.asked.length - 1 : Math.max(0, state.recall - 1);
  } else if (event.key === "ArrowDown" && state.recall !== -1) {
    state.recall = state.recall + 1 < state.asked.length ? state.recall + 1 : -1;
  } else {
    return;
  }
  event.preventDefault();
  input.value = state.recall === -1 ? "" : state.asked[state.recall];
  input.setSelectionRange(input.value.length, input.value.length);
}

function restart() {
  state.conversation = null;
  if ($("log").lastElementChild && !$("log").lastElementChild.classList.contains("divider")) {
    $("log").append(el("li", "divider", "New conversation: follow-ups start afresh"));
  }
  $("question").focus();
}

async function start() {
  $("ask-form").addEventListener("submit", submit);
  $("question").addEventListener("keydown", recall);
  $("question").addEventListener("input", () => { state.recall = -1; });
  $("restart").addEventListener("click", restart);
  $("filter").addEventListener("input", filterList);
  $("list-pane").addEventListener("keydown", listKeys);
  try {
    const list = await api("/api/articles");
    if (list.total > 1) { // a corpus: the list, and a choice to ask within the article shown
      state.corpus = true;
      $("layout").classList.add("corpus");
      $("list-pane").hidden = false;
      $("scope").hidden = false;
      $("question").labels[0].textContent = "Ask about the articles";
      showList(list);
    }
    if (!list.articles.length) throw new Error("the server has no articles");
    await openArticle(list.articles[0].id);
  } catch (error) {
    failArticle(error);
  }
}

start();
