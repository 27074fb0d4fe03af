"""Lesson 06's tests accept the reference answers and reject the Gaussian mistakes students really make.

The answers are data, in tests/answers/06-continuous-control.toml; tests/exercise_checks.py runs the checks.
"""
from __future__ import annotations

from exercise_checks import LessonExerciseChecks

LESSON = "06-continuous-control"


class TestExercises(LessonExerciseChecks, lesson=LESSON):
    """Lesson 06's graded exercises against the lesson's own test cells."""
