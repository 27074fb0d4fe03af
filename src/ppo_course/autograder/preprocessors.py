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
