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
from dataclasses import dataclass, field
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
            student = path.parent.parent.name
            try:
                found[student] = json.loads(path.read_text())
            except (OSError, ValueError) as error:   # damaged by hand or by a full disk: regrade it
                found[student] = {"student": student, "lesson": lesson, "status": "error", "scores": {}, "notes": [],
                                  "review": [], "max": 0, "total": 0,
                                  "message": f"its result.json cannot be read ({type(error).__name__}): grade it "
                                             "again with --force"}
        return found


def open_course(root: Path, must_exist: bool = True) -> Course:
    if must_exist and not root.is_dir():
        raise CourseError(f"no course directory at {root} (run `collect` first)")
    if root.exists() and not root.is_dir():
        raise CourseError(f"{root} is a file, not a course directory")
    return Course(root)


@dataclass
class Pick:
    """The file to grade in a student's lesson folder, what to note about the choice, and why an
    instructor should look (``review``: several files handed in at once)."""
    path: Path | None
    notes: list[str] = field(default_factory=list)
    review: list[str] = field(default_factory=list)


def pick_submission(folder: Path, download_of: dict[str, str] | None = None) -> Pick:
    """The newest .ipynb in ``folder`` wins; a folder without one falls back to the newest notebook-like
    file (a notebook saved as .json or .txt is still graded, with a note). Links and other non-regular
    files are never read.

    ``download_of`` maps stored files (paths relative to the course) to the download they were collected
    from: several candidates from the download the chosen file came from are flagged for review (a
    resubmission collected from a later download is not)."""
    files = [p for p in folder.iterdir() if not p.name.startswith(".") and p.is_file() and not p.is_symlink()]
    notebooks = [p for p in files if p.suffix.lower() == ".ipynb"]
    pool = notebooks or [p for p in files if p.suffix.lower() in NOTEBOOK_LIKE or not p.suffix]
    if not pool:
        names = ", ".join(sorted(p.name for p in files)) or "nothing"
        return Pick(None, [f"no notebook handed in (found {names})"])
    chosen = max(pool, key=lambda p: (p.stat().st_mtime, p.name))
    pick = Pick(chosen)
    if len(pool) > 1:
        pick.notes.append(f"{len(pool)} files handed in; graded the newest, {chosen.name}")
        root, download_of = folder.parents[2], download_of or {}   # (the course: submitted/<student>/<lesson>)

        def download(path: Path) -> str:
            return download_of.get(path.relative_to(root).as_posix(), "")

        together = sorted(p.name for p in pool if download(p) == download(chosen))
        if len(together) > 1:
            pick.review.append(f"{len(together)} files handed in together ({', '.join(together)}): graded the "
                               f"newest, {chosen.name}; check which one the student meant")
    if chosen.suffix.lower() != ".ipynb":
        pick.notes.append(f"graded {chosen.name}, which is not named .ipynb")
    return pick
