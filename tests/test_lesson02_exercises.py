"""Lesson 02's tests accept the reference answers and reject the wrong answers students really write.

The answers are data, in tests/answers/02-trpo.toml; tests/exercise_checks.py runs the checks.
"""
from __future__ import annotations

from exercise_checks import LessonExerciseChecks

LESSON = "02-trpo"


class TestExercises(LessonExerciseChecks, lesson=LESSON):
    """Lesson 02's graded exercises against the lesson's own test cells."""
