"""A course's own package as student code sees it while it is graded: the assignment's references removed.

A course may ship the reference implementation of its exercises in a package its notebooks import
(this repository's ``ppo_course``: the widgets and the later lessons use them); the course names it
in its ``autograder.toml``. While an assignment is graded, the sandbox mounts a copy of that package in
which each top-level function or class named like one of the assignment's exercises keeps its
signature but raises ``GRADING_STUB_MESSAGE``: an answer that delegates to
``ppo_course.clipping.clipped_surrogate`` fails, with a message the grader recognises and reports, and
the copy holds no source or bytecode of the reference to read instead. Everything else (earlier
lessons' references, which later lessons build on) is unchanged.
"""
from __future__ import annotations

import ast
import compileall
import shutil
from pathlib import Path

from ..syntax import parse

GRADING_STUB_MESSAGE = "is the course's reference, which is not available while your work is graded"


def stubbed_source(source: str, names: set[str], module: str) -> tuple[str, list[str]]:
    """``source`` with the body of each top-level def/class in ``names`` replaced by a raise."""
    tree = parse(source)
    lines = source.splitlines(keepends=True)
    found = []
    for node in sorted((n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                        and n.name in names), key=lambda n: n.lineno, reverse=True):
        first, last = node.body[0].lineno - 1, node.end_lineno
        indent = " " * (node.col_offset + 4)
        message = f"{module}.{node.name} {GRADING_STUB_MESSAGE}: write your own"
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


def build_stubbed_package(names: set[str], dest: Path, package_dir: Path, package: str) -> list[str]:
    """Copy the package ``package`` (at ``package_dir``) to ``dest`` with the references named ``names``
    stubbed; returns what was stubbed (``package.module.name``).

    The copy is compiled (with the real package's path in its code objects), so the read-only
    sandbox imports it as fast as the original.
    """
    shutil.copytree(package_dir, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    stubbed = []
    for path in sorted(dest.rglob("*.py")):
        parts = path.relative_to(dest).with_suffix("").parts
        module = ".".join((package, *(parts[:-1] if parts[-1] == "__init__" else parts)))
        source = path.read_text()
        new, found = stubbed_source(source, names, module)
        if found:
            path.write_text(new)
            stubbed += found
    compileall.compile_dir(str(dest), ddir=str(package_dir), quiet=2)
    return stubbed
