"""A course's source: a folder of nbgrader source assignments, one folder each, one or more notebooks each.

    SOURCE/
      autograder.toml          how the course is graded (optional: ``grading.settings``)
      <assignment>/*.ipynb     nbgrader source notebooks (solutions and hidden tests), with their data files

This repository's course is ``solutions/`` (its lessons, ``NN-name``), released to ``lessons/``; any
nbgrader course's ``source/`` folder works the same (``--source``).
"""
from __future__ import annotations

from pathlib import Path

from ..errors import CourseError

REPO_ROOT = Path(__file__).resolve().parents[4]
SOLUTIONS_DIR = REPO_ROOT / "solutions"      # this repository's course, the commands' default --source
LESSONS_DIR = REPO_ROOT / "lessons"


def assignment_names(source: Path) -> list[str]:
    """The assignments in ``source``: its folders that hold a notebook, in name order."""
    if not source.is_dir():
        raise CourseError(f"no course source folder at {source}")
    return sorted(p.name for p in source.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))
                  and any(n.suffix == ".ipynb" for n in p.iterdir()))


def resolve(requested: list[str] | None, source: Path = SOLUTIONS_DIR) -> list[str]:
    """A user's assignment list ('03', '03-clipped-surrogate', 'ps1', or nothing for all) as folder names."""
    available = assignment_names(source)
    if not requested:
        return available
    chosen = []
    for name in requested:
        matches = [a for a in available if a == name] or [
            a for a in available if name.isdigit() and a.split("-", 1)[0] == name.zfill(2)]
        if not matches:
            raise CourseError(f"unknown assignment '{name}' in {source} (available: {', '.join(available) or 'none'})")
        chosen.extend(m for m in matches if m not in chosen)
    return chosen
