"""The instructor's course directory (``--course DIR``) and where each command reads and writes.

    DIR/
      submitted/<student>/<lesson>/<file>      what students handed in, byte for byte (collect)
      collected.csv                            one row per collected file: where it came from, its sha256
      autograded/<student>/<lesson>/           the notebook that was run, its scores (result.json) and
                                               nbgrader's gradebook for it (grade)
      feedback/<student>/<lesson>/<lesson>.html  what each student gets back (feedback)
      gradebook.csv                            one row per student, one column per exercise (export)

Nothing under submitted/ is ever written by grade, feedback or export.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from .paths import CourseError

SAFE_ID = re.compile(r"[^A-Za-z0-9_.@-]+")
NOTEBOOK_LIKE = (".ipynb", ".json", ".txt")   # extensions a mis-saved notebook plausibly has


def safe_id(text: str) -> str:
    """A student id or file name that is one path component and nothing else."""
    cleaned = SAFE_ID.sub("_", text).strip("._")
    return cleaned or "unnamed"


@dataclass(frozen=True)
class Course:
    root: Path

    # The places in it, as the layout above names them.
    submitted = property(lambda self: self.root / "submitted")
    autograded = property(lambda self: self.root / "autograded")
    feedback = property(lambda self: self.root / "feedback")
    collected_log = property(lambda self: self.root / "collected.csv")
    gradebook_csv = property(lambda self: self.root / "gradebook.csv")

    def result_path(self, student: str, lesson: str) -> Path:
        return self.autograded / student / lesson / "result.json"

    def students(self, lesson: str) -> list[str]:
        """Students with a folder for ``lesson`` under submitted/."""
        if not self.submitted.is_dir():
            return []
        return sorted(p.name for p in self.submitted.iterdir() if (p / lesson).is_dir())

    def submitted_lessons(self) -> list[str]:
        if not self.submitted.is_dir():
            return []
        return sorted({lesson.name for student in self.submitted.iterdir() if student.is_dir()
                       for lesson in student.iterdir() if lesson.is_dir()})

    def results(self, lesson: str) -> dict[str, dict]:
        """{student: result.json contents} for every graded (or failed) submission of a lesson."""
        found = {}
        for path in sorted(self.autograded.glob(f"*/{lesson}/result.json")):
            found[path.parent.parent.name] = json.loads(path.read_text())
        return found


def open_course(root: Path, must_exist: bool = True) -> Course:
    if must_exist and not root.is_dir():
        raise CourseError(f"no course directory at {root} (run `collect` first)")
    if root.exists() and not root.is_dir():
        raise CourseError(f"{root} is a file, not a course directory")
    return Course(root)


def pick_submission(folder: Path) -> tuple[Path | None, list[str]]:
    """The file to grade in a student's lesson folder, and notes about the choice.

    The newest .ipynb wins; a folder without one falls back to the newest notebook-like file
    (a notebook saved as .json or .txt is still graded, with a note).
    """
    files = [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]
    notebooks = [p for p in files if p.suffix.lower() == ".ipynb"]
    pool = notebooks or [p for p in files if p.suffix.lower() in NOTEBOOK_LIKE or not p.suffix]
    notes = []
    if not pool:
        names = ", ".join(sorted(p.name for p in files)) or "nothing"
        return None, [f"no notebook handed in (found {names})"]
    chosen = max(pool, key=lambda p: (p.stat().st_mtime, p.name))
    if len(pool) > 1:
        notes.append(f"{len(pool)} files handed in; graded the newest, {chosen.name}")
    if chosen.suffix.lower() != ".ipynb":
        notes.append(f"graded {chosen.name}, which is not named .ipynb")
    return chosen, notes
