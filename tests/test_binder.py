"""The Binder environment (binder/) builds the student runtime that requirements.txt describes.

mybinder.org cannot be reached from the tests, so they check what a build depends on: every file
parses, binder/requirements.txt asks for the same packages as requirements.txt with compatible
versions, torch is the CPU wheel CI tests, nothing for instructors or tests is installed, and the
Binder link opens JupyterLab on lessons/.
"""
from __future__ import annotations

import os
import re
import subprocess
from importlib.metadata import version
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from ppo_course import links

from conftest import REPO

BINDER = REPO / "binder"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
NOT_FOR_STUDENTS = {"nbgrader", "pytest", "pytest-timeout", "playwright", "nbclient", "stable-baselines3",
                    "sphinx", "myst-nb", "sphinx-book-theme"}  # the last three build the website


def requirement_lines(path: Path) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def requirements(path: Path) -> dict[str, Requirement]:
    """Package name -> Requirement, for the lines of a requirements file that are not pip options."""
    parsed = [Requirement(line) for line in requirement_lines(path) if not line.startswith("-")]
    return {canonicalize_name(r.name): r for r in parsed}


def course_torch_version() -> str:
    """The torch version course.sh installs for CI and local setups (TORCH_CPU="torch==X")."""
    match = re.search(r'TORCH_CPU="torch==([^"]+)"', (REPO / "course.sh").read_text())
    assert match, "course.sh no longer pins TORCH_CPU; update this test to where the torch version lives"
    return match.group(1)


def test_binder_asks_for_the_packages_of_the_student_runtime():
    student, binder = requirements(REPO / "requirements.txt"), requirements(BINDER / "requirements.txt")
    assert sorted(binder) == sorted(student), (
        f"binder/requirements.txt and requirements.txt list different packages: only in binder "
        f"{sorted(set(binder) - set(student))}, only in requirements.txt {sorted(set(student) - set(binder))}")
    for name, wanted in student.items():
        if name == "torch":
            continue
        assert binder[name].specifier == wanted.specifier, (
            f"{name}: binder asks for '{binder[name].specifier}', requirements.txt for '{wanted.specifier}'")


def test_binder_installs_the_cpu_torch_that_ci_tests():
    lines = requirement_lines(BINDER / "requirements.txt")
    options = [line for line in lines if line.startswith("-")]
    assert options == [f"--extra-index-url {CPU_INDEX}"], (
        f"binder should only add the PyTorch CPU index (or it gets the CUDA build); its pip options: {options}")
    torch = requirements(BINDER / "requirements.txt")["torch"]
    pinned = f"{course_torch_version()}+cpu"
    assert str(torch.specifier) == f"=={pinned}", f"binder should pin torch=={pinned} (course.sh's CPU torch)"
    allowed = requirements(REPO / "requirements.txt")["torch"].specifier
    assert allowed.contains(pinned), f"torch {pinned} does not satisfy requirements.txt's '{allowed}'"


def test_nothing_for_instructors_or_tests_is_installed_for_students():
    names = set(requirements(BINDER / "requirements.txt"))
    assert not names & NOT_FOR_STUDENTS, f"binder installs {sorted(names & NOT_FOR_STUDENTS)}"
    post_build = (BINDER / "postBuild").read_text()
    assert not any(name in post_build for name in NOT_FOR_STUDENTS), "postBuild installs instructor or test tools"


def test_the_versions_ci_tests_are_ones_binder_may_install():
    """What this suite ran with must satisfy Binder's specifiers, or Binder runs something untested."""
    for name, wanted in requirements(BINDER / "requirements.txt").items():
        installed = version(name)
        specifier = wanted.specifier if name != "torch" else SpecifierSet(f"=={installed.split('+')[0]}+cpu")
        assert specifier.contains(installed, prereleases=True), (
            f"{name}: this environment has {installed}, Binder would install '{wanted.specifier}'")


def test_post_build_is_an_executable_bash_script_that_installs_the_course_without_deps():
    post_build = BINDER / "postBuild"
    assert os.access(post_build, os.X_OK), "binder/postBuild must be executable (chmod +x), or Binder skips it"
    text = post_build.read_text()
    assert text.startswith("#!/usr/bin/env bash"), "postBuild needs a bash shebang"
    assert subprocess.run(["bash", "-n", str(post_build)], capture_output=True).returncode == 0, \
        "postBuild has a bash syntax error"
    assert re.search(r"pip install .*--no-deps .*\.\s*$", text, re.M), \
        "postBuild should install the course package with --no-deps (its dependencies come from requirements)"


def test_runtime_is_a_python_the_package_supports():
    text = (BINDER / "runtime.txt").read_text().strip()
    match = re.fullmatch(r"python-(3\.\d+)", text)
    assert match, f"binder/runtime.txt should read like 'python-3.11', got {text!r}"
    pyproject = (REPO / "pyproject.toml").read_text()
    requires = re.search(r'requires-python\s*=\s*"([^"]+)"', pyproject).group(1)
    assert SpecifierSet(requires).contains(match.group(1) + ".0"), \
        f"Binder's Python {match.group(1)} is outside the package's requires-python '{requires}'"


def test_binder_link_opens_jupyterlab_on_the_lessons():
    url = urlparse(links.binder_url("lessons"))
    assert url.netloc == "mybinder.org" and url.path == f"/v2/gh/{links.GITHUB_REPO}/{links.BRANCH}", (
        f"the Binder link must build {links.GITHUB_REPO}@{links.BRANCH} on mybinder.org: {url.geturl()}")
    urlpath = parse_qs(url.query)["urlpath"][0]
    assert urlpath.startswith("lab/tree/"), f"the Binder link should open JupyterLab, not {urlpath}"
    assert (REPO / urlpath.removeprefix("lab/tree/")).is_dir(), f"{urlpath} is not a folder of the repository"

