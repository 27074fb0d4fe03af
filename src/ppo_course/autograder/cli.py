"""``python -m ppo_course.autograder`` (also ``ppo-autograder``): the instructor's commands.

    release   solutions/ -> lessons/ (the student notebooks)
    collect   an LMS zip or a folder of folders -> COURSE/submitted/<student>/<lesson>/
    grade     autograde every submission, in parallel, each in a fresh kernel under time/memory limits
    feedback  COURSE/feedback/<student>/<lesson>/<lesson>.html, hidden tests removed
    export    COURSE/gradebook.csv, one row per student and one column per exercise

Errors in what the instructor typed are one line on stderr and exit status 2.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..commandline import OneLineErrorParser
from .paths import LESSONS_DIR, SOLUTIONS_DIR, CourseError, resolve_lessons


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


def add_lessons(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument("lessons", nargs="*", metavar="LESSON", help=f"by number or folder name (default: {default})")
    parser.add_argument("--source", type=Path, default=SOLUTIONS_DIR,
                        help="the nbgrader source notebooks, with hidden tests (default: %(default)s)")


def add_collect(commands) -> None:
    collect = commands.add_parser(
        "collect", help="lay out an LMS download (zip, or a folder of folders) for grading",
        description="Copy every submission, byte for byte, to COURSE/submitted/<student>/<lesson>/ and log it "
                    "(with its sha256) in COURSE/collected.csv. Never overwrites: a different file with the same "
                    "name is kept beside the first. Only regular files are read (links are never followed); "
                    "files without a student id, or over a student's limits, are listed and skipped.")
    collect.add_argument("source", type=Path, metavar="ZIP_OR_FOLDER",
                         help="the LMS zip, or a folder of student folders")
    add_course(collect)
    collect.add_argument("--lesson", required=True, help="the lesson these are submissions of (number or folder name)")
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
        description="Autograde with nbgrader. Each submission is rebuilt from the released notebook plus the "
                    "learner's answers (so the course's own tests always run), then graded with a fresh kernel in "
                    "an OS sandbox (bubblewrap: no network, no view of the course or other students), the tests "
                    "running outside it in the grader, under a per-cell and a per-submission time limit and "
                    "memory and process limits; an "
                    "answer that kills or hangs the kernel is dropped (it scores 0) and the rest is graded again. "
                    "Results: COURSE/autograded/<student>/<lesson>/result.json. Submissions unchanged since "
                    "their last grading are not regraded unless --force.")
    add_course(grade)
    add_lessons(grade, "every lesson under COURSE/submitted")
    grade.add_argument("--jobs", type=positive(int), default=None,
                       help=f"submissions graded at once on this machine (default: the number of cores, "
                            f"{os.cpu_count() or 1})")
    grade.add_argument("--dask", metavar="ADDRESS",
                       help="grade on a Dask cluster instead: its scheduler's address (tcp://host:8786; default: "
                            "$DASK_SCHEDULER_ADDRESS unless --jobs is given), or local:N for a cluster of N worker "
                            "processes on this machine. Needs the cluster extra: pip install 'ppo-course[cluster]'")
    grade.add_argument("--cell-timeout", type=positive(int), default=30, metavar="SECONDS",
                       help="a cell running longer is interrupted and fails (default: %(default)s)")
    grade.add_argument("--timeout", type=positive(int), default=300, metavar="SECONDS",
                       help="a submission running longer is killed and gets status timeout (default: %(default)s)")
    grade.add_argument("--memory-gb", type=positive(float), default=4.0, metavar="GB",
                       help="resident memory of each learner kernel, by cgroup; where no cgroup can be made, "
                            "the address space instead, and result.json says so (default: %(default)s)")
    grade.add_argument("--max-processes", type=positive(int), default=256, metavar="N",
                       help="processes and threads each learner kernel may have (default: %(default)s)")
    grade.add_argument("--scratch-mb", type=positive(int), default=512, metavar="MB",
                       help="size of the kernel's private writable home folder (default: %(default)s)")
    grade.add_argument("--no-sandbox", action="store_true",
                       help="run student code without the OS sandbox (no namespaces: it can read and write what "
                            "you can); tests still run outside it. Only for submissions you trust; the summary "
                            "and every result.json say so")
    grade.add_argument("--student", action="append", metavar="ID", help="grade only this student (repeatable)")
    grade.add_argument("--force", action="store_true", help="regrade submissions graded before")
    grade.add_argument("--no-progress", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(prog="python -m ppo_course.autograder",
                    description="Instructor tools for the PPO course, built on nbgrader: "
                                "release -> collect -> grade -> feedback -> export.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=OneLineErrorParser)

    release = commands.add_parser(
        "release", help="generate the student notebooks (lessons/) from the source notebooks (solutions/)",
        description="Generate student notebooks with nbgrader: solutions become stubs, hidden tests are removed.")
    release.add_argument("lessons", nargs="*", metavar="LESSON",
                         help="lessons to release, by number or folder name (default: all)")
    release.add_argument("--source", type=Path, default=SOLUTIONS_DIR, help="source notebooks (default: %(default)s)")
    release.add_argument("--dest", type=Path, default=LESSONS_DIR, help="where to write (default: %(default)s)")

    add_collect(commands)
    add_grade(commands)

    feedback = commands.add_parser(
        "feedback", help="write per-student HTML feedback (hidden tests removed)",
        description="Render COURSE/feedback/<student>/<lesson>/<lesson>.html from the graded notebooks, with "
                    "hidden tests and tracebacks removed; a submission that could not be graded gets a page "
                    "saying why.")
    add_course(feedback)
    feedback.add_argument("lessons", nargs="*", metavar="LESSON", help="by number or folder name (default: all graded)")
    feedback.add_argument("--jobs", type=positive(int), default=os.cpu_count() or 1, help="pages rendered at once")

    export = commands.add_parser(
        "export", help="write the gradebook CSV (one row per student, one column per exercise)",
        description="Write a CSV for the LMS: student_id, name, one column per graded exercise, lesson totals, "
                    "total, status and comment.")
    add_course(export)
    add_lessons(export, "every graded lesson")
    export.add_argument("--output", type=Path, help="where to write (default: COURSE/gradebook.csv)")
    return parser


def run_release(args: argparse.Namespace) -> int:
    from .release import release

    for lesson in release(args.lessons, source=args.source, dest=args.dest):
        print(f"released {lesson} -> {args.dest / lesson}")
    return 0


MAX_LISTED_SKIPS = 40   # skipped files listed on the terminal; collected.csv has every one


def run_collect(args: argparse.Namespace) -> int:
    from .collect import collect
    from .course import open_course

    lesson = resolve_lessons([args.lesson])[0]
    course = open_course(args.course, must_exist=False)
    report = collect(course, args.source, lesson, args.id_pattern)
    students = {row["student"] for row in report.stored}
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


def graded_lessons(course, requested: list[str], source: Path) -> list[str]:
    """The lessons to work on: those asked for, else those with submissions in the course."""
    if requested:
        return resolve_lessons(requested, source)
    known = set(resolve_lessons(None, source)) if source.is_dir() else set()
    found = [lesson for lesson in course.submitted_lessons() if lesson in known]
    if not found:
        raise CourseError(f"no submissions of a known lesson under {course.submitted} (run `collect` first)")
    return found


def run_grade(args: argparse.Namespace) -> int:
    from .cluster import default_address, parse_local, require_distributed
    from .course import open_course
    from .grade import Limits, grade, summary

    if args.dask and args.jobs:
        raise CourseError("--jobs is for grading on this machine and --dask for a cluster: give one of them")
    dask = default_address(args.dask, jobs_given=args.jobs is not None)
    if dask is not None:
        parse_local(dask)
        require_distributed()
    course = open_course(args.course)
    lessons = graded_lessons(course, args.lessons, args.source)
    limits = Limits(cell_timeout=args.cell_timeout, timeout=args.timeout, memory_gb=args.memory_gb,
                    max_pids=args.max_processes, scratch_mb=args.scratch_mb, sandbox=not args.no_sandbox)
    records = grade(course, lessons, limits, args.jobs or os.cpu_count() or 1, source=args.source,
                    students=args.student, force=args.force, progress=False if args.no_progress else None, dask=dask)
    print(summary(records))
    return 0


def run_feedback(args: argparse.Namespace) -> int:
    from .course import open_course
    from .feedback import feedback
    from .safe_text import printable

    course = open_course(args.course)
    lessons = resolve_lessons(args.lessons) if args.lessons else sorted(
        {p.parent.name for p in course.autograded.glob("*/*/result.json")})
    rows = feedback(course, lessons, args.jobs)
    failures = [row for row in rows if row[2].startswith(("error", "fallback"))]
    print(f"wrote {sum(not row[2].startswith('error') for row in rows)} feedback page(s) under {course.feedback}"
          + (f"; {len(failures)} need a look (below)" if failures else ""))
    for lesson, student, message in failures:   # one student's problem never fails the class's command
        kind = "scores only" if message.startswith("fallback") else "NOT WRITTEN"
        print(f"  {kind:11} {lesson} {student}: {printable(message.split(': ', 1)[1], 300)}", file=sys.stderr)
    return 0


def run_export(args: argparse.Namespace) -> int:
    from .course import open_course
    from .export import export

    course = open_course(args.course)
    lessons = resolve_lessons(args.lessons, args.source) if args.lessons else sorted(
        {p.parent.name for p in course.autograded.glob("*/*/result.json")})
    if not lessons:
        raise CourseError(f"nothing graded yet under {course.autograded} (run `grade` first)")
    output = args.output or course.gradebook_csv
    rows = export(course, lessons, args.source, output)
    print(f"wrote {output}: {rows} student(s), lessons {', '.join(lessons)}")
    return 0


INTERRUPTED = {
    "collect": "the files collected so far are stored and in collected.csv; run the same command again to continue",
    "grade": "submissions graded so far are saved; run the same command again to finish",
}
COMMANDS = {"release": run_release, "collect": run_collect, "grade": run_grade,
            "feedback": run_feedback, "export": run_export}


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
            print("error: nbgrader is not installed; install the instructor extra: "
                  "pip install 'ppo-course[instructor]'", file=sys.stderr)
            return 2
        raise
