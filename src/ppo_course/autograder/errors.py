"""The two kinds of failure the autograder reports: the instructor's input, and one submission's end."""
from __future__ import annotations


class CourseError(Exception):
    """A problem with the instructor's input (a command line, a course folder): one line, exit status 2."""


class EndsWithStatus:
    """Mixed into the errors that end one submission's grading: ``status`` is the short word the
    summary and the gradebook CSV show ('crashed', 'timeout', 'unreadable', ...)."""

    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status = status
