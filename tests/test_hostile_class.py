"""A hostile class, for lessons 02 and 03: every trick earns nothing, every escape reaches nothing.

For each lesson one class is graded once, through the grader as an instructor runs it:
  * an honest twin with realistic wrong answers, and the same wrong answers with each trick
    (``hostile.GLOBAL_TRICKS``, lying return values, borrowing the grader's callables, delegating to
    or reading the course's own references): no trick may score more than the twin;
  * correct answers with probes: one tries every escape (files, the repository, the course folder,
    other students, sockets, surviving processes, the environment), others a fork bomb, a full disk
    and memory; all get full marks (the memory hog loses only the exercise it ran in), and the host
    is checked afterwards: nothing written, no connection accepted, no process left;
  * every submitted file is byte-for-byte unchanged.
"""
from __future__ import annotations

import hashlib
import os
import socket
import sys
import time
import uuid
from pathlib import Path

import nbformat
import psutil
import pytest

from ppo_course.autograder.commands.client import grade, summary
from ppo_course.autograder.commands.folder import Course
from ppo_course.autograder.grading.job import Limits
from ppo_course.autograder.sandbox.cgroups import Cgroups

import hostile
from conftest import RELEASE_CACHE, REPO
from grading_helpers import hidden_test_lines, points, solution_answers, submission, with_edit

pytestmark = pytest.mark.slow   # grades hostile classes in the sandbox

LESSONS = {
    # lesson: (reference module, {answer_id: (correct fragment, realistic mistake)}); the rest stay correct
    "03-clipped-surrogate": ("clipping", {
        "clipped_surrogate": ("torch.minimum", "torch.maximum"),
        "ppo_policy_loss": ("return -clipped_surrogate", "return clipped_surrogate"),
    }),
    "02-trpo": ("trust_region", {
        "categorical_kl": ("log_p.exp() * (log_p - log_q)", "log_q.exp() * (log_q - log_p)"),
        "conjugate_gradient": ("p = r + (new_r_dot_r / r_dot_r) * p", "p = r"),
        "backtracking_line_search": ("    return torch.zeros_like(full_step)", "    return step"),
    }),
}
MEMORY_GB = 1.0


def wrong_answers(lesson: str) -> dict[str, str]:
    answers = solution_answers(lesson)
    for answer_id, (correct, mistake) in LESSONS[lesson][1].items():
        answers = with_edit(answers, answer_id,
                            lambda source, correct=correct, mistake=mistake: source.replace(correct, mistake))
    return answers


def first_answer(lesson: str) -> str:
    return next(iter(solution_answers(lesson)))


def prepend(answers: dict[str, str], lesson: str, code: str) -> dict[str, str]:
    first = first_answer(lesson)
    return dict(answers, **{first: code + "\n" + answers[first]})


def functions(lesson: str) -> dict[str, str]:
    """{answer_id: function name}: in this course each answer cell defines the function of its name."""
    return {answer_id: answer_id for answer_id in solution_answers(lesson)}


class Host:
    """What a probe might reach on the host: listening sockets, paths, a token for its processes."""

    def __init__(self, course_root: Path):
        self.token = f"ppo-escape-{uuid.uuid4().hex[:12]}"
        self.listeners = {}
        for family, address in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
            server = socket.socket(family)
            server.bind((address, 0))
            server.listen(8)
            server.setblocking(False)
            self.listeners[address] = server
        self.unix_path = f"/tmp/{self.token}.sock"
        self.unix = socket.socket(socket.AF_UNIX)
        self.unix.bind(self.unix_path)
        self.unix.listen(8)
        self.unix.setblocking(False)
        self.abstract = socket.socket(socket.AF_UNIX)   # abstract sockets belong to a network namespace
        self.abstract.bind("\0" + self.token)
        self.abstract.listen(8)
        self.abstract.setblocking(False)
        self.paths = [str(course_root / "escape.txt"), str(course_root / "submitted" / "victim" / "escape.txt"),
                      str(REPO / "src" / "ppo_course" / f"{self.token}.py"), str(REPO / "solutions" / self.token),
                      f"/tmp/{self.token}", f"/root/{self.token}", f"{sys.prefix}/{self.token}"]

    @property
    def ports(self) -> dict[str, int]:
        return {address: server.getsockname()[1] for address, server in self.listeners.items()}

    def connections(self) -> int:
        count = 0
        for server in [*self.listeners.values(), self.unix, self.abstract]:
            try:
                server.accept()
                count += 1
            except BlockingIOError:
                pass
        return count

    def survivors(self) -> list[int]:
        return [p.pid for p in psutil.process_iter(["cmdline"])
                if self.token in (p.info["cmdline"] or []) and p.status() != psutil.STATUS_ZOMBIE]

    def close(self) -> None:
        for server in [*self.listeners.values(), self.unix, self.abstract]:
            server.close()
        Path(self.unix_path).unlink(missing_ok=True)


def build_class(lesson: str, host: Host, canary: str, with_memory: bool) -> dict[str, dict[str, str]]:
    module, _ = LESSONS[lesson]
    wrong, right = wrong_answers(lesson), solution_answers(lesson)
    students = {"twin": wrong}
    for name, code in hostile.GLOBAL_TRICKS.items():
        students[f"trick-{name}"] = prepend(wrong, lesson, code)
    for name, kind in hostile.WRAPPERS.items():
        wrapped = {a: hostile.wrap(source, a, kind) for a, source in wrong.items()}
        students[f"trick-{name}"] = prepend(wrapped, lesson, hostile.LIARS)
    borrowing = {a: hostile.borrow(source, a) for a, source in wrong.items()}
    students["trick-borrows-grader-callables"] = prepend(borrowing, lesson, hostile.BORROWER)
    students["trick-delegates-to-reference"] = hostile.delegating_answers(functions(lesson), module)
    students["trick-reads-reference-source"] = hostile.source_reading_answers(functions(lesson), module)
    secrets = hidden_test_lines(lesson)[:40] + [canary]
    students["honest"] = right
    students["victim"] = dict(right, **{first_answer(lesson): f"# {canary}\n" + right[first_answer(lesson)]})
    probing = prepend(right, lesson, hostile.RECORDER + hostile.probe(host.token, host.paths, host.ports, secrets,
                                                                       host.unix_path))
    last = list(probing)[-1]
    students["probe"] = dict(probing, **{last: probing[last] + hostile.recorded_report(secrets)})
    students["fork-bomb"] = prepend(right, lesson, hostile.FORK_BOMB)
    students["disk-filler"] = prepend(right, lesson, hostile.DISK_FILLER)
    if with_memory:
        students["memory-fits"] = prepend(right, lesson, hostile.memory_user(300))
        students["memory-hog"] = prepend(right, lesson, hostile.memory_user(1500))
    return students


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module", params=list(LESSONS))
def hostile_class(request, tmp_path_factory, sandbox):
    lesson = request.param
    root = tmp_path_factory.mktemp(f"hostile-{lesson[:2]}")
    course = Course(root / "course")
    host = Host(course.root)
    probe_cgroup = Cgroups.create(2**30, 64)
    with_memory = probe_cgroup is not None   # without a memory cgroup the limit is on address space
    if probe_cgroup:
        probe_cgroup.remove()
    canary = f"canary-of-another-student-{uuid.uuid4().hex}"
    students = build_class(lesson, host, canary, with_memory)
    for student, answers in students.items():
        folder = course.submitted / student / lesson
        folder.mkdir(parents=True)
        nbformat.write(submission(lesson, answers), folder / f"{lesson}.ipynb")
    before = {p: digest(p) for p in course.submitted.rglob("*.ipynb")}
    os.environ["PPO_GRADER_SECRET"] = "an LMS token"
    limits = Limits(cell_timeout=10, timeout=120, memory_gb=MEMORY_GB if with_memory else 4.0,
                    max_processes=64, scratch_mb=64)
    try:
        records = {r["student"]: r for r in grade(course, [lesson], limits, jobs=2, progress=False,
                                                          release_cache=RELEASE_CACHE)}
    finally:
        del os.environ["PPO_GRADER_SECRET"]
    time.sleep(1)   # anything that survived would still be running now
    yield {"lesson": lesson, "course": course, "records": records, "host": host, "students": students,
           "before": before, "after": {p: digest(p) for p in course.submitted.rglob("*.ipynb")},
           "connections": host.connections(), "survivors": host.survivors(), "summary": summary(list(records.values()))}
    for pid in host.survivors():
        psutil.Process(pid).kill()
    host.close()


def answer_output(hostile_class, student: str) -> str:
    """What the student's answer cells printed while graded."""
    lesson, course = hostile_class["lesson"], hostile_class["course"]
    notebook = nbformat.read(course.autograded / student / lesson / f"{lesson}.ipynb", as_version=4)
    return "".join(output.get("text", "") for cell in notebook.cells
                   if cell.metadata.get("nbgrader", {}).get("solution") for output in cell.get("outputs", []))


def test_no_trick_scores_more_than_its_honest_twin(hostile_class):
    records = hostile_class["records"]
    twin = records["twin"]
    full = sum(points(hostile_class["lesson"]).values())
    assert twin["status"] == "graded" and 0 < twin["total"] < full, twin
    tricks = {name: r for name, r in records.items() if name.startswith("trick-")}
    assert len(tricks) == len(hostile.GLOBAL_TRICKS) + len(hostile.WRAPPERS) + 3, (
        f"every trick student must have a result (one per GLOBAL_TRICKS and WRAPPERS entry, plus the borrower, "
        f"the delegator and the source reader): {sorted(tricks)}")
    earned = {name: (r["status"], r["total"]) for name, r in tricks.items() if r["total"] > twin["total"]}
    assert earned == {}, f"tricks that scored more than the honest twin's {twin['total']}: {earned}"
    for name, record in tricks.items():
        assert record["status"] in ("graded", "timeout", "crashed"), (name, record)


def test_delegating_to_the_course_reference_scores_zero_with_a_note(hostile_class):
    for student in ("trick-delegates-to-reference", "trick-reads-reference-source"):
        record = hostile_class["records"][student]
        assert record["total"] == 0, record
    notes = " ".join(hostile_class["records"]["trick-delegates-to-reference"]["notes"])
    module = LESSONS[hostile_class["lesson"]][0]
    for name in functions(hostile_class["lesson"]):
        assert f"the answer calls the course's reference ppo_course.{module}.{name}" in notes, notes


def test_honest_and_probing_students_get_full_marks(hostile_class):
    full = points(hostile_class["lesson"])
    for student in ("honest", "victim", "probe", "fork-bomb", "disk-filler", "memory-fits"):
        if student in hostile_class["records"]:
            record = hostile_class["records"][student]
            assert (record["status"], record["scores"]) == ("graded", full), (student, record)


def test_the_probe_reached_nothing(hostile_class):
    out = answer_output(hostile_class, "probe")
    assert "PROBE " in out, out
    report = out.split("PROBE ", 1)[1].splitlines()[0]
    for finding in ("solutions visible: False", "gradebooks visible: 0", "course folder in a cmdline: False",
                    "secret files found: 0 []", "127.0.0.1: Network is unreachable",
                    "unix socket: No such file or directory", "abstract socket: Connection refused",
                    "environment secret: False"):
        assert finding in report, report
    assert "connected" not in report, report
    ran = out.split("KERNEL RAN ")[1].splitlines()[0]
    assert int(ran.split()[0]) >= 3 and ran.endswith("with a secret: 0"), (
        f"the kernel must never be sent a hidden test: {ran}")
    host = hostile_class["host"]
    assert hostile_class["connections"] == 0, "a connection from the sandbox reached the host"
    assert [p for p in host.paths if Path(p).exists()] == [], (
        "the probe wrote to these host paths (course folder, another student, the package, solutions/, /tmp, "
        "/root, sys.prefix): the sandbox's read-only, private mounts must have kept every write inside")
    assert hostile_class["survivors"] == [], "a process the probe started outlived grading"


def test_fork_bombs_full_disks_and_memory_hogs_are_contained(hostile_class):
    started = int(answer_output(hostile_class, "fork-bomb").split("SPAWNED ")[1].split()[0])
    assert started < 64, started
    assert "FILLER stopped" in answer_output(hostile_class, "disk-filler"), (
        f"writing 400 MiB must be stopped by the 64 MiB scratch limit: {answer_output(hostile_class, 'disk-filler')}")
    if "memory-hog" in hostile_class["records"]:
        assert "MEMORY touched 300 MiB" in answer_output(hostile_class, "memory-fits"), (
            f"an answer using 300 MiB must run within the {MEMORY_GB:g} GB memory limit: "
            f"{answer_output(hostile_class, 'memory-fits')}")
        hog = hostile_class["records"]["memory-hog"]
        first = first_answer(hostile_class["lesson"])
        assert hog["status"] == "crashed" and f"more than {MEMORY_GB:g} GB of memory" in hog["message"], hog
        assert hog["scores"] == dict(points(hostile_class["lesson"]), **{f"{first}_tests": 0.0}), hog


def test_submitted_files_are_unchanged(hostile_class):
    assert hostile_class["before"] == hostile_class["after"], (
        "a submitted notebook changed (or one was added) while the hostile class was graded")
    assert len(hostile_class["before"]) == len(hostile_class["students"]), "one submitted notebook per student"


def test_the_summary_says_the_sandbox_was_on(hostile_class):
    for record in hostile_class["records"].values():
        assert record["isolation"].startswith("sandbox: bubblewrap"), record
        assert "GB" in record["memory_limit"], record
    assert "WARNING" not in hostile_class["summary"], (
        f"the class was graded in the sandbox: its summary must carry no WARNING:\n{hostile_class['summary']}")
