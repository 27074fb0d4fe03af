"""What a course says about how its assignments are graded: ``autograder.toml`` at the top of its source folder.

A course is data: a folder of nbgrader source assignments (``SOURCE/<assignment>/*.ipynb``) and,
optionally, this file. Without it an assignment is graded as stock nbgrader would run it (every cell
in order, in a fresh kernel), with the grader's protections. The file's keys, all optional:

    [grading]
    kernel_env = { COURSE_FAST = "1" }   # set in the learner's kernel and where the tests run
    run_teaching_cells = false            # only the setup cell, the answers and the tests run
    reference_package = "mycourse"        # an importable package whose functions named like an
                                          # exercise are stubbed while that assignment is graded
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CourseError

FILE_NAME = "autograder.toml"


@dataclass(frozen=True)
class GradingSettings:
    kernel_env: dict[str, str] = field(default_factory=dict)
    run_teaching_cells: bool = True
    reference_package: str | None = None

    @classmethod
    def of_course(cls, source: Path) -> "GradingSettings":
        path = source / FILE_NAME
        if not path.is_file():
            return cls()
        try:
            import tomllib
        except ModuleNotFoundError:   # Python 3.10
            import tomli as tomllib
        try:
            table = tomllib.loads(path.read_text()).get("grading", {})
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise CourseError(f"{path} is not valid TOML ({error})") from None
        unknown = set(table) - {"kernel_env", "run_teaching_cells", "reference_package"}
        if unknown:
            raise CourseError(f"{path}: unknown setting(s) {', '.join(sorted(unknown))} under [grading]")
        env = table.get("kernel_env", {})
        if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
            raise CourseError(f"{path}: kernel_env must be a table of strings")
        package = table.get("reference_package")
        if package is not None and not (isinstance(package, str) and package.isidentifier()):
            raise CourseError(f"{path}: reference_package must be the name of an importable package")
        return cls(dict(env), bool(table.get("run_teaching_cells", True)), package)
