"""The named mistakes: failing answers grouped by the message of the check they failed, values set aside.

A course whose visible tests name each realistic mistake ("take the min ..., not the max") already says,
for every failing answer, which mistake it made: the message its first failing visible check raised. Two
students with the same mistake get the same message with different values in it ("got [0.8, 0.8, ...]",
"at index 2"), so messages are grouped by their text with every list, dict, number and address set aside
(``message_key``), and each group is named by what its members' messages share: a number all of them
show stays, one that differs becomes "…" (``group_failures``). A hidden check's failure reaches the graded
notebook as "a hidden test failed: ..." with its values already elided by the grader (``grading.hidden``),
and groups the same way.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

from ..grading.hidden import ELIDED, INNER_BRACKETS, NUMBER
from ..text import printable

MAX_MESSAGE_CHARS = 2_000   # of a message read (the grader caps them at this already)
MAX_LABEL_CHARS = 600       # of a mistake's name on the page (a course's hint is at most this long)
ADDRESS = re.compile(r"\b0x[0-9a-fA-F]+\b")
ELISIONS = re.compile(f"{ELIDED}(?:[\\s,]*{ELIDED})+")


def shown_message(message: str) -> str:
    """A failure message on one line, its lists, dicts and addresses elided, control and bidirectional
    characters shown as escapes (``text.printable``: a message cannot reorder what the page shows)."""
    text = printable(" ".join(str(message)[:MAX_MESSAGE_CHARS].split()), MAX_MESSAGE_CHARS)
    previous = None
    while previous != text:
        previous, text = text, INNER_BRACKETS.sub(ELIDED, text)
    return ELISIONS.sub(ELIDED, ADDRESS.sub(ELIDED, text))


def message_key(message: str) -> str:
    """What two messages of the same mistake have in common: the message without its values."""
    return NUMBER.sub("#", shown_message(message))


@dataclass
class Mistake:
    label: str            # the message its students share (values that differ elided)
    students: list[str]


def _merged(messages: list[str]) -> str:
    """One text for messages that differ only in their numbers: a number they all show stays."""
    skeleton = NUMBER.split(messages[0])
    numbers = [NUMBER.findall(m) for m in messages]
    parts = [skeleton[0]]
    for position, after in enumerate(skeleton[1:]):
        values = {n[position] for n in numbers}
        parts += [values.pop() if len(values) == 1 else ELIDED, after]
    text = ELISIONS.sub(ELIDED, "".join(parts))
    return text if len(text) <= MAX_LABEL_CHARS else text[: MAX_LABEL_CHARS - 1] + ELIDED


def group_failures(failures: Iterable[tuple[str, str]]) -> list[Mistake]:
    """(student, message) pairs grouped into mistakes, the most common first."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for student, message in failures:
        shown = shown_message(message)
        groups.setdefault(NUMBER.sub("#", shown), []).append((student, shown))
    mistakes = [Mistake(_merged([shown for _, shown in members]), sorted(student for student, _ in members))
                for members in groups.values()]
    return sorted(mistakes, key=lambda m: (-len(m.students), m.label))
