"""Lesson 03's tests accept the reference answers and reject the wrong answers students really write.

The answers are data, in tests/answers/03-clipped-surrogate.toml; tests/exercise_checks.py runs the checks.
"""
from __future__ import annotations

from exercise_checks import LessonExerciseChecks

LESSON = "03-clipped-surrogate"


class TestExercises(LessonExerciseChecks, lesson=LESSON):
    """Lesson 03's graded exercises against the lesson's own test cells."""
