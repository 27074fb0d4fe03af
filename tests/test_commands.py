"""Commands fail with one clear line and a non-zero exit on bad input, never a traceback."""
from __future__ import annotations

import subprocess
import sys

from conftest import REPO


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=120)


def test_course_script_rejects_an_unknown_command():
    result = run("bash", "course.sh", "frobnicate")
    assert result.returncode == 2, f"course.sh must exit 2 on an unknown command: {result.stderr}"
    assert result.stderr.strip() == "course.sh: unknown command 'frobnicate' (use: lab, test, site, instructor, help)"


def test_course_script_help_names_both_commands():
    result = run("bash", "course.sh", "help")
    assert result.returncode == 0 and "lab" in result.stdout and "test" in result.stdout, (
        f"`course.sh help` must exit 0 and name the lab and test commands:\n{result.stdout}{result.stderr}")


def test_release_rejects_an_unknown_lesson(tmp_path):
    result = run(sys.executable, "-m", "ppo_course.autograder", "release", "99", "--dest", str(tmp_path))
    assert result.returncode == 2, f"releasing an unknown lesson must exit 2: {result.stderr}"
    assert result.stderr.startswith("error: unknown assignment '99'") and "Traceback" not in result.stderr, (
        f"the error must be one line naming the unknown lesson, not a traceback:\n{result.stderr}")
    assert not any(tmp_path.iterdir()), "a failed release must not write anything"


def test_release_rejects_a_missing_source_folder(tmp_path):
    result = run(sys.executable, "-m", "ppo_course.autograder", "release", "--source", str(tmp_path / "nope"))
    assert result.returncode == 2 and "no course source folder" in result.stderr and "Traceback" not in result.stderr, (
        f"a missing --source must exit 2 with one line saying so, not a traceback ({result.returncode}):\n"
        f"{result.stderr}")
