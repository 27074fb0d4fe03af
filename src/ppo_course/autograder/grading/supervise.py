"""Process supervision for grading: each submission's worker process, its limits, and its clean-up.

``Workers.run`` starts one worker (forked from a forkserver that imported nbgrader and what the course's
tests import, once), waits for it under the submission's wall-clock limit, kills it and everything it
started (kernel, children) when it ends or overruns, and returns the worker's ``Outcome`` (what it
wrote, as it went, to its outcome file) with why it ended where it did (timed out, exit status).
``grade.py`` decides what a submission is worth; this module only keeps processes in hand.
"""
from __future__ import annotations

import functools
import multiprocessing
import os
import threading
import time
from pathlib import Path

import psutil

from ..sandbox.cgroups import Cgroups
from .job import Outcome, OutcomeFile
from .pipeline import ensure_tools_on_path

KEPT_ENV = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TZ",
            "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def grading_env(course_env: dict[str, str]) -> dict[str, str]:
    """The worker's environment: none of the instructor's tokens or settings, no PYTHONPATH; the course's
    own settings (its ``kernel_env``: the tests run with them too)."""
    ensure_tools_on_path()
    env = {name: os.environ[name] for name in KEPT_ENV if name in os.environ}
    env.update(MPLBACKEND="Agg", PYDEVD_DISABLE_FILE_VALIDATION="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return env | course_env


PRELOAD = ("nbgrader.apps", "nbgrader.api", "nbgrader.converters", "nbgrader.preprocessors", "jupyter_client",
           "nbclient", "ppo_course.autograder.grading.worker", "ppo_course.autograder.grading.execute")


@functools.lru_cache(maxsize=None)
def worker_context(course_modules: tuple[str, ...] = ()):
    """Workers are forked from a forkserver that imported nbgrader, the grader and what the course's tests
    import (``course_modules``: torch, the course's package...) once (fresh, single-threaded: safe to fork);
    each submission still gets a process, and a kernel, of its own. The server starts on the first call
    (one per process: later calls get the same), and imports while the caller prepares the assignments."""
    from multiprocessing import forkserver

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(PRELOAD + course_modules))
    forkserver.ensure_running()
    return context


class Workers:
    """The worker processes in flight (one per submission being graded); ``kill_all`` on Ctrl-C."""

    def __init__(self):
        self.running: set[multiprocessing.Process] = set()
        self.lock = threading.Lock()

    def run(self, scratch: Path, timeout: float, course_env: dict[str, str]) -> Outcome:
        """Autograde the scratch course in a child process; its outcome, with why it ended there."""
        from .worker import run_in_child

        family: dict[int, psutil.Process] = {}
        process = worker_context().Process(target=run_in_child,
                                           args=(str(scratch), grading_env(course_env), os.getpid()))
        allow_children()
        process.start()
        with self.lock:
            self.running.add(process)
        deadline = time.monotonic() + timeout
        try:
            while process.is_alive() and time.monotonic() < deadline:
                _remember_descendants(process, family)
                process.join(timeout=0.25)   # returns as soon as the worker ends
        finally:
            timed_out = process.is_alive()
            _kill_all(process, family)  # on time-out, and any kernel or child the worker left behind
            with self.lock:
                self.running.discard(process)
        outcome = OutcomeFile(scratch / "outcome.json").read()
        if timed_out:
            outcome.ok, outcome.status = False, "timeout"
            outcome.message = f"still running after {timeout:g} s (a loop that ignores interrupts?): killed"
        elif not outcome.ok and outcome.status == "error" and outcome.message == Outcome().message:
            outcome.message = f"the grader exited with status {process.exitcode}: " + last_line(scratch)
        return outcome

    def kill_all(self) -> None:
        with self.lock:
            for process in list(self.running):
                process.kill()  # its thread then kills the kernel and cleans up


WORKERS = Workers()   # this process's graders in flight: every thread that grades, here or on a Dask worker


def allow_children() -> None:
    """A Dask nanny starts its worker process as a daemon, and multiprocessing refuses to start children
    from one (so that none outlives it). Ours never do: the thread that starts one kills and joins it,
    and it kills itself when the worker itself dies (``worker.die_with``)."""
    current = multiprocessing.current_process()
    if current.daemon:
        current._config["daemon"] = False


def _remember_descendants(process: multiprocessing.Process, known: dict[int, psutil.Process]) -> None:
    """Remember the worker's descendants (its kernel runs in a session of its own, so no process
    group covers both); psutil.Process remembers each one's start time, so a reused pid is never hit."""
    try:
        for child in psutil.Process(process.pid).children(recursive=True):
            known.setdefault(child.pid, child)
    except psutil.NoSuchProcess:
        pass


def _kill_all(process: multiprocessing.Process, known: dict[int, psutil.Process]) -> None:
    if process.is_alive():
        _remember_descendants(process, known)
        process.kill()
    alive = []
    for member in known.values():
        try:
            if member.status() != psutil.STATUS_ZOMBIE:
                member.kill()  # psutil checks it is still the same process
                alive.append(member)
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=5)
    process.join()
    Cgroups.remove_left_by(process.pid)


def last_line(scratch: Path) -> str:
    lines = [line for line in (scratch / "worker.log").read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"
