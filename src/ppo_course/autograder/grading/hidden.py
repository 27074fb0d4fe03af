"""What a learner may see of a test cell whose hidden tests ran: never the hidden inputs or expected values.

nbgrader's hidden tests (between ``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS``) are worth
something only while they stay hidden: a learner who sees what a hidden check called their function
with, or expected back, can hand in a lookup table the next time. Feedback shows test failures, so:

* the visible form of every test cell (hidden blocks removed, as the learner's notebook has it) runs
  first, for all cells, before any hidden check has called the learner's code; what a learner reads
  of a visible test comes from that run, so nothing the learner's code saw in a hidden check can come
  back through a visible message (a function that records its hidden inputs and returns them on a
  later visible call gets nothing out);
* the full cells then run for the score; a failure inside a hidden block is shown as "a hidden test
  failed" with only the text the test's author wrote at the failing line (an assert's message, the
  string arguments of a check such as ``assert_close(got, want, "what", hint)``), every interpolated
  value and every number or list the visible notebook does not show replaced by "…"; an exception
  the learner's own code raised there is named by its type only.
"""
from __future__ import annotations

import ast
import re
import traceback

from ..syntax import parse_python

BEGIN, END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
HIDDEN_BLOCK = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS[^\n]*\n.*?^[ \t]*### END HIDDEN TESTS[^\n]*(\n|$)",
                          re.MULTILINE | re.DOTALL)
NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?(?![\w.])")
INNER_BRACKETS = re.compile(r"\[[^\[\]]*\]|\{[^{}]*\}")
ELIDED = "…"
MAX_MESSAGE_CHARS = 600


def has_hidden_tests(source: str) -> bool:
    return BEGIN in source


def visible_form(source: str) -> str:
    """The test cell as the learner's notebook shows it: hidden blocks removed (as nbgrader releases it)."""
    return HIDDEN_BLOCK.sub("", source)


def hidden_lines(source: str) -> set[int]:
    """The line numbers (1-based) inside hidden blocks, markers included."""
    lines, inside, found = source.splitlines(), False, set()
    for number, line in enumerate(lines, start=1):
        if BEGIN in line:
            inside = True
        if inside:
            found.add(number)
        if END in line:
            inside = False
    return found


def numbers_in(text: str) -> set[str]:
    return {float_key(n) for n in NUMBER.findall(text)}


def float_key(number: str) -> str:
    try:
        return repr(float(number.lstrip("+")))
    except ValueError:
        return number


def failing_line(error: BaseException, filename: str, hidden: set[int]) -> int | None:
    """The innermost line of the cell ``filename`` the error passed through, when any of its lines is hidden."""
    lines = [frame.lineno for frame in traceback.extract_tb(error.__traceback__) if frame.filename == filename]
    return lines[-1] if lines and any(n in hidden for n in lines) else None


def authored_text(source: str, line: int) -> str:
    """What the test's author wrote as the message of the check at ``line``, interpolations elided."""
    tree = parse_python(source)
    if tree is None:
        return ""
    statements = [n for n in ast.walk(tree) if isinstance(n, ast.stmt) and n.lineno <= line <= (n.end_lineno or 0)
                  and not isinstance(n, (ast.With, ast.For, ast.While, ast.If, ast.Try, ast.FunctionDef,
                                         ast.AsyncFunctionDef, ast.ClassDef, ast.AsyncWith, ast.AsyncFor))]
    if not statements:
        return ""
    statement = min(statements, key=lambda n: (n.end_lineno or n.lineno) - n.lineno)
    if isinstance(statement, ast.Assert):
        return _text(statement.msg) if statement.msg is not None else ""
    calls = [n for n in ast.walk(statement) if isinstance(n, ast.Call)]
    if not calls:
        return ""
    call = calls[0]   # the outermost call of the statement: the check
    parts = [_text(a) for a in [*call.args, *(k.value for k in call.keywords)] if _is_text(a)]
    return ". ".join(p.strip().rstrip(".") for p in parts if p.strip())


def _is_text(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    if isinstance(node, ast.JoinedStr):
        return True
    return isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add) and (_is_text(node.left) or
                                                                            _is_text(node.right))


def _text(node: ast.AST | None) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(_text(v) if isinstance(v, ast.Constant) else ELIDED for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _text(node.left) + _text(node.right)
    return ELIDED   # a variable, a call, a conditional: a value, not the author's words


def elided(text: str, visible_numbers: set[str]) -> str:
    """``text`` without lists, dicts and the numbers the visible notebook does not show."""
    previous = None
    while previous != text:
        previous, text = text, INNER_BRACKETS.sub(ELIDED, text)
    text = NUMBER.sub(lambda m: m.group(0) if float_key(m.group(0)) in visible_numbers else ELIDED, text)
    text = re.sub(f"{ELIDED}(?:\\s*{ELIDED})+", ELIDED, text).strip()
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 1] + ELIDED


def hidden_failure_message(error: BaseException, source: str, line: int, visible_numbers: set[str],
                           learner_errors: dict[str, type]) -> str:
    """What the learner reads when a hidden check failed: the author's words at that check, no values."""
    if getattr(error, "raised_by_learner", False):
        kind = type(error).__name__
        kind = kind if kind in learner_errors else "an exception"
        return f"a hidden test failed: your code raised {kind} (hidden tests do not show its message)"
    text = elided(authored_text(source, line), visible_numbers)
    return "a hidden test failed" + (f": {text}" if text.strip(ELIDED + " .") else "")
