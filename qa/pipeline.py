"""One answering path for every front end: `ask`, `chat`, `batch` and `eval` all call `ArticleQA`.

Questions are always handled in batches (a single question is a batch of one): one encoder call
for all questions, one FAISS search, one padded reader pass. That is what makes 1,000 batch
questions cost far less than 1,000 single ones, and it keeps the interactive and scripted paths
from drifting apart.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

from article_qa.index.article import Article, load_article
from article_qa.index.cache_layout import CacheLayout
from article_qa.index.embedding_model import resolve_model
from article_qa.index.embeddings import Embedder, Progress
from article_qa.index.parallel import Loading
from article_qa.index.passages import Chunking
from article_qa.index.printable import quoted
from article_qa.index.store import ArticleIndex, open_index
from article_qa.qa.answer import Answer, Decision, decide
from article_qa.qa.confidence import Calibrator
from article_qa.qa.conversation import Contextual, Conversation, Conversations, Turn, ask_in_context
from article_qa.qa.question import language_notice, shorten_question
from article_qa.qa.reader import MAX_QUESTION_TOKENS, Reader, Span, truncate_question
from article_qa.qa.reader_loading import load_reader, shipped_config
from article_qa.qa.retrieve import DENSE_WEIGHT, Hit, retrieve

DEFAULT_K = 3


class QuestionWarning(UserWarning):
    """A question was used only in part (too long for the reader), or looks like another language."""


@dataclass(frozen=True)
class Settings:
    """Everything that changes answers without changing the index."""

    k: int = DEFAULT_K
    dense_weight: float = DENSE_WEIGHT
    # The reader skips retrieved passages scoring under this fraction of the best one; the reader is
    # most of the time a question takes. On the SQuAD 2.0 dev articles the answer-bearing passage,
    # when not the best, scored 0.68-0.99 of the best (21 questions), so 0.6 keeps all of them:
    # 1.9 passages read a question instead of 2.3 at 0.5, with the same F1 on both dev sets.
    read_ratio: float = 0.6
    # Before a question is left unanswered, the reader looks further: the passages down to rank
    # `wide_k` scoring at least `wide_floor` of the best, read in one more batched pass, and the
    # more confident of the two readings is kept. A news story says a thing in several places, and
    # the passage that matches the question's words best is often not the one that answers it.
    wide_k: int = 6
    wide_floor: float = 0.3
    decision: Decision = field(default_factory=Decision)
    # In a corpus: the id of the one article every question is limited to (`--within`), unless a
    # question names its own; None: all of them.
    within: str | None = None


@dataclass(frozen=True)
class Evidence:
    """What one answer is decided from: the question, the reading the reader read, its candidate
    spans and the passages they came from (the same for `ask_many` and for fitting the confidence)."""

    question: str
    context: Contextual
    read: Contextual
    spans: list[Span]
    hits: list[Hit]


def default_decision(reader_name: str | None) -> Decision:
    """The decision stored with a reader of ours (reader.json: its calibrator and thresholds, or an
    older reader's margin threshold); "the span must beat no answer" for any other reader."""
    from article_qa.qa.reader_loading import READER_CONFIG, SHIPPED_READER

    folder = SHIPPED_READER if reader_name is None else Path(reader_name).expanduser()
    try:
        config = shipped_config(folder) if (folder / READER_CONFIG).is_file() else {}
    except (OSError, ValueError):  # unreadable: the reader's own loading reports it
        config = {}
    return decision_from_config(config)


def decision_from_config(config: dict) -> Decision:
    confidence = config.get("confidence")
    margin_rule = Decision(float(config.get("null_threshold", 0.0)), float(config.get("retrieval_weight", 0.0)))
    if not confidence:
        return margin_rule
    try:
        calibrator = Calibrator.from_dict(confidence["calibrator"])
    except (KeyError, TypeError, ValueError):  # fitted for another version: still answer, by margin
        return margin_rule
    return replace(margin_rule, calibrator=calibrator,
                   answer_threshold=float(confidence.get("answer_threshold", 0.5)),
                   guess_floor=float(confidence.get("guess_floor", margin_rule.guess_floor)))


def first_use(model: str | None = None, reader: str | None = None, index_dir: str | Path | None = None) -> bool:
    """Whether answering will first have to prepare the models: export the encoder or the reader
    to ONNX (PyTorch is imported for that; ~15 s, once per model version, kept in the cache).

    Front ends say so before the wait instead of showing a silent screen. Models that are never
    exported (by hub name, or ARTICLE_QA_RUNTIME=torch) load slowly every time: not a first use.
    """
    from article_qa.index.onnx_export import MANIFEST_FILE, chosen_runtime, exported_model_path
    from article_qa.qa.reader_loading import export_path

    if chosen_runtime() == "torch":
        return False
    cache = CacheLayout.at(index_dir)
    if cache.problem():  # a cache folder that is not used gets no exports either
        return False
    try:
        encoder = resolve_model(model, hash_cache=cache.hash_cache)
    except Exception:  # noqa: BLE001 - opening the model reports it properly
        return False
    paths = [export_path(reader, cache)]
    if encoder.sha256:
        paths.append(exported_model_path(encoder, cache.exports))
    # An export made before exports had manifests is made again too (see index/onnx_export.py).
    return any(path is not None and not (path.parent / MANIFEST_FILE).is_file() for path in paths)


def _encoder_setup(model: str | None, index_dir: str | Path | None):
    """The cache layout, the cache to write (None when the folder is not safely the user's own: no
    hash cache, no exports; the index then says so once and stays in memory), the chosen runtime
    and the question/passage encoder, as every way of opening an index needs them."""
    from article_qa.index.onnx_export import chosen_runtime

    layout = CacheLayout.at(index_dir)
    runtime = chosen_runtime()
    cache = layout if layout.problem() is None else None
    embedder = Embedder(resolve_model(model, hash_cache=cache.hash_cache if cache else None),
                        export_dir=cache.exports if cache else None, runtime=runtime)
    return layout, cache, runtime, embedder


class ArticleQA:
    """Question answering over one article, or over a corpus of many (`open_corpus`). Cheap to
    construct; models load on first use.

    Over a corpus every answer names its article (`Answer.article`) and its offsets count in that
    article's text (`text_of`); the reader's candidates are decided article by article, so an
    answer and the candidates it is weighed against come one per article."""

    def __init__(self, index: ArticleIndex, reader_name: str | None = None, settings: Settings | None = None,
                 cache: CacheLayout | None = None, runtime: str = "auto"):
        self.index = index
        self.reader_name = reader_name
        self.settings = settings or Settings(decision=default_decision(reader_name))
        self.cache = cache  # where the reader's export and checksums are kept (None: nowhere)
        self.runtime = runtime
        self._reader: Loading[Reader] = Loading(lambda: load_reader(reader_name, cache, runtime))

    @classmethod
    def open(
        cls,
        article: Article | str | Path | None = None,
        *,
        model: str | None = None,
        reader: str | None = None,
        index_dir: str | Path | None = None,
        chunking: Chunking = Chunking(),
        settings: Settings | None = None,
        progress: Progress | None = None,
        rebuild: bool = False,
    ) -> "ArticleQA":
        """Open an article (a path, an `Article`, or None for the shipped one) and its index."""
        if not isinstance(article, Article):
            article = load_article(article)
        layout, cache, runtime, embedder = _encoder_setup(model, index_dir)
        index = open_index(article, embedder, chunking, layout.root, progress=progress, rebuild=rebuild)
        return cls(index, reader, settings, cache=cache, runtime=runtime)

    @classmethod
    def open_corpus(
        cls,
        articles,
        *,
        model: str | None = None,
        reader: str | None = None,
        index_dir: str | Path | None = None,
        chunking: Chunking = Chunking(),
        settings: Settings | None = None,
        progress: Progress | None = None,
        rebuild: bool = False,
        encoding: str = "utf-8",
    ) -> "ArticleQA":
        """Open a corpus: `articles` are `--article` values (files, folders, globs, JSON Lines
        files; `index.corpus_sources`) or a `Listing` of them. Its index is brought up to date
        article by article (`index.corpus_store`); `qa.index.status.changes` says what changed."""
        from article_qa.index.corpus_sources import Listing, list_corpus
        from article_qa.index.corpus_store import open_corpus

        listing = articles if isinstance(articles, Listing) else list_corpus([str(a) for a in articles])
        layout, cache, runtime, embedder = _encoder_setup(model, index_dir)
        index = open_corpus(listing, embedder, chunking, layout.root, progress=progress, rebuild=rebuild,
                            encoding=encoding)
        return cls(index, reader, settings, cache=cache, runtime=runtime)

    @classmethod
    def open_saved(
        cls,
        folder: str | Path,
        article: Article | None = None,
        *,
        model: str | None = None,
        reader: str | None = None,
        index_dir: str | Path | None = None,
        chunking: Chunking = Chunking(),
        settings: Settings | None = None,
    ) -> "ArticleQA":
        """The pipeline over the index saved in `folder`, opened read-only: an article's (give
        its `article`, whose text the offsets count in) or, with `article` None, a corpus's. For
        a batch worker, whose driver built the index; `index_dir` is the cache whose model exports
        it uses. Raises `index.store.SavedIndexError` (one line) when the folder cannot be used."""
        from article_qa.index.corpus_store import open_saved_corpus
        from article_qa.index.store import open_saved_index

        _, cache, runtime, embedder = _encoder_setup(model, index_dir)
        folder = Path(folder)
        index = (open_saved_corpus(folder, embedder, chunking) if article is None
                 else open_saved_index(folder, article, embedder, chunking))
        return cls(index, reader, settings, cache=cache, runtime=runtime)

    @property
    def is_corpus(self) -> bool:
        return getattr(self.index, "is_corpus", False)

    @property
    def article(self) -> Article:
        """The one article (a corpus has many: `text_of`, `index.refs`)."""
        if self.is_corpus:
            raise TypeError("a corpus has many articles: use text_of(answer) or index.refs")
        return self.index.article

    @property
    def article_count(self) -> int:
        return len(self.index) if self.is_corpus else 1

    def text_of(self, answer_or_ref=None) -> str:
        """The text an answer's offsets count in (its article's), or that of an `ArticleRef`."""
        if not self.is_corpus:
            return self.index.article.text
        ref = getattr(answer_or_ref, "article", answer_or_ref)
        if ref is None:
            raise ValueError("this answer names no article (nothing was found)")
        return self.index.text_of(ref.id)

    def resolve_within(self, value: str | None) -> str | None:
        """The article id `value` (an id or a path) names, for `--within` or a batch line's
        "article"; raises ValueError with a one-line message when the index has no such article."""
        if value is None:
            return None
        if self.is_corpus:
            try:
                return self.index.resolve(value)
            except KeyError as err:
                raise ValueError(err.args[0]) from None
        ref = self.index.article.ref()
        if value in (ref.id, ref.source) or os.path.realpath(value) == os.path.realpath(ref.source):
            return None  # the only article there is
        raise ValueError(f"no article {quoted(value)} here: the index holds only {quoted(ref.id)}")

    @property
    def reader(self) -> Reader:
        return self._reader.get()

    @property
    def loaded_reader(self) -> Reader | None:
        """The reader if it is loaded already; never waits or loads."""
        return self._reader.loaded

    def use_reader(self, reader) -> None:
        """Read with this reader instead (anything with Reader's `read_many`), e.g. one already loaded."""
        self._reader.set(reader)

    def start_loading(self) -> None:
        """Load the models in the background now (a chat does while its user types)."""
        self._reader.start()
        self.index.embedder.start_loading()

    def prepare(self) -> None:
        """Load (and on first use export) both models now, together, and wait for them."""
        self.start_loading()
        self.index.embedder.dim  # noqa: B018 - loading the encoder is the point
        self.reader  # noqa: B018 - and the reader

    def for_article(self, article: Article, index_dir: str | Path | None = None) -> "ArticleQA":
        """The same models and settings over another article: its own index, this pipeline's
        encoder and reader, so reading many articles (eval, calibration) loads each model once."""
        index = open_index(article, self.index.embedder, self.index.chunking, CacheLayout.at(index_dir).root)
        view = ArticleQA(index, self.reader_name, replace(self.settings, within=None), self.cache, self.runtime)
        view._reader = self._reader
        return view

    def with_settings(self, **changes) -> "ArticleQA":
        """A view with other settings (e.g. k) sharing the loaded index and models."""
        view = ArticleQA(self.index, self.reader_name, replace(self.settings, **changes), self.cache, self.runtime)
        view._reader = self._reader
        return view

    def ask(self, question: str) -> Answer:
        return self.ask_many([question])[0]

    def ask_many(self, questions: list[str], contexts: list[Contextual] | None = None,
                 within: list[str | None] | None = None) -> list[Answer]:
        """Answers in the order of `questions`; `contexts` carries rewritten follow-ups; `within`
        limits each question to one article of a corpus (an id; None: Settings.within)."""
        if not questions:
            return []
        return [answer for _, answer in self.evidence_many(questions, contexts, within)]

    def evidence_many(self, questions: list[str], contexts: list[Contextual] | None = None,
                      within: list[str | None] | None = None) -> list[tuple[Evidence, Answer]]:
        """Each question's evidence and the answer decided from it, in order: search, one reader
        pass over the best passages, and for the questions that would go unanswered a second pass
        over the further passages (Settings.wide_k), keeping the more confident reading."""
        contexts = contexts or [Contextual(q, q) for q in questions]
        read = self._reader_questions(list(dict.fromkeys(questions)), contexts)
        self._reader.start()  # loads while the question is encoded and searched
        depth = max(self.settings.k, self.settings.wide_k)
        deep = (self.search_many(contexts, depth, within) if within is not None and any(w is not None for w in within)
                else self.search_many(contexts, depth))
        hits = [h[: self.settings.k] for h in deep]
        evidence = [Evidence(q, c, r, s, h) for q, c, r, s, h in zip(questions, contexts, read,
                                                                         self.read_many(read, hits), hits)]
        decided = [(e, self.decide(e)) for e in evidence]
        weak = [i for i, (_, answer) in enumerate(decided) if not answer.answered]
        if weak and self.settings.wide_k > self.settings.k:
            further = [self._further(evidence[i].hits, deep[i]) for i in weak]
            extra = self.reader.read_many([read[i].question for i in weak], further)
            for i, passages, spans in zip(weak, further, extra):
                if not passages:
                    continue
                e = evidence[i]
                indices = {p.index for p in passages}
                wide = replace(e, spans=e.spans + spans,
                               hits=e.hits + [h for h in deep[i] if h.passage.index in indices])
                answer = self.decide(wide)
                if answer.score > decided[i][1].score:
                    decided[i] = (wide, answer)
        return decided

    def _further(self, read_hits: list[Hit], deep: list[Hit]) -> list:
        """The passages of `deep` the first pass did not read that are still worth a look."""
        if not deep:
            return []
        read_passages = {p.index for p in self._worth_reading(read_hits)}
        return [h.passage for h in deep if h.passage.index not in read_passages
                and h.score >= self.settings.wide_floor * deep[0].score]

    def decide(self, evidence: Evidence) -> Answer:
        """The answer `evidence` makes under this pipeline's decision. The confidence weighs the
        question the reader read (shortened when too long).

        Over a corpus each article's candidates are decided on their own, over that article's text
        and hits, and the most likely article's answer wins (an answer beats a best guess): at most
        one answer per article, and one article's repeated candidates never vouch for each other
        across articles. The answer keeps every hit, each naming its article."""
        q, c = evidence.question, evidence.context
        read_as = c.question if c.question != q else None
        if not self.is_corpus:
            answer = decide(q, self.index.article.text, evidence.spans, evidence.hits, self.settings.decision,
                            reading=evidence.read.question)
            return replace(answer, read_as=read_as, article=self._single_ref())
        by_article: dict[str, list[Span]] = {}
        for span in evidence.spans:
            by_article.setdefault(span.passage.article.id, []).append(span)
        best = None
        for article_id, spans in by_article.items():
            hits = [h for h in evidence.hits if h.passage.article.id == article_id]
            answer = decide(q, self.index.text_of(article_id), spans, hits, self.settings.decision,
                            reading=evidence.read.question)
            if answer.answered or answer.best_guess is not None:
                answer = replace(answer, article=self.index.refs[article_id])
            if best is None or (answer.answered, answer.score) > (best.answered, best.score):
                best = answer
        if best is None:
            return Answer(q, None, None, None, 0.0, tuple(evidence.hits), read_as=read_as)
        return replace(best, hits=tuple(evidence.hits), read_as=read_as)

    def _single_ref(self):
        ref = getattr(self, "_ref", None)
        if ref is None:
            ref = self._ref = self.index.article.ref()
        return ref

    def ask_in_context(self, questions: list[str], histories: list[list[Turn]],
                       within: list[str | None] | None = None) -> list[Answer]:
        """Answers to questions asked after their conversations' `histories`
        (`qa.conversation.ask_in_context`)."""
        return ask_in_context(self, questions, histories, within)

    def _reader_questions(self, questions: list[str], contexts: list[Contextual]) -> list[Contextual]:
        """What the reader reads: the question sentence of a question too long for it (retrieval
        still searches with the whole question), with a warning; and a notice for a question in
        another language. Each is said once, however many readings of a follow-up are asked."""
        said: set[str] = set()

        def say(message: str) -> None:
            if message not in said:
                said.add(message)
                warnings.warn(message, QuestionWarning)

        for question in questions:
            notice = language_notice(question)
            if notice:
                say(notice)
        tokenizer = self.index.embedder.tokenizer
        read = []
        for context in contexts:
            short = shorten_question(context.question, lambda text: not truncate_question(tokenizer, text)[1])
            if short.shortened:
                say(f"question is longer than {MAX_QUESTION_TOKENS} word pieces, the most the reader reads; "
                    f"it reads {short.how}: {short.text!r}")
                context = Contextual(short.text, context.query)
            read.append(context)
        return read

    def search_many(self, contexts: list[Contextual], k: int,
                    within: list[str | None] | None = None) -> list[list[Hit]]:
        """The k best passages for each question (one encoder call, one search); over a corpus,
        within the article each `within` names (else Settings.within; None: all)."""
        queries = [c.query for c in contexts]
        vectors = self.index.embedder.encode(queries)
        if not self.is_corpus:
            return retrieve(self.index, vectors, queries, k, self.settings.dense_weight)
        limits = [self.settings.within if w is None else w for w in (within or [None] * len(queries))]
        return self.index.search(vectors, queries, k, self.settings.dense_weight, limits)

    def read_many(self, contexts: list[Contextual], hits: list[list[Hit]]) -> list[list[Span]]:
        """Candidate spans from the passages retrieved for each question (one reader pass)."""
        return self.reader.read_many([c.question for c in contexts], [self._worth_reading(hs) for hs in hits])

    def _worth_reading(self, hits: list[Hit]) -> list:
        """The passages of `hits` the reader reads first: the best, and those scoring at least
        `read_ratio` of it."""
        if not hits:
            return []
        return [hits[0].passage] + [h.passage for h in hits[1:] if h.score >= self.settings.read_ratio * hits[0].score]

    def conversation(self) -> Conversation:
        """A new conversation with this pipeline: follow-ups read in the light of earlier turns."""
        return Conversation(self)

    def conversations(self, **limits) -> Conversations:
        """A keeper of conversations by id (`qa.conversation.Conversations`) answering with this pipeline."""
        return Conversations(self, **limits)
