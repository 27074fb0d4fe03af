"""The course package as student code sees it while it is graded: the lesson's references removed.

The student runtime ships the reference implementation of every exercise (the widgets and the later
lessons use them). While a lesson is graded, the sandbox mounts a copy of the package in which each
top-level function or class named like one of that lesson's exercises keeps its signature but
raises ``GRADING_STUB_MESSAGE``: an answer that delegates to ``ppo_course.clipping.clipped_surrogate``
fails, with a message the grader recognises and reports, and the copy holds no source or bytecode of
the reference to read instead. Everything else (earlier lessons' references, which later lessons
build on, plotting, the trainer) is unchanged.
"""
from __future__ import annotations

import ast
import compileall
import shutil
from pathlib import Path

import ppo_course

PACKAGE_DIR = Path(ppo_course.__file__).resolve().parent
GRADING_STUB_MESSAGE = "is the course's reference, which is not available while your work is graded"


def stubbed_source(source: str, names: set[str], module: str) -> tuple[str, list[str]]:
    """``source`` with the body of each top-level def/class in ``names`` replaced by a raise."""
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    found = []
    for node in sorted((n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                        and n.name in names), key=lambda n: n.lineno, reverse=True):
        first, last = node.body[0].lineno - 1, node.end_lineno
        indent = " " * (node.col_offset + 4)
        message = f"ppo_course.{module}.{node.name} {GRADING_STUB_MESSAGE}: write your own"
        body = f"{indent}raise RuntimeError({message!r})\n"
        if isinstance(node, ast.ClassDef):
            body = f"{indent}def __init__(self, *args, **kwargs):\n    {body}"
        if node.body[0].lineno == node.lineno:   # a one-line def: `def f(x): return x`
            header = lines[first][: node.body[0].col_offset].rstrip() + "\n"
            lines[first:last] = [header, body]
        else:
            lines[first:last] = [body]
        found.append(f"{module}.{node.name}")
    return "".join(lines), sorted(found)


def build_student_package(names: set[str], dest: Path, package_dir: Path = PACKAGE_DIR) -> list[str]:
    """Copy the package to ``dest`` with the references named ``names`` stubbed; returns what was stubbed.

    The copy is compiled (with the real package's path in its code objects), so the read-only
    sandbox imports it as fast as the original.
    """
    shutil.copytree(package_dir, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    stubbed = []
    for path in sorted(dest.rglob("*.py")):
        module = ".".join(path.relative_to(dest).with_suffix("").parts)
        source = path.read_text()
        new, found = stubbed_source(source, names, module)
        if found:
            path.write_text(new)
            stubbed += found
    compileall.compile_dir(str(dest), ddir=str(package_dir), quiet=2)
    return stubbed
