"""Lay out an LMS download (zip or folder of folders) as DIR/submitted/<student>/<lesson>/<file>.

The student id comes from each file's path through a regular expression with a ``student`` group
(and optionally ``name`` and ``file``); presets cover Canvas and Moodle downloads. Files are copied
byte for byte with their timestamps, never overwritten (a different file with the same name is kept
beside it), and every copy is logged with its sha256 in DIR/collected.csv.
"""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import os
import re
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from .course import Course, safe_id
from .paths import CourseError

ID_PATTERNS = {
    # Canvas: lastnamefirstname_[LATE_]userid_submissionid_filename.ipynb
    "canvas": r"^(?:.*/)?(?P<name>[^_/]+)_(?:LATE_)?(?P<student>\d+)_\d+_(?P<file>[^/]+)$",
    # Moodle: Full Name_participantid_assignsubmission_file_[/]filename.ipynb
    "moodle": r"^(?:.*/)?(?P<name>[^/_]+)_(?P<student>\d+)_assignsubmission_file_/?(?P<file>[^/]*)$",
    # A folder of folders: student/filename.ipynb (any depth below the student folder)
    "folders": r"^(?P<student>[^/]+)/(?:.*/)?(?P<file>[^/]+)$",
}
JUNK = re.compile(r"(^|/)(__MACOSX|\.DS_Store|\.ipynb_checkpoints|Thumbs\.db)(/|$)")
MAX_FILE_BYTES = 100 * 2**20
LOG_FIELDS = ["collected_at", "source", "entry", "student", "name", "lesson", "stored_as", "bytes", "sha256"]


@dataclass
class Entry:
    path: str                 # the entry's path inside the zip or folder, with "/"
    size: int
    mtime: float
    read: callable


@dataclass
class Collected:
    stored: list[dict] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)   # "entry: why"


def compile_pattern(pattern: str) -> list[re.Pattern]:
    """The regexes an id pattern name (canvas, moodle, folders, auto) or custom regex stands for."""
    names = ["canvas", "moodle", "folders"] if pattern == "auto" else [pattern]
    compiled = []
    for name in names:
        try:
            regex = re.compile(ID_PATTERNS.get(name, name))
        except re.error as error:
            raise CourseError(f"--id-pattern is not a valid regular expression: {error}") from None
        if "student" not in regex.groupindex:
            raise CourseError("--id-pattern needs a named group (?P<student>...) for the student id")
        compiled.append(regex)
    return compiled


def zip_entries(path: Path) -> Iterator[Entry]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise CourseError(f"{path} is not a readable zip file ({error})") from None
    with archive:
        for info in archive.infolist():
            if not info.is_dir():
                mtime = time.mktime(info.date_time + (0, 0, -1))
                yield Entry(info.filename, info.file_size, mtime, lambda info=info: archive.read(info))


def folder_entries(path: Path) -> Iterator[Entry]:
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        stat = file.stat()
        yield Entry(file.relative_to(path).as_posix(), stat.st_size, stat.st_mtime, file.read_bytes)


def identify(entry_path: str, patterns: list[re.Pattern]) -> re.Match | None:
    return next((m for m in (p.search(entry_path) for p in patterns) if m), None)


def store(data: bytes, folder: Path, file_name: str, mtime: float) -> tuple[Path, bool]:
    """Write ``data`` under ``folder`` without clobbering; returns (path, newly written)."""
    folder.mkdir(parents=True, exist_ok=True)
    stem, suffix = os.path.splitext(file_name)
    for n in range(1, 1000):
        target = folder / (file_name if n == 1 else f"{stem} ({n}){suffix}")
        if not target.exists():
            with open(target, "xb") as handle:
                handle.write(data)
            os.utime(target, (mtime, mtime))
            return target, True
        if target.read_bytes() == data:
            return target, False
    raise CourseError(f"too many different files named {file_name} in {folder}")


def collect(course: Course, source: Path, lesson: str, pattern: str = "auto") -> Collected:
    """Copy every submission in ``source`` (zip or folder) into ``course`` for ``lesson``."""
    patterns = compile_pattern(pattern)
    if source.is_dir():
        entries = folder_entries(source)
    elif source.is_file():
        entries = zip_entries(source)
    else:
        raise CourseError(f"no zip file or folder at {source}")
    report, rows = Collected(), []
    for entry in entries:
        if JUNK.search(entry.path):
            continue
        match = identify(entry.path, patterns)
        if match is None:
            report.skipped.append(f"{entry.path}: no student id in the name (see --id-pattern)")
            continue
        if entry.size > MAX_FILE_BYTES:
            report.skipped.append(f"{entry.path}: {entry.size / 2**20:.0f} MiB, larger than a notebook should be")
            continue
        try:
            data = entry.read()
        except (zipfile.BadZipFile, OSError, EOFError) as error:
            report.skipped.append(f"{entry.path}: unreadable in the archive ({error})")
            continue
        groups = match.groupdict()
        student = safe_id(groups["student"])
        file_name = safe_id(groups.get("file") or entry.path.rsplit("/", 1)[-1]) or "submission"
        target, written = store(data, course.submitted / student / lesson, file_name, entry.mtime)
        if not written:
            report.unchanged.append(entry.path)
            continue
        row = {"collected_at": dt.datetime.now().isoformat(timespec="seconds"), "source": str(source),
               "entry": entry.path, "student": student, "name": groups.get("name") or "", "lesson": lesson,
               "stored_as": target.relative_to(course.root).as_posix(), "bytes": len(data),
               "sha256": hashlib.sha256(data).hexdigest()}
        rows.append(row)
        report.stored.append(row)
    append_log(course.collected_log, rows)
    if not report.stored and not report.unchanged:
        raise CourseError(f"nothing collected from {source}: no file name matched --id-pattern {pattern}")
    return report


def append_log(path: Path, rows: list[dict]) -> None:
    new = not path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=LOG_FIELDS)
        if new:
            writer.writeheader()
        writer.writerows(rows)


def student_names(course: Course) -> dict[str, str]:
    """{student id: name} from collected.csv (Canvas and Moodle put a name in the file name)."""
    if not course.collected_log.exists():
        return {}
    with open(course.collected_log, newline="") as handle:
        return {row["student"]: row["name"] for row in csv.DictReader(handle) if row.get("name")}
