"""Shared fixtures: where things are, and how to execute a notebook the way a learner would."""
from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SOLUTIONS = REPO / "solutions"
LESSONS = REPO / "lessons"

# Kernels and nbgrader's gradebook (alembic) are found through PATH: use this interpreter's.
os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
# Lessons run short in tests; MPLBACKEND keeps plotting from looking for a display.
os.environ["PPO_COURSE_FAST"] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")
# The executed lessons show every prediction's answer (the prose-number tests read them); the test of
# the predictions themselves runs its notebooks without this, as a learner does.
os.environ["PPO_COURSE_REVEAL"] = "1"


# One nbgrader release per lesson for the whole run: the grading tests share this cache (grade's
# release_cache, the CLI's --release-cache), so a lesson is released once, not once per test module.
# pytest-xdist's workers inherit it from the process that made it (and removes it at the end).
if "PPO_TEST_RELEASE_CACHE" not in os.environ:
    os.environ["PPO_TEST_RELEASE_CACHE"] = tempfile.mkdtemp(prefix="releases-")
    atexit.register(shutil.rmtree, os.environ["PPO_TEST_RELEASE_CACHE"], True)
RELEASE_CACHE = Path(os.environ["PPO_TEST_RELEASE_CACHE"])
# Modules that read the run's one execution of each solution notebook (notebook_execution.executed_copy,
# grading_helpers.stock_autograde, cached per process): with pytest-xdist they share one worker.
READ_EXECUTED_NOTEBOOKS = {"test_notebooks.py", "test_prose_numbers.py", "test_predictions.py",
                           "test_grading_round_trips.py"}
# Modules that grade in the sandbox: with pytest-xdist they run one after another on one worker, as they do
# without it (each grades with two processes at a time, and some time what they grade), and share the
# classes graded once per process (lesson03_class.graded_class_once).
SANDBOXED_GRADING = {"test_any_course.py", "test_autograder_class.py", "test_class_report.py",
                     "test_cluster_grading.py", "test_feedback_pages.py", "test_grading_every_lesson.py",
                     "test_grading_namespace.py", "test_hostile_class.py", "test_hostile_doors.py", "test_sandbox.py"}


def worker_group(module: str) -> str:
    """The tests pytest-xdist keeps on one worker: a module's (its module-scoped fixtures, a graded class or a
    built site, are made once), or one of the groups above."""
    return ("executed-notebooks" if module in READ_EXECUTED_NOTEBOOKS
            else "sandboxed-grading" if module in SANDBOXED_GRADING else module)


if importlib.util.find_spec("xdist"):
    def pytest_xdist_make_scheduler(config, log):
        """``-n N --dist loadgroup`` spreads ``worker_group``s over the workers. (pytest-xdist's own loadgroup
        reads groups from test ids it rewrites, which pytest 9.2 no longer lets it do: pytest-xdist#1386.)"""
        if config.getvalue("dist") != "loadgroup":
            return None
        from xdist.scheduler import LoadScopeScheduling

        class CourseGroups(LoadScopeScheduling):
            def _split_scope(self, nodeid: str) -> str:
                return worker_group(Path(nodeid.split("::")[0]).name)

        return CourseGroups(config, log)


def pytest_collection_finish(session):
    """The notebooks the chosen readers of executed notebooks will ask for (after -k and -m have chosen)
    are run together, when the first is asked for (``notebook_execution.WANTED``)."""
    import notebook_execution

    notebook_execution.WANTED[:] = [notebook for item in session.items if item.path.name in READ_EXECUTED_NOTEBOOKS
                                    for notebook in notebooks_in_parameters(item)]


def notebooks_in_parameters(item) -> list[Path]:
    """The notebooks a test's parameters name: a notebook, a lesson's folder name, or a lesson's prediction."""
    found = []
    for value in getattr(getattr(item, "callspec", None), "params", {}).values():
        lesson = getattr(value, "lesson", value)
        if isinstance(value, Path) and value.suffix == ".ipynb":
            found.append(value)
        elif isinstance(lesson, str) and (SOLUTIONS / lesson).is_dir():
            found.append(lesson_notebook(lesson))
    return found


def notebooks(folder: Path) -> list[Path]:
    return sorted(folder.glob("*/*.ipynb"))


def lesson_notebook(lesson: str, folder: Path = SOLUTIONS) -> Path:
    """The notebook of ``lesson`` (its folder name) in solutions/ (default) or lessons/."""
    return next((folder / lesson).glob("*.ipynb"))


@pytest.fixture
def lesson_copy(tmp_path):
    """Copy a lesson folder into a temporary directory (notebooks may write files next to themselves)."""
    def copy(notebook: Path) -> Path:
        target = tmp_path / notebook.parent.name
        shutil.copytree(notebook.parent, target)
        return target / notebook.name
    return copy


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny tensors: on a 2-core machine a second intra-op thread only adds waiting (as in the notebooks)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def sandbox():
    """Grading runs student code in bubblewrap: skip without it here, but fail under CI=true (course.sh
    installs it there)."""
    from ppo_course.autograder.sandbox.bubblewrap import probe

    problem = probe()
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{problem}; CI=true, so the sandboxed grading tests must run")
        pytest.skip(problem)
