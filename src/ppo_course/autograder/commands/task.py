"""One submission on its way to a runner (here or on a cluster), with what only the client knows of it."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..grading.grade import Submission


@dataclass
class Task:
    """One submission to grade, with what only the client knows (where it lies, how it was picked)."""
    assignment: str
    submission: Submission
    files: list[str]                            # their paths in the course folder
    notes: list[str] = field(default_factory=list)
    review: list[str] = field(default_factory=list)   # why an instructor should look (several files at once)
