"""The instructor's course directory (``--course DIR``) and where each command reads and writes.

    DIR/
      submitted/<student>/<assignment>/<file>  what students handed in, byte for byte (collect)
      collected.csv                            one row per collected file: where it came from, its sha256
      autograded/<student>/<assignment>/       the notebooks as they ran, their scores (result.json) and
                                               nbgrader's gradebook for them (grade)
      feedback/<student>/<assignment>/<notebook>.html  what each student gets back (feedback)
      gradebook.csv                            one row per student, one column per test cell (export)

Nothing under submitted/ is ever written by grade, feedback or export.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CourseError
from ..grading.contract import Contract, grade_id
from ..grading.rebuild import SubmissionError, read_submission

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
    """The files to grade in a student's assignment folder (the assignment's notebook name -> the file), what
    to note about the choice, and why an instructor should look (``review``: several files handed in at once)."""
    files: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    review: list[str] = field(default_factory=list)


def pick_submission(folder: Path, contract: Contract, download_of: dict[str, str] | None = None) -> Pick:
    """For each notebook of the assignment, the file that stands for it; links and other non-regular files are
    never read.

    One notebook: the newest .ipynb, else the newest notebook-like file (a notebook saved as .json or .txt is
    still graded, with a note). Several: a file named as the notebook (or ``name (2).ipynb``, a later one
    collect kept beside it), else the file whose cells carry that notebook's grade_ids. Several candidates
    for one notebook from one download are flagged for review (``download_of`` maps stored files, relative
    to the course, to the download they came from; a resubmission from a later download is not flagged)."""
    files = [p for p in folder.iterdir() if not p.name.startswith(".") and p.is_file() and not p.is_symlink()]
    notebooks = [p for p in files if p.suffix.lower() == ".ipynb"]
    pool = notebooks or [p for p in files if p.suffix.lower() in NOTEBOOK_LIKE or not p.suffix]
    pick = Pick()
    if not pool:
        names = ", ".join(sorted(p.name for p in files)) or "nothing"
        pick.notes.append(f"no notebook handed in (found {names})")
        return pick
    names = [nb.notebook for nb in contract.notebooks]
    candidates = {names[0]: pool} if len(names) == 1 else _by_notebook(pool, contract)
    root, download_of = folder.parents[2], download_of or {}   # (the course: submitted/<student>/<assignment>)

    def download(path: Path) -> str:
        return download_of.get(path.relative_to(root).as_posix(), "")

    for name in names:
        found = candidates.get(name, [])
        if not found:
            continue
        chosen = max(found, key=lambda p: (p.stat().st_mtime, p.name))
        pick.files[name] = chosen
        if len(found) > 1:
            pick.notes.append(f"{len(found)} files handed in; graded the newest, {chosen.name}")
            together = sorted(p.name for p in found if download(p) == download(chosen))
            if len(together) > 1:
                pick.review.append(f"{len(together)} files handed in together ({', '.join(together)}): graded "
                                   f"the newest, {chosen.name}; check which one the student meant")
        if chosen.suffix.lower() != ".ipynb":
            pick.notes.append(f"graded {chosen.name}, which is not named .ipynb")
    if not pick.files:
        pick.notes.append(f"no notebook of this assignment handed in (found {', '.join(sorted(p.name for p in pool))})")
    return pick


def _by_notebook(pool: list[Path], contract: Contract) -> dict[str, list[Path]]:
    """Each file of a multi-notebook assignment, as the notebook it is: by its name, else by its grade_ids."""
    found: dict[str, list[Path]] = {}
    ids = {nb.notebook: {t.grade_id for t in nb.tests} | {e.answer_id for e in nb.exercises}
           | {m.grade_id for m in nb.manual} for nb in contract.notebooks}
    for path in pool:
        stem = re.sub(r" \(\d+\)$", "", path.stem)
        named = next((name for name in ids if Path(name).stem == stem), None)
        if named is None:
            try:
                carried = {grade_id(c) for c in read_submission(path.read_bytes())} - {None}
            except (SubmissionError, OSError):
                carried = set()
            overlap = {name: len(carried & cells) for name, cells in ids.items()}
            best = max(overlap, key=overlap.get)
            named = best if overlap[best] else None
        if named is not None:
            found.setdefault(named, []).append(path)
    return found
