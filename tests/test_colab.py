"""Colab: every badge and link points at a file of this repository, and each notebook's setup cell is
a no-op outside Colab, idempotent on Colab, never reinstalls torch, and shows pip's output on failure.

The setup cell is executed here for real, with a fake ``google.colab`` module and a fake pip (a
stand-in for ``subprocess.run``), so nothing is installed and nothing leaves the machine.
"""
from __future__ import annotations

import functools
import importlib.util
import re
import subprocess
import sys
import types
from pathlib import Path

import nbformat
import pytest

from ppo_course import links

from conftest import LESSONS, REPO, SOLUTIONS, notebooks

NOTEBOOKS = notebooks(SOLUTIONS) + notebooks(LESSONS)
READMES = [REPO / "README.md"]
COLAB = re.compile(r"https://colab\.research\.google\.com/github/([^/]+/[^/]+)/blob/([^/]+)/([^)\s\"'>]+)")
BINDER = re.compile(r"https://mybinder\.org/v2/gh/([^/]+/[^/]+)/([^?)\s]+)\?urlpath=lab/tree/([^)\s\"'>]+)")
# Markdown links and images whose target is a file of the repository (not a web address or an anchor).
RELATIVE_LINK = re.compile(r"!?\[[^\]]*\]\((?!https?://|#|mailto:)([^)\s]+)\)")


def ids(path: Path) -> str:
    return str(path.relative_to(REPO))


@functools.lru_cache(maxsize=None)
def cells_of(notebook: Path) -> list:
    return nbformat.read(notebook, as_version=4).cells


def markdown_of(path: Path) -> str:
    if path.suffix == ".ipynb":
        return "\n".join(c.source for c in cells_of(path) if c.cell_type == "markdown")
    return path.read_text()


def setup_cell(notebook: Path):
    cells = cells_of(notebook)
    tagged = [i for i, c in enumerate(cells) if "colab-setup" in c.metadata.get("tags", [])]
    assert tagged == [1], f"{notebook.name}: the colab-setup cell must be the second cell, found at {tagged}"
    return cells[1]


# --- badges and links -------------------------------------------------------------------------------

@pytest.mark.parametrize("document", NOTEBOOKS + READMES, ids=ids)
def test_every_colab_and_binder_link_points_at_a_file_of_this_repository(document):
    text = markdown_of(document)
    for repo, branch, path in COLAB.findall(text) + BINDER.findall(text):
        assert (repo, branch) == (links.GITHUB_REPO, links.BRANCH), \
            f"{document.name}: a badge points at {repo}@{branch}, not {links.GITHUB_REPO}@{links.BRANCH}"
        assert (REPO / path).exists(), f"{document.name}: a badge points at {path}, which is not in the repository"


@pytest.mark.parametrize("document", NOTEBOOKS + READMES, ids=ids)
def test_relative_links_and_images_resolve(document):
    missing = [target for target in RELATIVE_LINK.findall(markdown_of(document))
               if not (document.parent / target.split("#")[0]).exists()]
    assert not missing, f"{document.name} links to files that do not exist: {missing}"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=ids)
def test_first_cell_has_a_colab_badge_for_the_released_lesson(notebook):
    first = cells_of(notebook)[0]
    lesson = notebook.parent.name
    expected = links.colab_url(f"lessons/{lesson}/{lesson}.ipynb")
    assert first.cell_type == "markdown" and expected in first.source, \
        f"{notebook.name}: the first cell should carry the Open-in-Colab badge linking {expected}"
    assert "colab-badge.svg" in first.source, f"{notebook.name}: the Colab link should be the badge image"


@pytest.mark.parametrize("readme", READMES, ids=ids)
def test_readme_course_map_has_colab_and_binder_badges_for_every_lesson(readme):
    text = readme.read_text()
    for notebook in notebooks(LESSONS):
        path = f"lessons/{notebook.parent.name}/{notebook.name}"
        assert links.colab_url(path) in text, f"{readme.name}: no Colab badge for {path}"
        assert links.binder_url(path) in text, f"{readme.name}: no Binder badge for {path}"


# --- the setup cell -----------------------------------------------------------------------------------

class FakePip:
    """Stands in for ``subprocess.run``: records pip commands, answers like pip, "installs" the package."""

    def __init__(self, returncode: int = 0, output: str = ""):
        self.calls: list[list[str]] = []
        self.returncode, self.output = returncode, output
        self.installed = False

    def __call__(self, command, **kwargs):
        self.calls.append([str(part) for part in command])
        self.installed = self.returncode == 0
        return subprocess.CompletedProcess(command, self.returncode, stdout=self.output, stderr="")


@pytest.fixture
def fake_colab(monkeypatch):
    """A Colab look-alike: ``google.colab`` importable, the course package not installed, pip faked."""
    google, colab, output = (types.ModuleType(n) for n in ("google", "google.colab", "google.colab.output"))
    output.widget_manager_enabled = 0

    def enable_custom_widget_manager():
        output.widget_manager_enabled += 1

    output.enable_custom_widget_manager = enable_custom_widget_manager
    google.colab, colab.output = colab, output
    for name, module in (("google", google), ("google.colab", colab), ("google.colab.output", output)):
        monkeypatch.setitem(sys.modules, name, module)
    pip = FakePip()
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: (real_find_spec(name, *a) if pip.installed else None)
                        if name == "ppo_course" else real_find_spec(name, *a))
    monkeypatch.setattr(subprocess, "run", pip)
    return pip, output


def run_cell(source: str) -> None:
    exec(compile(source, "<colab-setup>", "exec"), {"__name__": "__main__"})


def check_does_nothing_outside_colab(source: str, monkeypatch, capsys) -> None:
    assert "google.colab" not in sys.modules, (
        "this check needs a Python without google.colab: a fake one was left in sys.modules")
    pip = FakePip()
    monkeypatch.setattr(subprocess, "run", pip)
    try:
        run_cell(source)
    except Exception as error:  # noqa: BLE001 - any exception is the failure being reported
        raise AssertionError(f"the setup cell raised {error!r} outside Colab") from error
    assert pip.calls == [], f"the setup cell ran {pip.calls} outside Colab"
    assert capsys.readouterr() == ("", ""), "the setup cell printed something outside Colab"


def check_installs_once_and_enables_widgets(source: str, pip: FakePip, output) -> None:
    run_cell(source)
    assert len(pip.calls) == 1, f"expected one pip install on a fresh Colab, got {pip.calls}"
    command = pip.calls[0]
    assert command[:4] == [sys.executable, "-m", "pip", "install"], \
        f"pip should run from the kernel's Python: {command}"
    assert links.PACKAGE_SPEC in command, f"installs {command}, not {links.PACKAGE_SPEC}"
    assert not any("torch" in part for part in command), f"must not reinstall torch (Colab has it): {command}"
    assert not {"-U", "--upgrade", "--force-reinstall"} & set(command), \
        f"upgrading would replace Colab's torch: {command}"
    assert output.widget_manager_enabled >= 1, "Colab's custom widget manager was not enabled"
    run_cell(source)  # the learner runs it again, or re-runs the whole notebook
    assert len(pip.calls) == 1, f"the second run installed again: {pip.calls[1:]}"


def check_shows_pips_output_on_failure(source: str, monkeypatch) -> None:
    monkeypatch.setattr(subprocess, "run", FakePip(returncode=1, output="ERROR: No matching distribution"))
    with pytest.raises(RuntimeError, match="No matching distribution"):
        run_cell(source)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=ids)
def test_setup_cell_does_nothing_outside_colab(notebook, monkeypatch, capsys):
    check_does_nothing_outside_colab(setup_cell(notebook).source, monkeypatch, capsys)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=ids)
def test_setup_cell_installs_once_on_colab_and_enables_widgets(notebook, fake_colab):
    check_installs_once_and_enables_widgets(setup_cell(notebook).source, *fake_colab)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=ids)
def test_setup_cell_shows_pips_output_when_the_install_fails(notebook, fake_colab, monkeypatch):
    check_shows_pips_output_on_failure(setup_cell(notebook).source, monkeypatch)


# --- the checks above can fail: broken setup cells they must reject ---------------------------------

GOOD = setup_cell(NOTEBOOKS[0]).source if NOTEBOOKS else ""
BROKEN = {
    "installs outside Colab": GOOD.replace('if "google.colab" in sys.modules:', "if True:"),
    "installs on every run": GOOD.replace('importlib.util.find_spec("ppo_course") is None', "True"),
    "reinstalls torch": GOOD.replace('"install", "-q",', '"install", "-q", "torch",'),
    "hides a failed install": GOOD.replace("if pip.returncode != 0:", "if False:"),
    "forgets the widget manager": GOOD.replace("output.enable_custom_widget_manager()", "pass"),
}


@pytest.mark.parametrize("mistake", sorted(BROKEN))
def test_the_checks_reject_a_setup_cell_that(mistake, fake_colab, monkeypatch, capsys):
    source = BROKEN[mistake]
    assert source != GOOD, f"the mutation for '{mistake}' no longer applies to the setup cell; update it"
    with pytest.raises((AssertionError, pytest.fail.Exception)):
        if mistake == "installs outside Colab":
            for name in ("google", "google.colab", "google.colab.output"):
                monkeypatch.delitem(sys.modules, name)
            check_does_nothing_outside_colab(source, monkeypatch, capsys)
        elif mistake == "hides a failed install":
            check_shows_pips_output_on_failure(source, monkeypatch)
        else:
            check_installs_once_and_enables_widgets(source, *fake_colab)
