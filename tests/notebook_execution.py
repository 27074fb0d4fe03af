"""Execute a notebook with nbclient and classify each code cell's outcome."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbclient import NotebookClient

CELL_TIMEOUT_S = 300


@dataclass
class CellOutcome:
    index: int
    source: str
    error: str | None          # exception name, or None
    stderr: str
    expected_to_raise: bool    # graded test cell or tagged `requires-exercise`


def is_test_cell(cell) -> bool:
    grading = cell.metadata.get("nbgrader", {})
    return bool(grading.get("grade")) and not grading.get("solution")


def needs_exercise(cell) -> bool:
    return "requires-exercise" in cell.metadata.get("tags", []) or is_test_cell(cell)


def execute(path: Path, timeout: int = CELL_TIMEOUT_S) -> list[CellOutcome]:
    """Run every cell (errors do not stop the run) and report what each code cell did."""
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=timeout, allow_errors=True, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    outcomes = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        errors = [o for o in cell.outputs if o.output_type == "error"]
        stderr = "".join(o.text for o in cell.outputs if o.output_type == "stream" and o.name == "stderr")
        outcomes.append(CellOutcome(index, cell.source, errors[0].ename if errors else None, stderr,
                                    needs_exercise(cell)))
    return outcomes
