"""nbgrader configuration for instructors who run stock nbgrader commands in a course directory.

The course's own commands (``python -m ppo_course.autograder ...``) do not need this file. To use
``nbgrader generate_assignment`` / ``autograde`` / ``generate_feedback`` / formgrader directly, copy this
file into a course directory (or point ``--config`` at it) and put the lessons' source notebooks
under ``source/``:

    mkdir mycourse && cd mycourse
    cp /path/to/ppo-course/autograder/nbgrader_config.py .
    cp -r /path/to/ppo-course/solutions source
    nbgrader generate_assignment 03-clipped-surrogate

It is the same configuration the course's commands use (ppo_course.autograder.grading.pipeline.grading_config):
solution stubs, the gradebook in this folder, a 30 s per-cell limit, test cells that score on their
assertions even when a warning reached stderr, and feedback without hidden tests.
Stock nbgrader still trusts the submitted file (a deleted or edited test cell stays deleted or edited)
and runs the tests in the student's own kernel, without a sandbox; the course's `grade` command
rebuilds each submission from the contract, runs the answers in a sandboxed kernel and the tests in
the grader instead.
"""
from pathlib import Path

from ppo_course.autograder.grading.pipeline import grading_config

c = get_config()  # noqa: F821 - provided by nbgrader when it loads this file
c.merge(grading_config(Path.cwd()))
