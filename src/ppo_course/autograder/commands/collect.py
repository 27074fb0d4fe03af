"""Lay out an LMS download (a zip, or a folder) as DIR/submitted/<student>/<lesson>/<file>.

Everything in a download is treated as hostile, because students control part of it (their files'
names, contents, links and folders):

* **Regular files only.** A symbolic link (in a folder or a zip) is never followed, and a device,
  a pipe or a socket is never read: each is skipped with its reason. Paths with ``..``, absolute
  paths, and folders nested deeper than ``MAX_DEPTH`` are skipped too.
* **One layout per download.** ``--id-pattern auto`` looks only at the top level of the download
  (which the LMS writes, not the students) and picks one layout for all of it: ``canvas`` (flat file
  names ``name_12345_67890_file``), ``moodle`` (``Full Name_12345_assignsubmission_file_`` folders, or
  flat names of that form) or ``folders`` (one folder per student). It says which.
* **A student id comes from the top level only**: the entry's own name when it is at the top, else
  its top-level folder. So a file a student puts inside their folder, named like another student's
  Canvas or Moodle file, is still theirs. The same rule holds for a custom ``--id-pattern`` regex.
* **Per-student limits**: at most ``MAX_FILES_PER_STUDENT`` files and ``MAX_BYTES_PER_STUDENT`` bytes
  in a student's lesson folder, each file at most ``MAX_FILE_BYTES``. What is over a limit is skipped
  with a note, and the rest of the class is collected as usual.
* **Logged as it goes**: each stored or skipped file is a row of DIR/collected.csv (written through
  ``text.write_csv``: no cell is a spreadsheet formula) the moment it is decided, so a run stopped
  at any point leaves a true log, and running it again continues (identical files are recognised).

Files are copied byte for byte with their timestamps and never overwritten: a different file under
a name already taken is kept beside it as ``name (2).ipynb``.
"""
from __future__ import annotations

import contextlib
import csv
import datetime as dt
import hashlib
import os
import re
import stat
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from ..errors import CourseError
from ..text import printable, read_csv, write_csv
from .folder import Course, safe_id

CANVAS = r"^(?P<name>[^_/]+)_(?:LATE_)?(?P<student>\d+)_\d+_(?P<file>[^/]+)$"
MOODLE_FOLDER = r"^(?P<name>[^/]+?)_(?P<student>\d+)_assignsubmission_file_/(?P<file>.+)$"
MOODLE_FLAT = r"^(?P<name>[^/]+?)_(?P<student>\d+)_assignsubmission_file_(?P<file>[^/]+)$"
FOLDERS = r"^(?P<student>[^/]+)/(?:.*/)?(?P<file>[^/]+)$"
LAYOUTS = {
    "canvas": ("Canvas (flat file names: name_12345_67890_file)", [CANVAS]),
    "moodle": ("Moodle (Full Name_12345_assignsubmission_file_ folders or names)", [MOODLE_FOLDER, MOODLE_FLAT]),
    "folders": ("a folder per student (student/file)", [FOLDERS]),
}
TOP_LEVEL_TESTS = {   # does a top-level name look like this layout's? (a layout is chosen from these)
    "canvas": lambda name, is_dir: not is_dir and re.match(CANVAS, name) is not None,
    "moodle": lambda name, is_dir: re.match(r"^[^/]+?_\d+_assignsubmission_file_", name) is not None,
    "folders": lambda name, is_dir: is_dir,
}
JUNK = re.compile(r"(^|/)(__MACOSX|\.DS_Store|\.ipynb_checkpoints|Thumbs\.db|desktop\.ini)(/|$)")
MAX_FILE_BYTES = 100 * 2**20
MAX_FILES_PER_STUDENT = 20            # files in one student's lesson folder
MAX_BYTES_PER_STUDENT = 200 * 2**20
MAX_DEPTH = 16                        # folders below a student's own
MAX_PATH_CHARS = 1000
MAX_LISTED_PER_STUDENT = 5            # skipped files of one student listed one by one; the rest counted
LOG_FIELDS = ["collected_at", "download", "source", "entry", "student", "name", "lesson", "stored_as", "bytes",
              "sha256", "outcome", "layout"]   # layout: where the id came from (canvas: Canvas's user id; moodle:
                                                # the assignment's participant number; folders; custom)


@dataclass
class Entry:
    path: str                    # inside the zip or folder, with "/"
    size: int
    mtime: float
    read: Callable[[], bytes] | None   # None: not a regular file (``problem`` says what it is)
    problem: str = ""


@dataclass
class Collected:
    layout: str = ""
    stored: list[dict] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)   # "entry: why", already printable
    notes: list[str] = field(default_factory=list)


# ------------------------------------------------------------------ reading a download


@contextlib.contextmanager
def opened(source: Path) -> Iterator[list[Entry]]:
    """The entries of a download (a zip or a folder), readable while the context lasts."""
    if source.is_dir():
        yield list(folder_entries(source))
    elif source.is_file():
        try:
            archive = zipfile.ZipFile(source)
        except (zipfile.BadZipFile, OSError, ValueError) as error:
            raise CourseError(f"{source} is not a readable zip file ({error})") from None
        with archive:
            yield list(zip_entries(archive))
    else:
        raise CourseError(f"no zip file or folder at {source}")


def zip_entries(archive: zipfile.ZipFile) -> Iterator[Entry]:
    for info in archive.infolist():
        if info.is_dir():
            continue
        mode = info.external_attr >> 16
        try:
            mtime = time.mktime(info.date_time + (0, 0, -1))
        except (OverflowError, ValueError):
            mtime = time.time()
        if stat.S_ISLNK(mode):
            yield Entry(info.filename, info.file_size, mtime, None, "a symbolic link in the zip: not followed")
        elif mode and stat.S_IFMT(mode) and not stat.S_ISREG(mode):
            yield Entry(info.filename, info.file_size, mtime, None, "not a regular file")
        else:
            yield Entry(info.filename, info.file_size, mtime, lambda info=info: _read_zip(archive, info))


def _read_zip(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    with archive.open(info) as handle:   # stops at the declared size, and checks the CRC
        return handle.read(MAX_FILE_BYTES + 1)


def folder_entries(root: Path) -> Iterator[Entry]:
    """Every entry below ``root``, without following a link: a link, a pipe or a device is an Entry with a
    problem, so that it is reported, not read. Folders deeper than MAX_DEPTH are reported, not walked."""
    stack = [("", 0)]
    while stack:
        relative, depth = stack.pop()
        folder = root / relative if relative else root
        try:
            with os.scandir(folder) as listing:
                children = sorted(listing, key=lambda e: e.name, reverse=True)
        except OSError as error:
            yield Entry(relative or ".", 0, 0.0, None, f"could not be listed ({error.strerror})")
            continue
        for child in children:
            path = f"{relative}/{child.name}" if relative else child.name
            try:
                info = child.stat(follow_symlinks=False)
            except OSError as error:
                yield Entry(path, 0, 0.0, None, f"could not be read ({error.strerror})")
                continue
            if stat.S_ISLNK(info.st_mode):
                yield Entry(path, 0, info.st_mtime, None, "a symbolic link: not followed")
            elif stat.S_ISDIR(info.st_mode):
                if depth >= MAX_DEPTH:
                    yield Entry(path + "/", 0, info.st_mtime, None, f"folders nested more than {MAX_DEPTH} deep")
                else:
                    stack.append((path, depth + 1))
            elif not stat.S_ISREG(info.st_mode):
                yield Entry(path, 0, info.st_mtime, None, "not a regular file")
            else:
                yield Entry(path, info.st_size, info.st_mtime, lambda file=root / path: _read_regular(file))


def _read_regular(file: Path) -> bytes:
    """The file's bytes, refusing a link put in its place since it was listed."""
    fd = os.open(file, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(0, "not a regular file")
        return handle.read(MAX_FILE_BYTES + 1)


def path_problem(path: str) -> str:
    parts = path.split("/")
    if path.startswith("/") or "\\" in path or any(p in ("", ".", "..") for p in parts):
        return "a path with an empty, '.' or '..' part, an absolute path or a backslash"
    if len(path) > MAX_PATH_CHARS or len(parts) > MAX_DEPTH + 2:
        return "a path too long or too deep"
    return ""


# ------------------------------------------------------------------ whose file is it


@dataclass(frozen=True)
class Layout:
    name: str
    description: str
    patterns: tuple[re.Pattern, ...]

    def identify(self, path: str) -> re.Match | None:
        """The match naming the student, only when the id lies in the path's top-level part."""
        top = len(path.split("/", 1)[0])
        for pattern in self.patterns:
            match = pattern.search(path)
            if match and match.group("student") and match.end("student") <= top:
                return match
        return None


def compile_layout(pattern: str) -> Layout:
    """The layout an --id-pattern names (canvas, moodle, folders) or a custom regex."""
    if pattern in LAYOUTS:
        description, regexes = LAYOUTS[pattern]
        return Layout(pattern, description, tuple(re.compile(r) for r in regexes))
    try:
        regex = re.compile(pattern)
    except re.error as error:
        raise CourseError(f"--id-pattern is not a valid regular expression: {error}") from None
    if "student" not in regex.groupindex:
        raise CourseError("--id-pattern needs a named group (?P<student>...) for the student id")
    return Layout("custom", f"the regular expression {pattern!r}", (regex,))


def choose_layout(paths: list[str]) -> Layout:
    """``auto``: the one layout that most of the download's top-level names have (ties: the more specific).

    Students cannot add a top-level name (the LMS writes those), so none can tip the choice, and nothing
    inside a student's folder is ever read as the download's own layout: a folder around a whole
    download is one student's folder here (``collect`` says so; give the folder inside it)."""
    tops: dict[str, bool] = {}
    for path in paths:
        top, _, rest = path.partition("/")
        tops[top] = tops.get(top, False) or bool(rest)
    counts = {name: sum(test(top, is_dir) for top, is_dir in tops.items()) for name, test in TOP_LEVEL_TESTS.items()}
    name = max(counts, key=lambda n: (counts[n], -list(LAYOUTS).index(n)))
    if not counts[name]:
        raise CourseError("no Canvas, Moodle or folder-per-student layout found at the top of the download "
                          "(see --id-pattern)")
    return compile_layout(name)


# ------------------------------------------------------------------ storing


class StudentFolder:
    """One student's lesson folder, and what this run may still put in it."""

    def __init__(self, folder: Path):
        self.folder = folder
        existing = [p for p in folder.iterdir() if p.is_file()] if folder.is_dir() else []
        self.files = len(existing)
        self.bytes = sum(p.stat().st_size for p in existing)
        self.skipped = 0

    def over_limit(self, size: int) -> str:
        if self.files >= MAX_FILES_PER_STUDENT:
            return f"this student already has {MAX_FILES_PER_STUDENT} files for the lesson (the limit)"
        if self.bytes + size > MAX_BYTES_PER_STUDENT:
            return f"this student's files for the lesson would pass {MAX_BYTES_PER_STUDENT // 2**20} MiB (the limit)"
        return ""

    def store(self, data: bytes, file_name: str, mtime: float) -> tuple[Path, bool]:
        """Write ``data`` without clobbering; returns (path, newly written)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        stem, suffix = os.path.splitext(file_name)
        for n in range(1, MAX_FILES_PER_STUDENT + 2):
            target = self.folder / (file_name if n == 1 else f"{stem} ({n}){suffix}")
            if not target.exists():
                with open(target, "xb") as handle:
                    handle.write(data)
                os.utime(target, (mtime, mtime))
                self.files += 1
                self.bytes += len(data)
                return target, True
            if target.is_file() and not target.is_symlink() and target.read_bytes() == data:
                return target, False
        raise OSError(f"no free name for {file_name}")


class Log:
    """collected.csv, one row per decision, appended as soon as it is made."""

    def __init__(self, course: Course, source: Path, lesson: str, layout: str):
        self.path, self.source, self.lesson, self.layout = course.collected_log, str(source), lesson, layout
        self.download = uuid.uuid4().hex[:8]
        upgrade_log(self.path)

    def write(self, entry: str, outcome: str, student: str = "", name: str = "", stored_as: str = "",
              data: bytes | None = None) -> dict:
        row = {"collected_at": dt.datetime.now().isoformat(timespec="seconds"), "download": self.download,
               "source": self.source, "entry": entry, "student": student, "name": name, "lesson": self.lesson,
               "stored_as": stored_as, "bytes": "" if data is None else len(data),
               "sha256": "" if data is None else hashlib.sha256(data).hexdigest(), "outcome": outcome,
               "layout": self.layout}
        write_csv(self.path, LOG_FIELDS, [[row[f] for f in LOG_FIELDS]], append=True)
        return row


def upgrade_log(path: Path) -> None:
    """A collected.csv from an earlier version gets the columns added since (its rows kept as they are)."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        rows = list(csv.DictReader(handle))
        header = rows[0].keys() if rows else []
    if list(header) == LOG_FIELDS or not rows:
        return
    staged = path.with_name(path.name + ".upgrading")
    write_csv(staged, LOG_FIELDS, [[row.get(f) or ("stored" if f == "outcome" else "") for f in LOG_FIELDS]
                                   for row in rows])
    staged.replace(path)


def collect(course: Course, source: Path, lesson: str, pattern: str = "auto") -> Collected:
    """Copy every submission in ``source`` (zip or folder) into ``course`` for ``lesson``."""
    layout = None if pattern == "auto" else compile_layout(pattern)
    with opened(source) as entries:
        return collect_entries(course, source, lesson, layout, [e for e in entries if not JUNK.search(e.path)])


def collect_entries(course: Course, source: Path, lesson: str, layout: Layout | None, entries: list[Entry]
                    ) -> Collected:
    if layout is None:
        layout = choose_layout([e.path for e in entries if not path_problem(e.path)])
    report, log, folders, owners = Collected(layout.description), Log(course, source, lesson, layout.name), {}, {}

    def skip(entry: Entry, why: str, student: str = "", folder: StudentFolder | None = None) -> None:
        if folder is not None:
            folder.skipped += 1
            if folder.skipped > MAX_LISTED_PER_STUDENT:
                return   # counted, and listed once at the end
        log.write(printable(entry.path, 500), f"skipped: {why}", student)
        report.skipped.append(f"{printable(entry.path)}: {why}")

    for entry in entries:
        problem = entry.problem or path_problem(entry.path)
        match = None if problem else layout.identify(entry.path)
        if problem or match is None:
            skip(entry, problem or f"no student id: not a {layout.name} name at the top level (see --id-pattern)")
            continue
        groups = match.groupdict()
        student = safe_id(groups["student"])
        if owners.setdefault(student, groups["student"]) != groups["student"]:
            skip(entry, f"its student id reads as {student}, like {printable(owners[student])}'s: not collected")
            continue
        folder = folders.get(student) or folders.setdefault(student, StudentFolder(course.submitted / student / lesson))
        if entry.size > MAX_FILE_BYTES:
            skip(entry, f"{entry.size / 2**20:.0f} MiB, larger than a notebook should be", student, folder)
            continue
        if folder.over_limit(entry.size):
            skip(entry, folder.over_limit(entry.size), student, folder)
            continue
        try:
            data = entry.read()
        except Exception as error:  # noqa: BLE001 - a damaged, encrypted or vanished file: this file only
            skip(entry, f"unreadable ({printable(error, 120)})", student, folder)
            continue
        if len(data) > MAX_FILE_BYTES:
            skip(entry, "larger than a notebook should be", student, folder)
            continue
        file_name = safe_id((groups.get("file") or entry.path).rsplit("/", 1)[-1])
        try:
            target, written = folder.store(data, file_name, entry.mtime)
        except OSError as error:
            skip(entry, f"not stored ({printable(error, 120)})", student, folder)
            continue
        if not written:
            report.unchanged.append(entry.path)
            continue
        report.stored.append(log.write(printable(entry.path, 500), "stored", student, groups.get("name") or "",
                                       target.relative_to(course.root).as_posix(), data))
    if layout.name == "folders" and len(folders) == 1:
        report.notes.append(f"the whole download went to one student, {next(iter(folders))}: if that folder only "
                            "wraps the class's files, collect the folder inside it")
    for student, folder in sorted(folders.items()):
        if folder.skipped > MAX_LISTED_PER_STUDENT:
            more = folder.skipped - MAX_LISTED_PER_STUDENT
            log.write(f"({more} more)", f"skipped: {more} more files of this student (limits above)", student)
            report.skipped.append(f"{student}: {more} more files skipped (see collected.csv)")
    if not report.stored and not report.unchanged:
        raise CourseError(f"nothing collected from {source} as {layout.description}: no file name had a student "
                          "id (see --id-pattern)")
    return report


def log_rows(course: Course) -> list[dict]:
    if not course.collected_log.exists():
        return []
    return [row for row in read_csv(course.collected_log) if row.get("outcome", "stored") == "stored"]


def student_names(course: Course) -> dict[str, str]:
    """{student id: name} from collected.csv (Canvas and Moodle put a name in the file name)."""
    return {row["student"]: row["name"] for row in log_rows(course) if row.get("name")}


def id_layouts(course: Course) -> dict[str, str]:
    """{student id: the layout it was read from} (``canvas``: Canvas's own user id; ``moodle``: the Moodle
    assignment's participant number; ``folders``, ``custom``; empty for a log older than this column)."""
    return {row["student"]: row.get("layout", "") for row in log_rows(course)}


def downloads(course: Course) -> dict[str, str]:
    """{stored file, relative to the course: the download it came from} (several files of one student in one
    download are flagged for review at grading)."""
    return {row["stored_as"]: row.get("download") or row.get("collected_at", "") for row in log_rows(course)}

