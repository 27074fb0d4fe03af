"""Lesson 05's tests accept the reference answers (and honest variants) and reject the wrong answers
students really write.

The answers are data, in tests/answers/05-ppo-for-rlhf.toml; tests/exercise_checks.py runs the checks.
"""
from __future__ import annotations

import pytest

from conftest import SOLUTIONS
from exercise_checks import LessonExerciseChecks

LESSON = "05-ppo-for-rlhf"


@pytest.fixture(autouse=True)
def in_lesson_folder(monkeypatch):
    """The notebook reads its beta sweep from its own folder, as it does for a learner."""
    monkeypatch.chdir(SOLUTIONS / LESSON)


class TestExercises(LessonExerciseChecks, lesson=LESSON):
    """Lesson 05's graded exercises against the lesson's own test cells."""
