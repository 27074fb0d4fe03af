"""What crosses from the grader to the process that grades one submission, and what comes back: typed.

``Limits`` are the instructor's knobs, declared once: their defaults here are the ``grade`` command's
(its options are generated from these fields). ``Job`` is what one grading process needs, written to
its scratch folder by ``Job.save`` and read by ``Job.load``. ``Outcome`` is what it reports, through
one file that ``OutcomeFile`` alone writes (as grading goes: which cell is running, the memory limit
that applied, and at the end the scores or why there are none) and reads; so the supervising process
learns where a killed or hung grading stopped.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ...commandline import knob
from ..sandbox.bubblewrap import SandboxLimits


@dataclass(frozen=True)
class Limits:
    """How long, how much memory and how many processes one submission may use, and whether it is sandboxed."""
    cell_timeout: int = knob(30, "seconds a cell may run; a cell running longer is interrupted and fails")
    timeout: int = knob(300, "seconds a submission may run; past it its processes are killed (status timeout)")
    memory_gb: float = knob(4.0, "resident memory of each learner kernel, by cgroup; where no cgroup can be made, "
                                 "the address space instead, and result.json says so")
    max_processes: int = knob(256, "processes and threads each learner kernel may have")
    scratch_mb: int = knob(512, "size of the kernel's private writable home folder")
    sandbox: bool = knob(True, "run student code in the OS sandbox; --no-sandbox runs it with your rights (no "
                               "namespaces: it can read and write what you can). Tests still run outside it. Only "
                               "for submissions you trust; the summary and every result.json say so")

    def sandbox_limits(self) -> SandboxLimits:
        return SandboxLimits(memory_bytes=int(self.memory_gb * 2**30), cpu_seconds=self.timeout,
                             max_pids=self.max_processes, scratch_bytes=self.scratch_mb * 2**20)


@dataclass(frozen=True)
class NotebookJob:
    """One notebook of the submission: its file name, the learner's functions, and its test cells that
    must run in the learner's kernel (the rest run in the grader)."""
    name: str
    functions: tuple[str, ...]
    tests_in_kernel: tuple[str, ...] = ()


@dataclass(frozen=True)
class Job:
    """Everything the grading process needs; paths are on the grading machine."""
    assignment: str
    student: str
    notebooks: tuple[NotebookJob, ...]
    limits: Limits
    scratch: str                       # the scratch folder: the nbgrader course, the logs, the outcome
    run_dir: str                       # short path for the kernel's sockets
    packages: tuple[tuple[str, str], ...] = ()   # (copy, where it is mounted): the course's package, stubbed
    data_files: tuple[str, ...] = ()   # the release's files a notebook reads, copied into the kernel's home
    kernel_env: tuple[tuple[str, str], ...] = ()  # the course's settings for the kernel (e.g. a fast mode)
    run_teaching_cells: bool = True    # False: only setup, answers and tests run (the course says so)
    stub_marker: str = ""              # the message a stubbed reference raises (its failures are noted)

    @property
    def outcome_path(self) -> Path:
        return Path(self.scratch) / "outcome.json"

    @property
    def kernel_log(self) -> Path:
        return Path(self.scratch) / "kernel.log"

    def notebook(self, name: str) -> NotebookJob:
        return next(n for n in self.notebooks if n.name == name)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)))

    @classmethod
    def load(cls, path: Path) -> "Job":
        raw = json.loads(path.read_text())
        raw["limits"] = Limits(**raw["limits"])
        raw["notebooks"] = tuple(NotebookJob(n["name"], tuple(n["functions"]), tuple(n["tests_in_kernel"]))
                                 for n in raw["notebooks"])
        for name in ("packages", "kernel_env"):
            raw[name] = tuple(tuple(pair) for pair in raw[name])
        raw["data_files"] = tuple(raw["data_files"])
        return cls(**raw)


@dataclass
class Outcome:
    """What grading one submission came to.

    ``ok`` with the scores of every autograded test cell (by grade_id); or not ``ok``, with the ``status``
    (crashed, timeout, error), a one-line ``message``, and the cell that was running (notebook, index)."""
    ok: bool = False
    status: str = "error"
    message: str = "the grading process ended before it reported anything"
    scores: dict[str, float | None] = field(default_factory=dict)
    stopped_cells: int = 0
    notes: list[str] = field(default_factory=list)
    memory: str = ""
    running: tuple[str, int] | None = None


class OutcomeFile:
    """The one writer and reader of a grading's ``Outcome``: updated as grading goes, replaced atomically."""

    def __init__(self, path: Path):
        self.path = path

    def read(self) -> Outcome:
        if not self.path.exists():
            return Outcome()
        raw = json.loads(self.path.read_text())
        known = {f.name for f in fields(Outcome)}
        outcome = Outcome(**{k: v for k, v in raw.items() if k in known})
        if outcome.running is not None:
            outcome.running = (str(outcome.running[0]), int(outcome.running[1]))
        return outcome

    def update(self, **changes) -> Outcome:
        outcome = self.read()
        for name, value in changes.items():
            setattr(outcome, name, value)
        staged = self.path.with_name(self.path.name + ".new")
        staged.write_text(json.dumps(asdict(outcome)))
        os.replace(staged, self.path)
        return outcome
