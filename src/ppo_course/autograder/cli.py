"""``python -m ppo_course.autograder``: the instructor's commands."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .paths import LESSONS_DIR, SOLUTIONS_DIR, CourseError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ppo_course.autograder",
        description="Instructor tools for the PPO course, built on nbgrader.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    release = commands.add_parser(
        "release", help="generate the student notebooks (lessons/) from the source notebooks (solutions/)",
        description="Generate student notebooks with nbgrader: solutions become stubs, hidden tests are removed.",
    )
    release.add_argument("lessons", nargs="*", metavar="LESSON",
                         help="lessons to release, by number or folder name (default: all)")
    release.add_argument("--source", type=Path, default=SOLUTIONS_DIR, help="source notebooks (default: %(default)s)")
    release.add_argument("--dest", type=Path, default=LESSONS_DIR, help="where to write (default: %(default)s)")
    return parser


def run_release(args: argparse.Namespace) -> int:
    from .release import release

    for lesson in release(args.lessons, source=args.source, dest=args.dest):
        print(f"released {lesson} -> {args.dest / lesson}")
    return 0


COMMANDS = {"release": run_release}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except CourseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as error:
        if error.name and error.name.split(".")[0] == "nbgrader":
            print("error: nbgrader is not installed; install the instructor extra: pip install 'ppo-course[instructor]'",
                  file=sys.stderr)
            return 2
        raise
