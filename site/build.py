"""Build the course's website: ``./course.sh site`` runs this.

    python site/build.py                    # -> site/_build/html (open site/_build/html/index.html)
    python site/build.py --out /tmp/site    # -> /tmp/site/html
    python site/build.py --clean            # forget the executed notebooks and build from scratch

It stages the pages (site/pages.py) into OUT/source, then runs Sphinx with site/conf.py: MyST-NB executes
each lesson from ``solutions/`` in fast mode (PPO_COURSE_FAST=1) and keeps the results in OUT/.jupyter_cache,
so a rebuild after a prose change re-runs no notebook, one after a change to a lesson's code or data re-runs
that lesson, and one after a change to the package (src/ppo_course) re-runs them all.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

SITE = Path(__file__).resolve().parent
sys.path.insert(0, str(SITE))
import pages  # noqa: E402

DEFAULT_OUT = SITE / "_build"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="OUT",
                        help="build folder; the site lands in OUT/html (default site/_build)")
    parser.add_argument("--clean", action="store_true", help="delete OUT first, execution cache included")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors from Sphinx")
    args = parser.parse_args(argv)
    if args.out.exists() and not args.out.is_dir():
        parser.error(f"--out {args.out} is a file, not a folder")
    return args


def build(out: Path, clean: bool = False, quiet: bool = False) -> Path:
    """Build the site into ``out/html`` and return that folder; raise SystemExit if Sphinx fails."""
    from sphinx.cmd.build import build_main

    out = out.resolve()
    if clean and out.exists():
        shutil.rmtree(out)
    source = out / "source"
    for lesson in set(pages.lessons(released_only=False)) - set(pages.lessons()):
        print(f"site/build.py: {lesson.name} is left out until it is released (no {lesson.repo_path})")
    pages.stage(source)
    # The lessons run in fast mode, with this interpreter's kernel and packages.
    os.environ["PPO_COURSE_FAST"] = "1"
    os.environ["PPO_COURSE_REVEAL"] = "1"   # a reader of the website cannot type a guess: show the answers
    os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
    os.environ.pop("MPLBACKEND", None)  # the lessons choose their backend
    html = out / "html"
    # MyST-NB's execution cache is created here, before Sphinx's parallel readers start: each of them
    # created its database on first use, and two at once failed a clean build ("table settings already exists").
    from jupyter_cache.cache.db import create_db

    cache = out / ".jupyter_cache"
    cache.mkdir(parents=True, exist_ok=True)
    create_db(cache).dispose()
    argv = ["-b", "html", "-c", str(SITE), "-d", str(out / "doctrees"), "-j", "auto",
            "-D", f"nb_execution_cache_path={cache}", "--fail-on-warning", "--keep-going",
            *(["-q"] if quiet else []), str(source), str(html)]
    status = build_main(argv)
    if status != 0:
        raise SystemExit(f"site/build.py: Sphinx failed (exit {status}); see its messages above")
    return html


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    html = build(args.out, clean=args.clean, quiet=args.quiet)
    print(f"site/build.py: built in {time.perf_counter() - started:.0f} s; open {html / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
