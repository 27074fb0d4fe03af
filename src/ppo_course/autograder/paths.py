"""Where the course keeps its notebooks, and the names of its lessons."""
from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
SOLUTIONS_DIR = REPO_ROOT / "solutions"
LESSONS_DIR = REPO_ROOT / "lessons"


class CourseError(Exception):
    """A problem with the user's input: reported as one line, exit status 2."""


def lesson_notebook(lesson: str, source: Path = SOLUTIONS_DIR) -> Path:
    """The notebook of ``lesson`` (a folder name) in ``source`` (solutions/ or lessons/)."""
    notebook = next((source / lesson).glob("*.ipynb"), None)
    if notebook is None:
        raise CourseError(f"no source notebook for {lesson} in {source}")
    return notebook


def lesson_names(source: Path = SOLUTIONS_DIR) -> list[str]:
    """The lessons in ``source``, in course order (their folder names start with the number)."""
    return sorted(p.name for p in source.iterdir() if p.is_dir() and p.name[:2].isdigit())


def resolve_lessons(requested: list[str] | None, source: Path = SOLUTIONS_DIR) -> list[str]:
    """Expand a user's lesson list ('03', '03-clipped-surrogate', or nothing for all) to folder names."""
    available = lesson_names(source)
    if not requested:
        return available
    chosen = []
    for name in requested:
        matches = [lesson for lesson in available if lesson == name or lesson.split("-", 1)[0] == name.zfill(2)]
        if not matches:
            raise CourseError(f"unknown lesson '{name}' (available: {', '.join(available)})")
        chosen.extend(m for m in matches if m not in chosen)
    return chosen
