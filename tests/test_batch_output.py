"""Tests for batch/output.py: a batch never destroys or duplicates, and writes CSV for
spreadsheet users. No models: records are written by hand."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import subprocess
import sys

import pytest

from article_qa.batch.output import BatchOutput, OutputError, protect
from article_qa.batch.run import Done


def answer(line: int, question: str = "q?", text: str | None = "an answer", id_: str | None = None,
           best_guess: dict | None = None) -> dict:
    """A record as `batch.run.answer_records` writes it: the line's id and number, and the answer's
    `to_dict()`."""
    verdict = "answered" if text is not None else "not sure" if best_guess else "not in the article"
    record = {"id": id_ or str(line), "line": line, "question": question, "verdict": verdict,
              "answer": None if text is None else {"text": text, "start": 0, "end": len(text), "score": 0.9},
              "best_guess": best_guess, "passages": []}
    return record


def error(line: int, message: str = "could not answer: boom") -> dict:
    return {"id": str(line), "line": line, "error": message}


@pytest.fixture()
def files(tmp_path):
    questions = tmp_path / "questions.txt"
    questions.write_text("Who?\nWhere?\n", encoding="utf-8")
    article = tmp_path / "article.txt"
    article.write_text("An article.\n", encoding="utf-8")
    return questions, article


def guarded(files):
    questions, article = files
    return [protect("the questions", questions), protect("the article", article)]


# -- never the input or the article ----------------------------------------------------------------


@pytest.mark.parametrize("how", ["same", "symlink", "hardlink", "article", "article-symlink"])
@pytest.mark.parametrize("resume", [False, True])
def test_the_output_may_not_be_the_questions_or_the_article(files, tmp_path, how, resume):
    """`batch x -o x` emptied x and exited 0; -o naming the article (or a link to the input)
    overwrote it."""
    questions, article = files
    target = {"same": questions, "article": article}.get(how)
    if how in ("symlink", "article-symlink"):
        target = tmp_path / "link.txt"
        target.symlink_to(article if how == "article-symlink" else questions)
    elif how == "hardlink":
        target = tmp_path / "hard.txt"
        os.link(questions, target)
    before = questions.read_bytes(), article.read_bytes()
    refusal = "is a symbolic link" if resume and "symlink" in how else "is the same file as the (questions|article)"
    with pytest.raises(OutputError, match=refusal):
        BatchOutput.open(str(target), resume=resume, protected=guarded(files))
    assert (questions.read_bytes(), article.read_bytes()) == before


def test_standard_output_may_not_be_the_questions(files):
    questions, _ = files
    code = ("import sys; from article_qa.batch.output import BatchOutput, OutputError, protect\n"
            "try:\n    BatchOutput.open('-', protected=[protect('the questions', sys.argv[1])])\n"
            "except OutputError as e:\n    print(e, file=sys.stderr); sys.exit(2)\n")
    with open(questions, "ab") as appended:  # `batch q.txt >> q.txt`
        done = subprocess.run([sys.executable, "-c", code, str(questions)], stdout=appended, stderr=subprocess.PIPE,
                              text=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert done.returncode == 2 and "standard output is the same file as the questions" in done.stderr
    assert questions.read_text(encoding="utf-8") == "Who?\nWhere?\n"


# -- bad outputs are refused up front ---------------------------------------------------------------


@pytest.mark.parametrize("resume", [False, True])
def test_bad_output_paths_are_one_line_errors(tmp_path, resume):
    (tmp_path / "folder").mkdir()
    cases = {
        str(tmp_path / "folder"): "is a folder; --output needs a file",
        str(tmp_path / "missing" / "out.jsonl"): "its folder does not exist",
    }
    if os.path.exists("/dev/full") and not resume:
        cases["/dev/full"] = "No space left on device"
    for target, message in cases.items():
        with pytest.raises(OutputError, match=message) as caught:
            BatchOutput.open(target, resume=resume)
        assert "\n" not in str(caught.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_a_read_only_folder_is_refused(tmp_path):
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="permission denied"):
            BatchOutput.open(str(tmp_path / "out.jsonl"))
    finally:
        tmp_path.chmod(0o700)


def run_batch(tmp_path, *args: str) -> subprocess.CompletedProcess:
    """`article-qa batch` as a real process, with an empty cache: a refusal must come before any
    model or index is touched (timeout 60 s: a FIFO that blocked would hang here)."""
    env = {**os.environ, "ARTICLE_QA_INDEX_DIR": str(tmp_path / "cache"), "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-c", "from article_qa import cli; cli.main()", "batch", *args], capture_output=True,
                          text=True, env=env, timeout=60)


NOT_OUTPUTS = {
    "a questions file": '{"id": "q1", "question": "Who?"}\n{"id": "q2", "question": "Where?"}\n',
    "an application's JSON log": '{"level": "info", "msg": "started"}\n{"level": "warn", "msg": "slow"}\n',
    "a log with line and id": '{"id": 7, "line": 3, "msg": "opened"}\n',
    "an output a user appended a note to": json.dumps(answer(1)) + "\n" + '{"note": "check line 1"}\n',
    "an output with a line of text": json.dumps(answer(1)) + "\nTODO: rerun the rest\n",
    "one object without a newline": '{"question": "Who?"}',
}


@pytest.mark.parametrize("kind", list(NOT_OUTPUTS))
def test_resume_refuses_json_that_is_not_batch_records(tmp_path, kind):
    """Any file whose text started with `{` was taken for a batch output and rewritten."""
    path = tmp_path / "file.jsonl"
    path.write_text(NOT_OUTPUTS[kind], encoding="utf-8")
    with pytest.raises(OutputError, match="is not an article-qa batch output.*--resume would replace it") as caught:
        BatchOutput.open(str(path), resume=True)
    assert "\n" not in str(caught.value)
    assert path.read_text(encoding="utf-8") == NOT_OUTPUTS[kind]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.jsonl"]


def test_resume_of_a_questions_file_is_one_line_and_leaves_it_untouched(tmp_path):
    questions = tmp_path / "q.jsonl"
    questions.write_text('{"id": "q1", "question": "Who?"}\n', encoding="utf-8")
    copy = tmp_path / "answers.jsonl"  # the user named the wrong file as the output
    copy.write_text('{"id": "q1", "question": "Who?"}\n{"id": "q2", "question": "Where?"}\n', encoding="utf-8")
    before = copy.read_bytes()
    done = run_batch(tmp_path, str(questions), "-o", str(copy), "--resume")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"article-qa: error: {copy} is not an article-qa batch output (its line 1 is not a batch record), "
        "and --resume would replace it; choose another --output"]
    assert copy.read_bytes() == before


def test_resume_refuses_the_output_of_other_questions(tmp_path):
    """Records are this input's when each is on one of its lines, and each answer has its line's id."""
    output = tmp_path / "out.jsonl"
    earlier_run(output, [json.dumps(answer(1, id_="a")) + "\n", json.dumps(error(2)) + "\n"])
    before = output.read_bytes()
    for input_ids, why in (({1: "b", 2: "2"}, 'its answer for input line 1 has id "a", and that line of the '
                            'questions has id "b"'),
                           ({1: "a"}, "its line for input line 2, which the questions do not have")):
        with pytest.raises(OutputError) as caught:
            BatchOutput.open(str(output), resume=True, input_ids=input_ids)
        assert str(caught.value) == (f"{output} is not the batch output of these questions ({why}), and "
                                     "--resume would replace it; choose another --output")
        assert output.read_bytes() == before
    # A failed line whose input was fixed since (now with an id) is this input's: it is retried.
    resumed = BatchOutput.open(str(output), resume=True, input_ids={1: "a", 2: "fixed"})
    assert sorted(resumed.previous) == [1]
    resumed.close(complete=False)


def test_csv_resume_refuses_rows_that_are_not_records(tmp_path):
    path = tmp_path / "out.csv"
    out = BatchOutput.open(str(path), csv=True)
    out.write(answer(1))
    out.close(complete=True)
    with open(path, "a", encoding="utf-8", newline="") as f:
        f.write("total,,,,,,,,,,,\r\n")  # a row a spreadsheet user added
    before = path.read_bytes()
    with pytest.raises(OutputError, match=r"is not an article-qa batch output \(its line 3 is not a batch record\)"):
        BatchOutput.open(str(path), csv=True, resume=True)
    assert path.read_bytes() == before


def test_resume_of_another_questions_output_is_refused_by_the_cli(tmp_path):
    output = tmp_path / "out.jsonl"
    earlier_run(output, [json.dumps(answer(1, id_="q1")) + "\n"])
    questions = tmp_path / "other.jsonl"
    questions.write_text('{"id": "x9", "question": "Who?"}\n', encoding="utf-8")
    done = run_batch(tmp_path, str(questions), "-o", str(output), "--resume")
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        f'article-qa: error: {output} is not the batch output of these questions (its answer for input line 1 '
        'has id "q1", and that line of the questions has id "x9"), and --resume would replace it; choose another '
        "--output"]
    assert output.read_text(encoding="utf-8") == json.dumps(answer(1, id_="q1")) + "\n"


def test_resume_refuses_a_file_that_is_not_a_batch_output(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes, not answers\n", encoding="utf-8")
    with pytest.raises(OutputError, match="not an article-qa batch output"):
        BatchOutput.open(str(notes), resume=True)
    with pytest.raises(OutputError, match="holds JSON Lines, not CSV; resume it without --csv"):
        out = tmp_path / "out.jsonl"
        out.write_text(json.dumps(answer(1)) + "\n", encoding="utf-8")
        BatchOutput.open(str(out), resume=True, csv=True)
    assert notes.read_text(encoding="utf-8") == "my notes, not answers\n"


# -- one writer --------------------------------------------------------------------------------------


@pytest.mark.parametrize("second_resumes", [False, True])
def test_a_second_writer_is_refused_while_the_first_writes(tmp_path, second_resumes):
    """Two batches writing one file gave duplicates and a corrupt line."""
    path = tmp_path / "out.jsonl"
    first = BatchOutput.open(str(path))
    first.write(answer(1))
    with pytest.raises(OutputError, match="being written by another article-qa batch"):
        BatchOutput.open(str(path), resume=second_resumes)
    first.write(answer(2))
    first.close(complete=True)
    assert [json.loads(x)["line"] for x in path.read_text(encoding="utf-8").splitlines()] == [1, 2]
    BatchOutput.open(str(path), resume=True).close(complete=False)  # free again once the first is done


def test_a_resuming_writer_is_not_joined_by_another(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text(json.dumps(answer(1)) + "\n", encoding="utf-8")
    resumed = BatchOutput.open(str(path), resume=True)
    resumed.write(resumed.previous[1])
    resumed.write(answer(2))
    for resume in (False, True):
        with pytest.raises(OutputError, match="being written"):
            BatchOutput.open(str(path), resume=resume)
    resumed.close(complete=True)
    assert [json.loads(x)["line"] for x in path.read_text(encoding="utf-8").splitlines()] == [1, 2]


# -- plain runs: streamed, and nothing destroyed before there is something to write ---------------


def test_records_are_flushed_one_by_one(tmp_path):
    path = tmp_path / "out.jsonl"
    out = BatchOutput.open(str(path))
    out.write(answer(1))
    assert path.read_text(encoding="utf-8") == json.dumps(answer(1), ensure_ascii=False) + "\n"
    out.write(answer(2))
    assert len(path.read_text(encoding="utf-8").splitlines()) == 2
    out.close(complete=True)


def test_an_existing_output_is_kept_until_the_first_record_and_a_new_one_not_left_empty(tmp_path):
    old = tmp_path / "old.jsonl"
    old.write_text("earlier results\n", encoding="utf-8")
    BatchOutput.open(str(old)).close(complete=False)  # e.g. the model failed to load
    assert old.read_text(encoding="utf-8") == "earlier results\n"
    new = tmp_path / "new.jsonl"
    BatchOutput.open(str(new)).close(complete=False)
    assert not new.exists()
    out = BatchOutput.open(str(old))
    out.write(answer(1))
    out.close(complete=True)
    assert old.read_text(encoding="utf-8").splitlines() == [json.dumps(answer(1), ensure_ascii=False)]


# -- resume: one record per input line, atomically ------------------------------------------------


def earlier_run(path, lines: list[str]) -> None:
    path.write_text("".join(lines), encoding="utf-8")


def test_resume_reads_answers_by_line_and_drops_errors_duplicates_and_a_cut_line(tmp_path):
    path = tmp_path / "out.jsonl"
    earlier_run(path, [
        json.dumps(answer(1, "Who?", "Zelensky")) + "\n",
        json.dumps(error(2)) + "\n",
        json.dumps(error(2)) + "\n",  # an old resume appended the failed line again
        json.dumps(answer(3, "Where?", None)) + "\n",
        json.dumps(answer(3, "Where?", None)) + "\n",
        '{"id": "5", "line": 5, "quest',  # cut by the interruption
    ])
    out = BatchOutput.open(str(path), resume=True)
    assert sorted(out.previous) == [1, 3]
    assert out.previous[1] == Done(1, "1", "Who?", "Zelensky", json.dumps(answer(1, "Who?", "Zelensky")))
    assert out.previous[3].answer is None
    for line in (1, 2, 3, 4, 5):
        out.write(out.previous[line] if line in out.previous else answer(line))
    out.close(complete=True)
    records = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]
    assert [r["line"] for r in records] == [1, 2, 3, 4, 5]
    assert all("error" not in r for r in records)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_an_interrupted_resume_keeps_the_earlier_records_it_did_not_reach(tmp_path):
    path = tmp_path / "out.jsonl"
    earlier = [json.dumps(answer(n)) + "\n" for n in (1, 3, 4)] + [json.dumps(error(5)) + "\n"]
    earlier_run(path, earlier)
    out = BatchOutput.open(str(path), resume=True)
    out.write(out.previous[1])
    out.write(answer(2))  # then Ctrl-C
    assert path.read_text(encoding="utf-8") == "".join(earlier)  # untouched until the rename
    out.close(complete=False)
    records = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]
    assert [r["line"] for r in records] == [1, 2, 3, 4, 5]
    assert "error" in records[4]  # kept as it was: the next resume retries it
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_resume_that_fails_before_answering_leaves_the_output_as_it_was(tmp_path):
    path = tmp_path / "out.jsonl"
    earlier_run(path, [json.dumps(answer(2)) + "\n", json.dumps(answer(1)) + "\n", '{"id": "3", "li'])
    before = path.read_bytes()
    BatchOutput.open(str(path), resume=True).close(complete=False)
    assert path.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_resume_keeps_the_outputs_permissions_and_removes_dead_runs_temp_files(tmp_path):
    path = tmp_path / "out.jsonl"
    earlier_run(path, [json.dumps(answer(1)) + "\n"])
    path.chmod(0o640)
    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True).stdout)
    stale = tmp_path / f".out.jsonl.{dead}.k2j4h1ab.tmp"
    stale.write_text("half of a killed resume")
    users = tmp_path / f"out.jsonl.{dead}.tmp"  # not the tool's pattern: never removed
    users.write_text("the user's")
    out = BatchOutput.open(str(path), resume=True)
    out.write(out.previous[1])
    out.close(complete=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert not stale.exists() and users.exists()


def test_resume_never_writes_through_a_link(tmp_path):
    """A link planted where the output goes (in a shared /tmp) had its target replaced, even with
    fs.protected_symlinks=1, because --resume resolved it with realpath()."""
    real = tmp_path / "real.jsonl"
    earlier_run(real, [json.dumps(answer(1)) + "\n"])
    before = real.read_bytes()
    link = tmp_path / "latest.jsonl"
    link.symlink_to(real)
    with pytest.raises(OutputError) as caught:
        BatchOutput.open(str(link), resume=True)
    assert str(caught.value) == (f"{link} is a symbolic link; --resume never writes through one (it would "
                                 "replace the file it points to): give the file's own path")
    assert link.is_symlink() and real.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.jsonl", "real.jsonl"]  # no temp file


def test_resume_renames_over_the_path_it_was_given(tmp_path, monkeypatch):
    """Relative paths too: the temporary file goes beside the output, in the folder of the path."""
    monkeypatch.chdir(tmp_path)
    earlier_run(tmp_path / "out.jsonl", [json.dumps(answer(1)) + "\n"])
    out = BatchOutput.open("out.jsonl", resume=True)
    out.write(out.previous[1])
    out.write(answer(2))
    out.close(complete=True)
    assert [json.loads(x)["line"] for x in (tmp_path / "out.jsonl").read_text().splitlines()] == [1, 2]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_resume_on_a_fifo_says_it_needs_a_regular_file_at_once(tmp_path):
    """`-o FIFO --resume` blocked for ever, waiting for a writer; now one line, in a real process."""
    fifo = tmp_path / "answers.jsonl"
    os.mkfifo(fifo)
    questions = tmp_path / "q.txt"
    questions.write_text("Who?\n", encoding="utf-8")
    done = run_batch(tmp_path, str(questions), "-o", str(fifo), "--resume")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [f"article-qa: error: --resume needs a regular file, and {fifo} is not one"]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


# -- CSV -----------------------------------------------------------------------------------------------


def test_csv_rows_for_spreadsheets(tmp_path):
    path = tmp_path / "out.csv"
    out = BatchOutput.open(str(path), csv=True)
    out.write(answer(1, 'Who said "no"?', "Volodymyr Zelensky, in Kyiv"))
    out.write(answer(2, "=1+1 where?", None, best_guess={"text": "-maybe", "start": 3, "end": 9, "score": 0.2}))
    out.write(error(4, "invalid JSON: Expecting value at column 1"))
    out.write({**answer(5, "And then?", "a line\nbreak"), "conversation": "c", "read_as": "And then, Zelensky?"})
    out.close(complete=True)
    raw = path.read_bytes()
    assert raw.startswith("\ufeff".encode()) and b"\r\n" in raw  # UTF-8 with BOM, RFC 4180 line ends
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert [r["line"] for r in rows] == ["1", "2", "4", "5"]
    assert rows[0]["verdict"] == "answered" and rows[0]["answer"] == "Volodymyr Zelensky, in Kyiv"
    assert rows[0]["question"] == 'Who said "no"?' and rows[0]["score"] == "0.9"
    assert rows[1]["verdict"] == "not sure" and rows[1]["answer"] == ""
    assert rows[1]["question"] == "'=1+1 where?"  # never run as a formula
    assert rows[1]["best_guess"] == "'-maybe" and rows[1]["start"] == "3"
    assert rows[2]["verdict"] == "error" and rows[2]["error"].startswith("invalid JSON")
    assert rows[3]["answer"] == "a line\nbreak" and rows[3]["conversation"] == "c"
    assert rows[3]["read_as"] == "And then, Zelensky?"


@pytest.mark.parametrize("cell", ["\uff1d1+1 full-width equals?", " =1+1 after a space?", "\u00a0=1+1 after a no-break space?",
                                  "\u3000=HYPERLINK(\"x\") after an ideographic space?", "\t =1+1?",
                                  "\ufeff=1+1 after a byte-order mark?", "\uff0b1 full-width plus?", "\uff20SUM(A1)?"])
def test_csv_guards_formulas_behind_spaces_and_in_full_width(tmp_path, cell):
    """A spreadsheet runs `＝1+1` and ` =1+1` as formulas too; only `=` at the very start was guarded."""
    path = tmp_path / "out.csv"
    out = BatchOutput.open(str(path), csv=True)
    out.write(answer(1, cell, cell))
    out.close(complete=True)
    (row,) = csv.DictReader(io.StringIO(path.read_bytes().decode("utf-8-sig"), newline=""))
    assert row["question"] == "'" + cell and row["answer"] == "'" + cell
    resumed = BatchOutput.open(str(path), csv=True, resume=True)
    assert resumed.previous[1].question == cell and resumed.previous[1].answer == cell  # read back as given
    resumed.close(complete=False)


@pytest.mark.parametrize("cell", ["  plain words after spaces", "a = b inside", "'quoted start", "\u00a0no formula"])
def test_csv_leaves_cells_that_are_not_formulas_alone(tmp_path, cell):
    path = tmp_path / "out.csv"
    out = BatchOutput.open(str(path), csv=True)
    out.write(answer(1, cell, "x"))
    out.close(complete=True)
    (row,) = csv.DictReader(io.StringIO(path.read_bytes().decode("utf-8-sig"), newline=""))
    assert row["question"] == cell


def test_csv_resume_reads_its_rows_back(tmp_path):
    path = tmp_path / "out.csv"
    out = BatchOutput.open(str(path), csv=True)
    out.write(answer(1, "=formula-looking question?", "Brussels"))
    out.write(error(2))
    out.write(answer(3, "Multi-line?", "first\nsecond"))
    out.close(complete=True)
    with open(path, "ab") as f:
        f.write(b'4,4,,"Cut in the middle of a quoted')  # an interruption
    resumed = BatchOutput.open(str(path), csv=True, resume=True)
    assert sorted(resumed.previous) == [1, 3]
    assert resumed.previous[1].question == "=formula-looking question?"  # the guard is undone
    assert resumed.previous[3].answer == "first\nsecond"
    for line in (1, 2, 3, 4):
        resumed.write(resumed.previous.get(line) or answer(line))
    resumed.close(complete=True)
    rows = list(csv.DictReader(io.StringIO(path.read_bytes().decode("utf-8-sig"), newline="")))
    assert [r["line"] for r in rows] == ["1", "2", "3", "4"]
    assert rows[0]["question"] == "'=formula-looking question?" and not any(r["error"] for r in rows)


def test_resume_remembers_the_best_guess_a_not_sure_line_showed(tmp_path):
    """A follow-up after a "not sure" line builds on the guess the user saw, also after a resume."""
    guessed = answer(1, "Who then transfers the weapons?", None,
                     best_guess={"text": "NATO allies", "start": 5, "end": 16, "score": 0.46})
    for csv_output in (False, True):
        path = tmp_path / ("out.csv" if csv_output else "out.jsonl")
        out = BatchOutput.open(str(path), csv=csv_output)
        out.write(guessed)
        out.write(answer(2, "Where?", None))
        out.close(complete=True)
        resumed = BatchOutput.open(str(path), csv=csv_output, resume=True)
        assert resumed.previous[1].answer == "NATO allies"
        assert resumed.previous[2].answer is None
        resumed.close(complete=False)


def test_csv_article_column_names_the_answer_or_guess_article_and_is_guarded(tmp_path):
    path = tmp_path / "out.csv"
    out = BatchOutput.open(str(path), csv=True)
    record = answer(1, "When?", "March 2024")
    record["answer"]["article"] = {"id": "news/bridge.txt", "title": "Bridge News", "source": "x"}
    out.write(record)
    out.write(answer(2, "Who?", None, best_guess={"text": "Maria", "start": 1, "end": 6, "score": 0.2,
                                                  "article": {"id": "=cmd.txt", "title": "t", "source": "y"}}))
    out.write(answer(3, "What?", "no article named"))
    out.close(complete=True)
    rows = list(csv.DictReader(io.StringIO(path.read_bytes().decode("utf-8-sig"), newline="")))
    assert [r["article"] for r in rows] == ["news/bridge.txt", "'=cmd.txt", ""]
    resumed = BatchOutput.open(str(path), csv=True, resume=True)  # the rows read back as records
    assert sorted(resumed.previous) == [1, 2, 3]
    resumed.close(complete=True)
