"""The Python code is lint-clean: ``ruff check``, configured in pyproject.toml, finds nothing."""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

CHECKED = ["src", "tests", "benchmarks", "scripts", "autograder"]


def ruff_command() -> list[str] | None:
    """This interpreter's ruff (the test extra installs it), or the ruff next to it; None without one."""
    if importlib.util.find_spec("ruff") is not None:
        return [sys.executable, "-m", "ruff"]
    beside = shutil.which("ruff", path=str(Path(sys.executable).parent))
    return [beside] if beside else None


def test_ruff_finds_nothing():
    command = ruff_command()
    if command is None:
        problem = "ruff is not installed (it is in the test extra: pip install -e '.[test]')"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{problem}; CI=true, so the lint check must run")
        pytest.skip(problem)
    # --no-cache: a check must not write .ruff_cache into the checkout.
    result = subprocess.run([*command, "check", "--no-cache", "--output-format", "concise", *CHECKED],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, (
        f"ruff check {' '.join(CHECKED)} found problems:\n"
        f"{result.stdout}{result.stderr}")
