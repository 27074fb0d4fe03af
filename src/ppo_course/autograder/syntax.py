"""Python source read as syntax trees, one parse at a time in a process.

CPython 3.11's AST builder counts its recursion in state shared by the interpreter's threads, so two threads
that parse at once (the grade command's threads, a Dask worker's tasks) can fail one of the parses with
"SystemError: AST constructor recursion depth mismatch" (python/cpython#106905); a submission graded in a
thread then came out as an error. Every ``ast.parse`` in the autograder goes through ``parse``.
"""
from __future__ import annotations

import ast
import threading

_ONE_AT_A_TIME = threading.RLock()   # (re-entrant: a finalizer that runs during a parse may parse too)


def parse(source: str, filename: str = "<unknown>") -> ast.Module:
    """``ast.parse``, never at the same time as another thread's."""
    with _ONE_AT_A_TIME:
        return ast.parse(source, filename)


def parse_python(source: str) -> ast.Module | None:
    """A learner's code as a syntax tree, or None however it fails to parse (a syntax error, a null byte,
    nesting deeper than the parser takes)."""
    try:
        return parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
