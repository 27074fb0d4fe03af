"""Lesson 01's tests accept the reference answers and reject the wrong answers students really write.

The answers are data, in tests/answers/01-importance-sampling.toml; tests/exercise_checks.py runs the checks.
"""
from __future__ import annotations

from exercise_checks import LessonExerciseChecks

LESSON = "01-importance-sampling"


class TestExercises(LessonExerciseChecks, lesson=LESSON):
    """Lesson 01's graded exercises against the lesson's own test cells."""
