"""Execute a notebook with nbclient and classify each code cell's outcome."""
from __future__ import annotations

import multiprocessing
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from conftest import SOLUTIONS

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


def executed_notebook(path: Path, timeout: int = CELL_TIMEOUT_S) -> nbformat.NotebookNode:
    """The notebook at ``path`` with its outputs, every cell run (errors do not stop the run)."""
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=timeout, allow_errors=True, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return nb


# The notebooks this session's chosen tests read (conftest sets it after collection): the first one asked
# for is run with all of them, two at a time, since one notebook's kernel leaves the other core idle.
WANTED: list[Path] = []
AT_ONCE = 2
_RUNS: dict[Path, object] = {}   # notebook -> its one run (``run_of``)


def run_of(notebook: Path):
    """``notebook``'s one run in this test session: stock nbgrader grading the reference answers for a
    solution notebook (``grading_helpers.StockRun``), an nbclient execution of a copy for any other.
    A run that failed raises its error for the tests of that notebook only, and is not run again."""
    if notebook not in _RUNS:
        batch = [notebook, *(n for n in dict.fromkeys(WANTED) if n != notebook and n not in _RUNS)]
        if len(batch) == 1:   # (no process to start for one)
            try:
                _RUNS[notebook] = run_now(notebook)
            except Exception as error:  # noqa: BLE001 - kept, and raised below, as a pool's would be
                _RUNS[notebook] = error
        else:
            with ProcessPoolExecutor(min(AT_ONCE, len(batch)), mp_context=multiprocessing.get_context("spawn")) as pool:
                futures = {n: pool.submit(run_now, n) for n in batch}
                _RUNS.update({n: future.exception() or future.result() for n, future in futures.items()})
    run = _RUNS[notebook]
    if isinstance(run, BaseException):
        raise run
    return run


def is_solution(notebook: Path) -> bool:
    return notebook.parent.parent == SOLUTIONS


def run_now(notebook: Path):
    from grading_helpers import stock_autograde_now

    if is_solution(notebook):
        return stock_autograde_now(notebook.parent.name)
    folder = Path(tempfile.mkdtemp(prefix="executed-"))
    try:
        shutil.copytree(notebook.parent, folder / notebook.parent.name)
        return executed_notebook(folder / notebook.parent.name / notebook.name)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def executed_copy(notebook: Path) -> nbformat.NotebookNode:
    """``notebook`` executed once per test session, in a copy of its folder (it may write next to itself).

    A solution notebook is the one stock nbgrader runs when it grades the reference answers
    (``grading_helpers.stock_autograde``): one run per lesson serves the stock round trip, the execution
    tests and the prose-number tests.
    """
    run = run_of(notebook)
    return run.notebook if is_solution(notebook) else run


def outcomes_of(nb: nbformat.NotebookNode) -> list[CellOutcome]:
    """What each code cell of an executed notebook did."""
    outcomes = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        errors = [o for o in cell.outputs if o.output_type == "error"]
        stderr = "".join(o.text for o in cell.outputs if o.output_type == "stream" and o.name == "stderr")
        outcomes.append(CellOutcome(index, cell.source, errors[0].ename if errors else None, stderr,
                                    needs_exercise(cell)))
    return outcomes
