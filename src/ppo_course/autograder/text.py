"""Text a submission controls, made safe for where the grader puts it: a spreadsheet cell, a terminal line.

Student ids, names, file names and messages travel from an LMS download into the CSV files an
instructor opens in a spreadsheet, and into the lines ``collect`` and ``grade`` print. A cell that
starts with ``=`` is a formula to a spreadsheet (``=HYPERLINK(...)`` runs when it is clicked), and a
name holding ANSI escape codes repaints the instructor's terminal. So:

* every CSV the autograder writes goes through ``write_csv``, which applies OWASP's rule for CSV
  injection to each cell: a cell beginning with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return
  (or their full-width forms, which some spreadsheets also read as formulas) is prefixed with a single
  quote, so it is shown as text; a plain number (``-3``, ``+2.5``) is left as it is;
* every line printed to a terminal passes through ``printable``: control characters, escape codes and
  bidirectional overrides are shown as ``\\xNN``-style escapes, and the line is capped in length.
"""
from __future__ import annotations

import csv
import re
import unicodedata
from pathlib import Path
from typing import Iterable

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")
PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
MAX_SHOWN = 300   # characters of one student-controlled piece of text on a terminal line


def spreadsheet_cell(value) -> str:
    """``value`` as a CSV cell no spreadsheet evaluates (a plain number stays a number)."""
    text = "" if value is None else str(value)
    text = text.encode("utf-8", "replace").decode("utf-8")   # a file name's undecodable bytes
    if text.startswith(FORMULA_STARTS) and not PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def from_spreadsheet_cell(text: str) -> str:
    """A cell as ``spreadsheet_cell`` wrote it, back as the text it was (its protecting quote removed)."""
    return text[1:] if text.startswith("'") and text[1:].startswith(FORMULA_STARTS) else text


def read_csv(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV the autograder wrote (``write_csv``), each cell as the text it stands for."""
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        return [{from_spreadsheet_cell(k or ""): from_spreadsheet_cell(v or "") for k, v in row.items()
                 if isinstance(v, str)} for row in csv.DictReader(handle)]


def write_csv(path: Path, header: list[str], rows: Iterable[list], append: bool = False) -> None:
    """Write (or append) rows, every cell made safe; the header is written when the file is new."""
    new = not append or not path.exists() or path.stat().st_size == 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a" if append else "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        if new:
            writer.writerow([spreadsheet_cell(c) for c in header])
        for row in rows:
            writer.writerow([spreadsheet_cell(c) for c in row])


def _escaped(char: str) -> str:
    if unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
        code = ord(char)
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
    return char


def printable(text, limit: int = MAX_SHOWN) -> str:
    """``text`` safe to print on a terminal line: no control, format or bidi characters, at most ``limit``."""
    text = "".join(_escaped(c) for c in str(text).encode("utf-8", "surrogateescape").decode("utf-8", "replace"))
    return text if len(text) <= limit else text[: limit - 1] + "…"
