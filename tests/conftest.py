"""Shared fixtures: where things are, and how to execute a notebook the way a learner would."""
from __future__ import annotations

import atexit
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
RELEASE_CACHE = Path(tempfile.mkdtemp(prefix="releases-"))
atexit.register(shutil.rmtree, RELEASE_CACHE, True)


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
