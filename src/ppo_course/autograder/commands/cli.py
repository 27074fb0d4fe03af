"""``python -m ppo_course.autograder`` (also ``ppo-autograder``): the instructor's commands, for any nbgrader course.

    release   SOURCE/ -> the student notebooks (this course: solutions/ -> lessons/)
    collect   an LMS zip or a folder of folders -> COURSE/submitted/<student>/<assignment>/
    grade     autograde every submission, in parallel, each in a fresh sandboxed kernel under limits
    feedback  COURSE/feedback/<student>/<assignment>/<notebook>.html, hidden tests removed
    manual    COURSE/manual/<assignment>.html and .csv: the cells a person grades, and their points
    export    COURSE/gradebook.csv, one row per student and one column per test cell
    report    COURSE/report/report.html (+ .json, .csv): what the class got wrong, statuses, similar submissions

``--source`` names the course (a folder of nbgrader source assignments; default: this repository's
solutions/). Errors in what the instructor typed are one line on stderr and exit status 2.
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import fields
from pathlib import Path

from ...commandline import OneLineErrorParser, add_config_options
from ..errors import CourseError
from ..grading.job import Limits
from .export import FORMATS
from .folder import safe_id
from .source import LESSONS_DIR, SOLUTIONS_DIR, resolve


def positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
        return value
    return parse


def add_course(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--course", type=Path, required=True, metavar="DIR",
                        help="the course directory (submitted/, autograded/, feedback/, gradebook.csv)")


def add_source(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", type=Path, default=SOLUTIONS_DIR, metavar="SOURCE",
                        help="the course: a folder of nbgrader source assignments, with their hidden tests "
                             "(default: %(default)s)")


def add_assignments(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument("assignments", nargs="*", metavar="ASSIGNMENT",
                        help=f"by folder name, or a lesson's number (03) (default: {default})")
    add_source(parser)


def add_collect(commands) -> None:
    collect = commands.add_parser(
        "collect", help="lay out an LMS download (zip, or a folder of folders) for grading",
        description="Copy every submission, byte for byte, to COURSE/submitted/<student>/<assignment>/ and log it "
                    "(with its sha256) in COURSE/collected.csv. Never overwrites: a different file with the same "
                    "name is kept beside the first. Only regular files are read (links are never followed); "
                    "files without a student id, or over a student's limits, are listed and skipped.")
    collect.add_argument("download", type=Path, metavar="ZIP_OR_FOLDER",
                         help="the LMS zip, or a folder of student folders")
    add_course(collect)
    collect.add_argument("--lesson", "--assignment", dest="assignment", required=True, metavar="ASSIGNMENT",
                         help="the assignment these are submissions of (folder name, or a lesson's number)")
    add_source(collect)
    collect.add_argument("--id-pattern", default="auto", metavar="PATTERN",
                         help="how to find the student id in each file's path: canvas "
                              "(name_12345_67890_file.ipynb, flat), moodle "
                              "(Full Name_12345_assignsubmission_file_/file.ipynb, or flat), "
                              "folders (student/file.ipynb), auto (one of those three, chosen for the whole "
                              "download from its top-level names; default), or a regular expression with a "
                              "(?P<student>...) group and optional (?P<name>...), (?P<file>...). The id must come "
                              "from the top-level name (the file's, or its top folder's)")


def add_grade(commands) -> None:
    grade = commands.add_parser(
        "grade", help="autograde every collected submission, in parallel",
        description="Autograde with nbgrader. Each submission is rebuilt from the released notebooks plus the "
                    "learner's answers (so the course's own tests always run), then graded with a fresh kernel in "
                    "an OS sandbox (bubblewrap: no network, no view of the course or other students), the tests "
                    "running outside it in the grader where they can (the rest in the kernel, as stock nbgrader "
                    "runs them), under a per-cell and a per-submission time limit and memory and process limits; "
                    "an answer that kills or hangs the kernel is dropped (it scores 0) and the rest is graded "
                    "again. Results: COURSE/autograded/<student>/<assignment>/result.json. Submissions unchanged "
                    "since their last grading are not regraded unless --force.")
    add_course(grade)
    add_assignments(grade, "every assignment under COURSE/submitted")
    grade.add_argument("--jobs", type=positive(int), default=None,
                       help=f"submissions graded at once on this machine (default: the number of cores, "
                            f"{os.cpu_count() or 1})")
    grade.add_argument("--dask", metavar="ADDRESS",
                       help="grade on a Dask cluster instead: its scheduler's address (tcp://host:8786; default: "
                            "$DASK_SCHEDULER_ADDRESS unless --jobs is given), or local:N for a cluster of N worker "
                            "processes on this machine. Needs the cluster extra: pip install 'ppo-course[cluster]'")
    metavars = {"cell_timeout": "SECONDS", "timeout": "SECONDS", "memory_gb": "GB", "max_processes": "N",
                "scratch_mb": "MB"}
    add_config_options(grade, Limits, special={f.name: {"type": positive(type(f.default)), "metavar": metavars[f.name]}
                                               for f in fields(Limits) if f.name in metavars})
    grade.add_argument("--student", action="append", metavar="ID", help="grade only this student (repeatable)")
    grade.add_argument("--force", action="store_true", help="regrade submissions graded before")
    grade.add_argument("--no-progress", action="store_true", help="no progress bar")
    grade.add_argument("--release-cache", type=Path, metavar="DIR",
                       help="where the assignments' releases (with their hidden tests) are kept between runs "
                            "(default: COURSE/.grading-cache)")


def add_report(commands) -> None:
    report = commands.add_parser(
        "report", help="the class report: the mistakes the class made, statuses, grading time, similar submissions",
        description="Write COURSE/report/report.html (one page, readable offline), report.json and CSV files from "
                    "the graded results: per exercise the share of full marks, partial, zero and no answer; per "
                    "test cell the pass rate; the named mistakes (the message of the first failing visible check) "
                    "with the students behind each; scores, statuses and grading time; and pairs of students whose "
                    "answers share uncommon code, side by side.")
    add_course(report)
    add_assignments(report, "every graded assignment")
    report.add_argument("--output", type=Path, metavar="DIR", help="where to write (default: COURSE/report)")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(prog="python -m ppo_course.autograder",
                                description="Instructor tools for any nbgrader course (this one's lessons by "
                                            "default): release -> collect -> grade -> feedback -> manual -> export.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=OneLineErrorParser)

    release = commands.add_parser(
        "release", help="generate the student notebooks (lessons/) from the source notebooks (solutions/)",
        description="Generate student notebooks with nbgrader: solutions become stubs, hidden tests are removed. "
                    "Says, for each notebook, which test cells run in the grader and which in the learner's kernel.")
    add_assignments(release, "all")
    release.add_argument("--dest", type=Path, default=LESSONS_DIR, help="where to write (default: %(default)s)")

    add_collect(commands)
    add_grade(commands)
    add_report(commands)

    feedback = commands.add_parser(
        "feedback", help="write per-student HTML feedback (hidden tests removed)",
        description="Render COURSE/feedback/<student>/<assignment>/<notebook>.html from the graded notebooks, with "
                    "hidden tests and tracebacks removed; a submission that could not be graded gets a page "
                    "saying why.")
    add_course(feedback)
    feedback.add_argument("assignments", nargs="*", metavar="ASSIGNMENT", help="by folder name (default: all graded)")
    feedback.add_argument("--jobs", type=positive(int), default=os.cpu_count() or 1, help="pages rendered at once")

    manual = commands.add_parser(
        "manual", help="the cells a person grades: a page of every student's answers, and a sheet for the points",
        description="Write COURSE/manual/<assignment>.html (each manually graded cell's prompt and every student's "
                    "answer) and COURSE/manual/<assignment>.csv (one row per student and cell: fill in points, "
                    "then run export). Points already given are kept.")
    add_course(manual)
    add_assignments(manual, "every graded assignment with manually graded cells")

    export = commands.add_parser(
        "export", help="write the grades as a CSV: the gradebook, or Canvas's or Moodle's grade-import file",
        description="Write the grades as CSV. gradebook (default): student_id, name, one column per autograded test "
                    "cell, assignment totals (with the points given by hand), total, status and comment. canvas: "
                    "Canvas's gradebook import (Student, ID, SIS User ID, SIS Login ID, Section, one column per "
                    "assignment, a Points Possible row). moodle: Moodle's Import grades from CSV (an identifier "
                    "column and one column per assignment). Students an LMS file cannot identify are named on "
                    "stderr and left out.")
    add_course(export)
    add_assignments(export, "every graded assignment")
    export.add_argument("--format", choices=FORMATS, default="gradebook",
                        help="gradebook (default), canvas or moodle")
    export.add_argument("--output", type=Path,
                        help="where to write (default: COURSE/gradebook.csv, canvas-grades.csv or moodle-grades.csv)")
    export.add_argument("--roster", type=Path, metavar="CSV",
                        help="the LMS's own gradebook export (Canvas: Grades > Export; Moodle: Export > Plain text "
                             "file), to fill in each student's LMS identity (needed for Moodle downloads, whose "
                             "folder numbers Moodle's grade import cannot match)")
    export.add_argument("--lms-assignment", action="append", default=[], metavar="ASSIGNMENT=ID",
                        help="the LMS's id of an assignment, e.g. 03=123456 (Canvas: the number in the "
                             "assignment's address, .../assignments/123456); repeatable")
    return parser


def run_release(args: argparse.Namespace) -> int:
    from .release import release, where_tests_run

    for assignment in release(args.assignments, source=args.source, dest=args.dest):
        print(f"released {assignment} -> {args.dest / assignment}")
        for line in where_tests_run(assignment, args.source):
            print(f"  {line}")
    return 0


MAX_LISTED_SKIPS = 40   # skipped files listed on the terminal; collected.csv has every one


def run_collect(args: argparse.Namespace) -> int:
    from .collect import collect
    from .folder import open_course

    assignment, known = collected_assignment(args.assignment, args.source)
    course = open_course(args.course, must_exist=False)
    report = collect(course, args.download, assignment, args.id_pattern)
    students = {row["student"] for row in report.stored}
    if not known:
        print(f"note: {assignment} is not an assignment of {args.source}; grade it with --source naming its course")
    print(f"layout: {report.layout}")
    print(f"collected {len(report.stored)} file(s) from {len(students)} student(s) into {course.submitted}"
          + (f"; {len(report.unchanged)} already there" if report.unchanged else "")
          + (f"; {len(report.skipped)} skipped" if report.skipped else ""))
    for line in report.notes:
        print(f"  note: {line}")
    for line in report.skipped[:MAX_LISTED_SKIPS]:
        print(f"  skipped {line}")
    if len(report.skipped) > MAX_LISTED_SKIPS:
        print(f"  ... and {len(report.skipped) - MAX_LISTED_SKIPS} more skipped: see {course.collected_log}")
    return 0


def collected_assignment(name: str, source: Path) -> tuple[str, bool]:
    """The assignment a download is for: one of the course's (by folder name or number), else the name as given
    (collect needs no course source: the name becomes the folder submissions are filed under)."""
    try:
        return resolve([name], source)[0], True
    except CourseError:
        if not name or safe_id(name) != name or name.isdigit():
            raise
        return name, False


def graded_assignments(course, requested: list[str], source: Path) -> list[str]:
    """The assignments to work on: those asked for, else those with submissions in the course."""
    if requested:
        return resolve(requested, source)
    known = set(resolve(None, source))
    found = [assignment for assignment in course.submitted_lessons() if assignment in known]
    if not found:
        raise CourseError(f"no submissions of an assignment of {source} under {course.submitted} (run `collect` first)")
    return found


def run_grade(args: argparse.Namespace) -> int:
    from .client import grade, summary
    from .cluster import default_address, parse_local, require_distributed
    from .folder import open_course
    from .release import where_tests_run

    if args.dask and args.jobs:
        raise CourseError("--jobs is for grading on this machine and --dask for a cluster: give one of them")
    dask = default_address(args.dask, jobs_given=args.jobs is not None)
    if dask is not None:
        parse_local(dask)
        require_distributed()
    course = open_course(args.course)
    assignments = graded_assignments(course, args.assignments, args.source)
    for assignment in assignments:
        for line in where_tests_run(assignment, args.source):
            if "learner's kernel" in line:
                print(f"note: {line}", file=sys.stderr)
    limits = Limits(**{f.name: getattr(args, f.name) for f in fields(Limits)})
    records = grade(course, assignments, limits, args.jobs or os.cpu_count() or 1, source=args.source,
                    students=args.student, force=args.force, progress=False if args.no_progress else None, dask=dask,
                    release_cache=args.release_cache)
    print(summary(records))
    return 0


def graded(course, requested: list[str]) -> list[str]:
    found = sorted({p.parent.name for p in course.autograded.glob("*/*/result.json")})
    if not requested:
        return found
    chosen = []
    for name in requested:
        matches = [a for a in found if a == name or (name.isdigit() and a.split("-", 1)[0] == name.zfill(2))]
        if not matches:
            raise CourseError(f"nothing graded for '{name}' under {course.autograded} (graded: {', '.join(found)})")
        chosen += [m for m in matches if m not in chosen]
    return chosen


def run_feedback(args: argparse.Namespace) -> int:
    from ..text import printable
    from .feedback import feedback
    from .folder import open_course

    course = open_course(args.course)
    rows = feedback(course, graded(course, args.assignments), args.jobs)
    # (a row holds the record's status, e.g. "error" for a grading that failed, whose page says so, or
    # "error: why" when no page could be written, or "fallback: why" when only the scores page was)
    failures = [row for row in rows if row[2].startswith(("error: ", "fallback: "))]
    print(f"wrote the feedback of {sum(not row[2].startswith('error: ') for row in rows)} submission(s) under "
          f"{course.feedback}" + (f"; {len(failures)} need a look (below)" if failures else ""))
    for assignment, student, message in failures:   # one student's problem never fails the class's command
        kind = "scores only" if message.startswith("fallback") else "NOT WRITTEN"
        print(f"  {kind:11} {assignment} {student}: {printable(message.split(': ', 1)[1], 300)}", file=sys.stderr)
    return 0


def run_manual(args: argparse.Namespace) -> int:
    from ..grading.contract import read_contract
    from .folder import open_course
    from .manual import prepare_manual

    course = open_course(args.course)
    assignments = resolve(args.assignments, args.source) if args.assignments else [
        a for a in graded(course, []) if (args.source / a).is_dir() and read_contract(args.source / a).manual]
    if not assignments:
        raise CourseError("no graded assignment has a manually graded cell")
    for assignment in assignments:
        page, sheet, waiting = prepare_manual(course, assignment, args.source)
        print(f"{assignment}: answers in {page}; points go in {sheet} ({waiting} row(s) still to grade)")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from ..text import printable
    from .export import DEFAULT_OUTPUT, export
    from .folder import open_course

    course = open_course(args.course)
    assignments = resolve(args.assignments, args.source) if args.assignments else graded(course, [])
    if not assignments:
        raise CourseError(f"nothing graded yet under {course.autograded} (run `grade` first)")
    lms_ids = {}
    for given in args.lms_assignment:
        name, _, lms_id = given.partition("=")
        if not lms_id.strip().isdigit():
            raise CourseError(f"--lms-assignment '{given}' is not ASSIGNMENT=ID with a numeric ID (e.g. 03=123456)")
        lms_ids[resolve([name], args.source)[0]] = lms_id.strip()
    if args.roster is not None and not args.roster.is_file():
        raise CourseError(f"no roster file at {args.roster}")
    output = args.output or course.root / DEFAULT_OUTPUT[args.format]
    exported = export(course, assignments, args.source, output, args.format, args.roster, lms_ids)
    print(f"wrote {output} ({args.format}): {exported.rows} student(s), assignments {', '.join(assignments)}")
    for warning in exported.warnings:
        print(f"  note: {printable(warning, 600)}", file=sys.stderr)
    return 0


def run_report(args: argparse.Namespace) -> int:
    from .folder import open_course
    from .report import write_report

    course = open_course(args.course)
    assignments = resolve(args.assignments, args.source) if args.assignments else graded(course, [])
    written = write_report(course, assignments, args.source, args.output or course.root / "report")
    print(f"wrote {written[0]} (and {', '.join(p.name for p in written[1:])} beside it)")
    return 0


# The README's instructor set-up (course.sh builds .venv-instructor), and what it amounts to elsewhere.
INSTRUCTOR_SETUP = "./course.sh instructor (or: pip install -e '.[instructor]')"
INTERRUPTED = {
    "collect": "the files collected so far are stored and in collected.csv; run the same command again to continue",
    "grade": "submissions graded so far are saved; run the same command again to finish",
}
COMMANDS = {"release": run_release, "collect": run_collect, "grade": run_grade, "feedback": run_feedback,
            "manual": run_manual, "export": run_export, "report": run_report}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except CourseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"interrupted: {INTERRUPTED.get(args.command, 'nothing half-written')}", file=sys.stderr)
        return 130
    except ModuleNotFoundError as error:
        if error.name and error.name.split(".")[0] == "nbgrader":
            print(f"error: nbgrader is not installed in this Python ({sys.executable}); set up the instructor "
                  f"environment with {INSTRUCTOR_SETUP}", file=sys.stderr)
            return 2
        raise
