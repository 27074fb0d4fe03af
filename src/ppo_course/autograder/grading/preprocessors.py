"""Small nbgrader preprocessors the course adds to nbgrader's own pipelines."""
from __future__ import annotations

from nbconvert.preprocessors import Preprocessor
from traitlets import Bool

from ..syntax import parse_python
from .contract import is_test_cell, python_lines, read_notebook_contract
from .hidden import has_hidden_tests, visible_form


class StderrIsNotFailure(Preprocessor):
    """Let a test cell score on its assertions even when something in it wrote to stderr.

    nbgrader gives 0 to a test cell with any stderr output, so a harmless UserWarning from torch or
    from the learner's code would cost the exercise. Runs after Execute and before SaveAutoGrades:
    the text is kept, as ordinary output; errors (failed asserts) still score 0.
    """

    enabled = Bool(True)  # nbconvert preprocessors are off unless enabled

    def preprocess_cell(self, cell, resources, index):
        if is_test_cell(cell):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "stream" and output.get("name") == "stderr":
                    output["name"] = "stdout"
        return cell, resources


class TrimTracebacks(Preprocessor):
    """In feedback, a failed test shows its message, not the traceback (which quotes hidden test code)."""

    enabled = Bool(True)

    def preprocess_cell(self, cell, resources, index):
        if is_test_cell(cell):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    output["traceback"] = [f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"]
        return cell, resources


STUB_CALL = "raise NotImplementedError()"


def stub_message(exercise: str) -> str:
    """What a learner reads when they run a test before writing the exercise."""
    return (f"{exercise} is yours to write: replace this line with your code (the docstring above says "
            "what to return), run the cell, then run the tests below it.")


class NameTheStubs(Preprocessor):
    """After ClearSolutions: each stub raises NotImplementedError naming its exercise and what to do.

    A bare ``NotImplementedError:`` on a test cell tells a newcomer nothing. Runs before the checksums
    are computed, so the released cell is what nbgrader records.
    """

    enabled = Bool(True)

    def preprocess_cell(self, cell, resources, index):
        grading = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and grading.get("solution") and STUB_CALL in cell.source:
            message = stub_message(grading.get("grade_id", "this exercise"))
            cell.source = cell.source.replace(STUB_CALL, f"raise NotImplementedError({message!r})")
        return cell, resources


def pass_message(exercise: str, hidden: bool) -> str:
    """The line a learner's notebook prints when an exercise's visible tests pass."""
    return f"{exercise}: visible tests pass; hidden tests run at grading" if hidden else f"{exercise}: tests pass"


class AnnounceVisiblePass(Preprocessor):
    """In the released notebook, each test cell ends by printing that its visible tests passed.

    A test cell that passes prints nothing, so a learner cannot tell a pass from a cell that did not run
    (in Colab or Voila even less). Runs after SaveCells (the gradebook keeps the course's own cell, so
    grading runs exactly what it ran before) and before ClearHiddenTests and the last ComputeChecksums
    (so nbgrader's checksums, and ``nbgrader validate``, accept the released cell as it is).
    """

    enabled = Bool(True)

    def preprocess(self, nb, resources):
        contract = read_notebook_contract(nb, resources.get("unique_key", "notebook"))
        self.exercise_of = {test: e.answer_id for e in contract.exercises for test in e.test_ids}
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, index):
        grading = cell.metadata.get("nbgrader", {})
        visible = parse_python(python_lines(visible_form(cell.source))) if is_test_cell(cell) else None
        if visible is not None and visible.body:   # (nothing to announce for a cell whose tests are all hidden)
            exercise = self.exercise_of.get(grading.get("grade_id"), grading.get("grade_id", "this exercise"))
            line = f"print({pass_message(exercise, has_hidden_tests(cell.source))!r})"
            cell.source = cell.source.rstrip("\n") + "\n" + line
        return cell, resources
