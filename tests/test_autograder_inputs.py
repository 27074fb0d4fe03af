"""The autograder's input handling, without kernels: collect's id patterns, the rebuild's answer
matching, and one-line errors for bad command lines."""
from __future__ import annotations

import contextlib
import copy
import gc
import subprocess
import sys
import threading
import time
import zipfile

import nbformat
import pytest

from ppo_course.autograder.commands.cli import main
from ppo_course.autograder.grading.contract import read_contract
from ppo_course.autograder.grading.rebuild import SubmissionError, find_answer, is_stub, rebuild

from conftest import LESSONS, SOLUTIONS
from grading_helpers import solution_answers, submission

LESSON = "03-clipped-surrogate"
CONTRACT = read_contract(SOLUTIONS / LESSON).notebooks[0]
RELEASED = nbformat.read(LESSONS / LESSON / f"{LESSON}.ipynb", as_version=4)
STUB = ("def clip_is_active(ratio, adv, eps=0.2):\n    '''doc'''\n"
        "    # YOUR CODE HERE\n    raise NotImplementedError()\n")


def test_contract_of_lesson_03():
    assert [(e.answer_id, e.functions, e.test_ids, e.points) for e in CONTRACT.exercises] == [
        ("clipped_surrogate", ("clipped_surrogate",), ("clipped_surrogate_tests",), 4.0),
        ("clip_is_active", ("clip_is_active",), ("clip_is_active_tests",), 3.0),
        ("ppo_policy_loss", ("ppo_policy_loss",), ("ppo_policy_loss_tests",), 3.0)]


@pytest.mark.parametrize("source, stub", [
    (STUB, True),
    (STUB.replace("NotImplementedError()", "NotImplementedError"), True),
    (STUB.replace("raise NotImplementedError()", "pass\n    raise NotImplementedError('todo')"), True),
    (STUB.replace("raise NotImplementedError()", "return ratio > 1 + eps"), False),
    ("def clip_is_active(ratio, adv, eps=0.2):\n    return (", False),   # broken, but the learner's own
])
def test_stub_detection(source, stub):
    assert is_stub(source, ("clip_is_active",)) is stub, f"is_stub should be {stub} for this answer:\n{source}"


def test_last_real_definition_wins_over_stub_and_earlier_attempts():
    cells = [nbformat.v4.new_code_cell(s) for s in (
        "def clip_is_active(ratio, adv, eps=0.2):\n    return 1", STUB, "x = 1",
        "def clip_is_active(ratio, adv, eps=0.2):\n    return 2", STUB)]
    exercise = CONTRACT.exercises[1]
    assert find_answer(cells, exercise).source.endswith("return 2"), (
        "of several definitions of clip_is_active, the last real one (not a later stub) must be the answer")
    assert find_answer([nbformat.v4.new_code_cell(STUB)], exercise) is None, "a cell holding only the stub is no answer"


@pytest.mark.parametrize("data, message", [
    (b"", "the file is empty"),
    (b"{\"cells\": [", "broken JSON"),
    (b"\x89PNG\r\n\x1a\n\x00\xff", "binary"),
    (b"[1, 2, 3]", "JSON without cells"),
])
def test_unreadable_files_say_why(data, message):
    with pytest.raises(SubmissionError, match=message) as caught:
        rebuild(data, RELEASED, CONTRACT)
    assert caught.value.status == "unreadable"


def test_rebuild_keeps_the_course_cells_and_only_takes_answers():
    answers = solution_answers(LESSON)
    nb = submission(LESSON, answers)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade"):
            cell.source = "pass"
    nb.cells.insert(0, nbformat.v4.new_code_cell("print('my scratch work')"))
    rebuilt = rebuild(nbformat.writes(nb).encode(), RELEASED, CONTRACT)
    expected = copy.deepcopy(RELEASED)
    for cell in expected.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") in answers:
            cell.source = answers[cell.metadata.nbgrader.grade_id]
    assert [c.source for c in rebuilt.notebook.cells] == [c.source for c in expected.cells], (
        "the rebuilt notebook must be the released one with only the answers taken from the submission: "
        "test cells restored, scratch cells dropped")
    assert sum("edited: restored" in note for note in rebuilt.notes) == 3, (
        f"each of the 3 test cells replaced by `pass` must be noted as 'edited: restored': {rebuilt.notes}")


@contextlib.contextmanager
def threads_switching_inside_every_parse():
    """Garbage collection on every 50th allocation, and a Python callback at each that lets another thread
    run: the GIL then changes hands in the middle of building a syntax tree, as it did, rarely, in a class."""
    callback = lambda phase, info: time.sleep(0) if phase == "start" else None   # noqa: E731
    threshold, interval = gc.get_threshold(), sys.getswitchinterval()
    gc.callbacks.append(callback)
    gc.set_threshold(50)
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        gc.callbacks.remove(callback)
        gc.set_threshold(*threshold)
        sys.setswitchinterval(interval)


def test_submissions_rebuilt_in_threads_at_once_all_parse():
    """CPython 3.11's AST builder shares its recursion count between threads: two parses at once failed one
    with "SystemError: AST constructor recursion depth mismatch" and the submission was graded as an error
    (the grade command rebuilds in threads). Every parse goes through syntax.parse, one at a time."""
    data = nbformat.writes(submission(LESSON, solution_answers(LESSON))).encode()
    failures = []

    def rebuild_some():
        for _ in range(2):
            try:
                rebuild(data, RELEASED, CONTRACT)
            except Exception as error:  # noqa: BLE001 - collected, then reported
                failures.append(f"{type(error).__name__}: {error}")

    with threads_switching_inside_every_parse():
        threads = [threading.Thread(target=rebuild_some) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert failures == [], f"a rebuild failed while other threads rebuilt: {failures[:3]}"


def make_zip(path, entries: dict[str, bytes]):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return path


def test_collect_moodle_folders_and_hostile_names(tmp_path, capsys):
    """Moodle names (flat and in folders), odd characters, a path that climbs out, a re-collect."""
    upload = make_zip(tmp_path / "moodle.zip", {
        "Jane Smith_201_assignsubmission_file_/03-clipped-surrogate.ipynb": b"jane",
        "Ali Khan_202_assignsubmission_file_lesson 3.ipynb": b"ali",
        "Ali Khan_202_assignsubmission_file_lesson 3 .ipynb": b"ali again",
        "Eve_203_assignsubmission_file_/../../../escape.ipynb": b"eve",
        "__MACOSX/._junk": b"x",
    })
    course = tmp_path / "course"
    assert main(["collect", str(upload), "--course", str(course), "--lesson", "3", "--id-pattern", "moodle"]) == 0, (
        "collect must accept a Moodle zip with --id-pattern moodle")
    files = sorted(p.relative_to(course).as_posix() for p in course.rglob("*") if p.is_file())
    assert files == ["collected.csv", f"submitted/201/{LESSON}/03-clipped-surrogate.ipynb",
                     f"submitted/202/{LESSON}/lesson_3.ipynb", f"submitted/202/{LESSON}/lesson_3_.ipynb"], (
        "Jane's and both of Ali's files (names made safe) collected; the climbing path and __MACOSX skipped")
    assert "skipped Eve_203_assignsubmission_file_/../../../escape.ipynb" in capsys.readouterr().out, (
        "a zip entry whose path climbs out of its folder (../) must be skipped, and named")
    assert not list(tmp_path.rglob("escape.ipynb")), "the entry .../../../escape.ipynb must not be written anywhere"
    assert (course / f"submitted/201/{LESSON}/03-clipped-surrogate.ipynb").read_bytes() == b"jane"
    assert "Jane Smith" in (course / "collected.csv").read_text(), (
        "collected.csv must record the student's name taken from the Moodle file name")
    # again: nothing new; a changed file with the same name is kept beside the first
    assert main(["collect", str(upload), "--course", str(course), "--lesson", "03"]) == 0, (
        "collecting the same zip a second time must succeed")
    assert "3 already there" in capsys.readouterr().out, (
        "collecting again must report the 3 files as already there, not copy them again")
    folders = tmp_path / "folders" / "201"
    folders.mkdir(parents=True)
    (folders / "03-clipped-surrogate.ipynb").write_bytes(b"jane, later")
    assert main(["collect", str(tmp_path / "folders"), "--course", str(course), "--lesson", "03"]) == 0, (
        "collect must accept a folder of <student id>/ subfolders")
    assert (course / f"submitted/201/{LESSON}/03-clipped-surrogate (2).ipynb").read_bytes() == b"jane, later", (
        "a changed file under an already collected name must be kept beside the first, as '... (2)'")
    assert (course / f"submitted/201/{LESSON}/03-clipped-surrogate.ipynb").read_bytes() == b"jane", (
        "the first collected file must not be overwritten by a later one of the same name")


@pytest.mark.parametrize("argv, message", [
    (["collect", "{tmp}/none.zip", "--course", "{tmp}/c", "--lesson", "03"], "no zip file or folder at"),
    (["collect", "{tmp}/not.zip", "--course", "{tmp}/c", "--lesson", "03"], "is not a readable zip file"),
    (["collect", "{tmp}/ok.zip", "--course", "{tmp}/c", "--lesson", "99"], "unknown assignment '99'"),
    (["collect", "{tmp}/ok.zip", "--course", "{tmp}/c", "--lesson", "03", "--id-pattern", "(x"],
     "not a valid regular expression"),
    (["collect", "{tmp}/ok.zip", "--course", "{tmp}/c", "--lesson", "03", "--id-pattern", "(?P<id>.*)"],
     "needs a named group (?P<student>...)"),
    (["collect", "{tmp}/ok.zip", "--course", "{tmp}/c", "--lesson", "03", "--id-pattern", "canvas"],
     "no file name had a student id"),
    (["grade", "--course", "{tmp}/missing"], "no course directory at"),
    (["grade", "--course", "{tmp}", "--jobs", "0"], "argument --jobs: must be more than 0, got 0"),
    (["grade", "--course", "{tmp}", "--timeout", "soon"], "argument --timeout: 'soon' is not a number"),
    (["grade", "--course", "{tmp}"], "no submissions of an assignment of"),
    (["feedback", "--course", "{tmp}"], "nothing graded yet"),
    (["export", "--course", "{tmp}"], "nothing graded yet"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, argv, message):
    (tmp_path / "not.zip").write_text("this is not a zip")
    make_zip(tmp_path / "ok.zip", {"alice/03.ipynb": b"{}"})
    with pytest.raises(SystemExit) if argv[0] == "frobnicate" or "--jobs" in argv or "--timeout" in argv \
            else _returns(2) as outcome:
        outcome.value = main([a.format(tmp=tmp_path) for a in argv])
    if isinstance(outcome.value, SystemExit):
        assert outcome.value.code == 2, "a bad command-line argument must exit with status 2"
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err, err


class _returns:
    def __init__(self, code):
        self.code, self.value = code, None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        assert self.value == self.code, f"exit status {self.value}, expected {self.code}"
        return False


def test_console_entry_point_help_and_error():
    run = subprocess.run([sys.executable, "-m", "ppo_course.autograder", "export", "--course", "/nonexistent"],
                         capture_output=True, text=True)
    assert (run.returncode, run.stderr) == (2, "error: no course directory at /nonexistent (run `collect` first)\n")
    helps = subprocess.run([sys.executable, "-m", "ppo_course.autograder", "grade", "--help"],
                           capture_output=True, text=True).stdout
    for option in ("--course", "--jobs", "--cell-timeout", "--timeout", "--memory-gb", "--max-processes",
                   "--scratch-mb", "--no-sandbox", "--student", "--force"):
        assert option in helps, f"`grade --help` must document {option}"


def test_stock_nbgrader_config_is_the_course_configuration(tmp_path, monkeypatch):
    """autograder/nbgrader_config.py loads (as nbgrader would) and carries the course's grading pipeline."""
    from traitlets.config import Config

    from ppo_course.autograder.grading.preprocessors import StderrIsNotFailure, TrimTracebacks

    config = Config()
    monkeypatch.chdir(tmp_path)
    code = (SOLUTIONS.parent / "autograder" / "nbgrader_config.py").read_text()
    exec(compile(code, "nbgrader_config.py", "exec"), {"get_config": lambda: config})
    assert config.CourseDirectory.root == str(tmp_path)
    assert StderrIsNotFailure in config.Autograde.autograde_preprocessors, (
        "autograding must use StderrIsNotFailure, or a harmless warning on stderr costs a test cell its points")
    assert TrimTracebacks in config.GenerateFeedback.preprocessors, (
        "feedback must use TrimTracebacks, or failed tests show tracebacks that quote the hidden tests")
    assert config.ClearSolutions.code_stub == {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}


def test_helpers_from_the_learners_own_cells_are_carried_into_the_answer():
    from exercise_checks import run_tests_against

    answers = solution_answers(LESSON)
    nb = submission(LESSON, {})
    helper = ("import torch as T\n\ndef _clip(r, eps):\n    return T.clamp(r, 1 - eps, 1 + eps)\n\n"
              "def _pick_smaller(a, b):\n    return T.minimum(a, b)\n\nprint('scratch work that must not run')")
    answer = ("def clipped_surrogate(ratio, adv, eps=0.2):\n"
              "    return _pick_smaller(ratio * adv, _clip(ratio, eps) * adv)")
    stub_index = next(i for i, c in enumerate(nb.cells)
                      if c.metadata.get("nbgrader", {}).get("grade_id") == "clipped_surrogate")
    nb.cells[stub_index].source = answer
    nb.cells.insert(stub_index, nbformat.v4.new_code_cell(helper))
    nb.cells.insert(0, nbformat.v4.new_code_cell("def unused():\n    return 1"))
    rebuilt = rebuild(nbformat.writes(nb).encode(), RELEASED, CONTRACT)
    carried = rebuilt.answers["clipped_surrogate"].source
    assert "def _clip" in carried and "def _pick_smaller" in carried and "import torch as T" in carried, (
        f"the helpers and the import the answer uses must be carried into it:\n{carried}")
    assert "scratch work" not in carried and "def unused" not in carried, (
        f"code the answer does not use (a print, an unused function) must be left out:\n{carried}")
    assert any("carried along" in note for note in rebuilt.notes), (
        f"the rebuild must note that helpers were carried along: {rebuilt.notes}")
    run_tests_against(LESSON, "clipped_surrogate", carried)  # the rebuilt answer passes the course's tests
    # An answer that needs nothing from elsewhere is taken as written.
    assert rebuild(nbformat.writes(submission(LESSON, answers)).encode(), RELEASED, CONTRACT) \
        .answers["clipped_surrogate"].source == answers["clipped_surrogate"], (
            "an answer that needs no helper must be taken exactly as written")
