"""The autograder's shape: four wings that import only downwards, no import circle, typed data between
processes, and a release cache that cannot go stale."""
from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

from ppo_course.autograder.grading import bundle
from ppo_course.autograder.grading.job import Job, Limits, NotebookJob, OutcomeFile

PACKAGE = Path(bundle.__file__).resolve().parents[1]   # src/ppo_course/autograder
LAYERS = {"errors": 0, "text": 0, "syntax": 0, "bridge": 1, "sandbox": 2, "grading": 3, "commands": 4, "__main__": 5,
          "__init__": 5}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts)


def imports_of(path: Path) -> set[str]:
    """The autograder modules a module imports, at its top or inside functions, as dotted names under it."""
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - node.level + 1] if node.level > 1 else package
            target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            names = [f"{target}.{a.name}" if target else a.name for a in node.names]
            found |= {n for n in names if (PACKAGE / f"{n.replace('.', '/')}.py").exists()
                      or (PACKAGE / n.replace(".", "/")).is_dir()} or {target}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ppo_course.autograder."):
            found.add(node.module.removeprefix("ppo_course.autograder."))
    return {f for f in found if f and f != module_name(path)}


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
GRAPH = {name: {i for i in imports_of(path) if i in MODULES or i.split(".")[0] in LAYERS} for name, path in
         MODULES.items()}


def test_the_wings_exist():
    assert {name.split(".")[0] for name in MODULES} == set(LAYERS), sorted(MODULES)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_nothing_imports_upward(module):
    layer = LAYERS[module.split(".")[0]]
    upward = sorted(i for i in GRAPH[module] if LAYERS[i.split(".")[0]] > layer)
    assert not upward, f"{module} (wing {module.split('.')[0]}) imports from a wing above it: {upward}"


def test_no_import_circle():
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(GRAPH.get(node, ())):
            if target not in MODULES:
                continue
            if state.get(target) == 1:
                raise AssertionError("import circle: " + " -> ".join([*path, node, target]))
            if target not in state:
                visit(target, [*path, node])
        state[node] = 2

    for module in sorted(MODULES):
        if module not in state:
            visit(module, [])


def test_the_grader_knows_nothing_of_the_course():
    """Only the commands' default --source names this repository's course; nothing imports its lessons."""
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text())
        lessons = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module
                   and n.module.startswith("ppo_course.") and not n.module.startswith("ppo_course.autograder")
                   and n.module != "ppo_course.commandline"]
        relative = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level
                    and n.level > len(name.split(".")) and n.module != "commandline"]
        assert not lessons and not relative, f"{name} imports the course's own code: {[ast.dump(n) for n in lessons]}"


def test_the_job_and_the_outcome_are_typed_and_round_trip(tmp_path):
    job = Job("ps1", "hacker", (NotebookJob("problem1.ipynb", ("squares",), ("uses_squares",)),), Limits(timeout=9),
              str(tmp_path), "/tmp/run", packages=(("/a", "/b"),), kernel_env=(("X", "1"),), run_teaching_cells=False)
    job.save(tmp_path / "job.json")
    assert Job.load(tmp_path / "job.json") == job
    outcomes = OutcomeFile(tmp_path / "outcome.json")
    assert outcomes.read().ok is False and outcomes.read().status == "error"
    outcomes.update(running=("problem1.ipynb", 7), memory="1 GB")
    outcomes.update(ok=True, status="graded", scores={"correct_squares": 1.0})
    read = outcomes.read()
    assert (read.ok, read.running, read.memory, read.scores) == (True, ("problem1.ipynb", 7), "1 GB",
                                                                  {"correct_squares": 1.0})


def test_the_release_cache_key_changes_with_any_part_of_the_pipeline(tmp_path, monkeypatch):
    grading = tmp_path / "grading"
    shutil.copytree(PACKAGE / "grading", grading, ignore=shutil.ignore_patterns("__pycache__"))
    lesson = tmp_path / "03"
    lesson.mkdir()
    (lesson / "03.ipynb").write_text("{}")
    monkeypatch.setattr(bundle, "GRADING_PACKAGE", grading)
    before = bundle.release_digest(lesson)
    assert bundle.release_digest(lesson) == before, "the same sources make the same key"
    for part in sorted(grading.glob("*.py")):   # the preprocessors, the pipeline, the contract...
        original = part.read_text()
        part.write_text(original + "\n# changed\n")
        assert bundle.release_digest(lesson) != before, f"a change to {part.name} must be a new release"
        part.write_text(original)
    (lesson / "data.json").write_text("[]")
    assert bundle.release_digest(lesson) != before, "a change to the lesson's folder must be a new release"


def test_every_module_that_grades_in_the_sandbox_shares_the_grading_worker():
    """Under pytest-xdist the sandboxed gradings run one after another on one worker (conftest.worker_group):
    a new module that asks for the ``sandbox`` fixture must join them, not grade beside them."""
    from conftest import SANDBOXED_GRADING, worker_group

    tests = Path(__file__).parent
    grading = {path.name for path in tests.glob("test_*.py")
               if any(isinstance(node, ast.FunctionDef) and any(arg.arg == "sandbox" for arg in node.args.args)
                      for node in ast.walk(ast.parse(path.read_text())))}
    assert grading and grading <= SANDBOXED_GRADING, sorted(grading - SANDBOXED_GRADING)
    assert {worker_group(name) for name in SANDBOXED_GRADING} == {"sandboxed-grading"}
