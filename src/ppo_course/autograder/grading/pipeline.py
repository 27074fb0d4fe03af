"""The nbgrader pipelines the grader runs: how an assignment is released, graded and given feedback.

nbgrader does the work (generate_assignment: solutions replaced by stubs, hidden tests removed, cells
locked, checksums computed; autograde; generate_feedback), in throwaway course directories, with the
steps this package adds or replaces (``preprocessors``, and ``execute.SandboxedExecute`` in place of
nbgrader's Execute). Every module of this package is part of the release bundle's cache key
(``bundle.release_digest``), so a change here is a new release.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from ..errors import CourseError


def ensure_tools_on_path() -> None:
    """nbgrader's gradebook shells out to ``alembic``: put this interpreter's bin folder on PATH."""
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")


def released_notebook_steps() -> list:
    """nbgrader's generate_assignment steps, with the stubs named right after the solutions are cleared, and
    each test cell announcing a pass once the gradebook has saved the course's own cells."""
    from nbgrader.converters import GenerateAssignment
    from nbgrader.preprocessors import ClearHiddenTests, ClearSolutions

    from .preprocessors import AnnounceVisiblePass, NameTheStubs

    steps = list(GenerateAssignment.class_traits()["preprocessors"].default())
    steps.insert(steps.index(ClearSolutions) + 1, NameTheStubs)
    steps.insert(steps.index(ClearHiddenTests), AnnounceVisiblePass)
    return steps


def nbgrader_config(course_root: Path):
    """The nbgrader configuration the course uses everywhere (release, grading, tests)."""
    from traitlets.config import Config

    ensure_tools_on_path()
    config = Config()
    config.CourseDirectory.root = str(course_root)
    config.CourseDirectory.db_url = f"sqlite:///{course_root / 'gradebook.db'}"
    config.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__"]
    config.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
    config.GenerateAssignment.preprocessors = released_notebook_steps()
    config.Exchange.assignment_dir = str(course_root)
    return config


def grading_config(course_root: Path, db_path: Path | None = None, cell_timeout: int = 30,
                   sandboxed_tests: bool = False):
    """nbgrader_config plus the course's grading pipeline (used by `grade`, `feedback` and stock nbgrader):

    autograde: a test cell scores on its assertions even if something wrote to stderr; with
               ``sandboxed_tests`` (the course's `grade`), nbgrader's Execute is replaced by
               ``SandboxedExecute``: answers run in the learner's sandboxed kernel, tests in the grader;
    feedback:  hidden tests removed (nbgrader's ClearHiddenTests) and failed tests shown without tracebacks.
    """
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
    from nbgrader.converters import Autograde
    from nbgrader.preprocessors import ClearHiddenTests, Execute, GetGrades

    from .preprocessors import StderrIsNotFailure, TrimTracebacks

    config = nbgrader_config(course_root)
    if db_path is not None:
        config.CourseDirectory.db_url = f"sqlite:///{db_path}"
    config.Execute.timeout = cell_timeout
    config.Execute.interrupt_on_timeout = True  # a plain infinite loop costs one cell, not the notebook
    pipeline = list(Autograde.autograde_preprocessors.default())
    position = pipeline.index(Execute)
    if sandboxed_tests:
        from .execute import SandboxedExecute

        pipeline[position] = SandboxedExecute
    pipeline.insert(position + 1, StderrIsNotFailure)
    config.Autograde.autograde_preprocessors = pipeline
    config.GenerateFeedback.preprocessors = [ClearHiddenTests, TrimTracebacks, GetGrades, CSSHTMLHeaderPreprocessor]
    return config


def release_in_course(lesson: str, source: Path, course_root: Path) -> Path:
    """Run nbgrader's generate_assignment on ``source/lesson`` inside the course ``course_root``.

    Returns the folder of the released assignment (``course_root/release/lesson``).
    """
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    shutil.copytree(source / lesson, course_root / "source" / lesson,
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    config = nbgrader_config(course_root)
    api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
    result = api.generate_assignment(lesson, force=True, create=True)
    if not result["success"]:
        raise CourseError(f"nbgrader could not release {lesson}: {result.get('error') or result.get('log')}")
    return course_root / "release" / lesson
