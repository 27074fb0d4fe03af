"""Small nbgrader preprocessors the course adds to nbgrader's own pipelines."""
from __future__ import annotations

from nbconvert.preprocessors import Preprocessor
from traitlets import Bool

from .contract import is_test_cell


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
