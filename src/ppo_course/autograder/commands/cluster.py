"""Grading on a Dask cluster: ``grade --dask ADDRESS`` (or ``local:N``, or DASK_SCHEDULER_ADDRESS).

Each submission is one Dask task running ``grading.grade.grade_one`` on a worker: the same function, and so
the same sandbox and the same results, as ``--jobs N`` here. The client (this process) keeps the
course folder: it reads the submissions, sends each one's bytes with its task, and writes what comes
back (``client.keep``, one rename per submission). Workers share no filesystem with it.

  * The release bundle of a lesson is one task of its own whose result (the bundle) every grading
    task of that lesson depends on: each worker fetches it once, from the scheduler's copy of the
    task or from a peer, and unpacks it once (``grading.bundle.KITS``). If the workers that hold it die, the
    scheduler makes it again from the task, where scattered data would be lost.
  * A worker that dies mid-task (killed, out of memory, its machine gone) costs that submission a
    new attempt on another worker; the scheduler, not us, keeps each task's result exactly once,
    and the client writes each submission once, when its task finishes. A task whose workers die
    ``distributed.scheduler.allowed-failures`` + 1 times (1 + 1 for ``local:N``; set it on your
    scheduler, see autograder/README.md) ends as KilledWorker: that submission is reported crashed.
  * Losing the scheduler stops the run with one line; what finished is saved, nothing is half-written.
  * Ctrl-C cancels the tasks not yet finished and keeps what was written.
"""
from __future__ import annotations

import hashlib
import logging
import os
import sys
import uuid
from pathlib import Path

from ..errors import CourseError
from ..grading.bundle import Bundle
from ..grading.grade import Graded, error_record, finished, grade_one, new_record
from ..grading.job import Limits
from .task import Task

INSTALL_HINT = "pip install 'ppo-course[cluster]' (Dask's distributed scheduler)"
LOCAL_CONFIG = {
    # A task is given up after 2 worker deaths (the first can be bad luck; the second is the submission).
    "distributed.scheduler.allowed-failures": 1,
    # Each worker holds only the tasks it runs: a worker that dies takes no queued task's "failure" along.
    "distributed.scheduler.worker-saturation": 1.0,
}
TASK_RETRIES = 2   # a task that raised (the bundle would not unpack on that worker) is tried again


def require_distributed() -> None:
    """One line saying what to install, where Dask is missing."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise CourseError(f"--dask needs Dask, which is not installed here: {INSTALL_HINT}") from None


def parse_local(address: str) -> int | None:
    """N for ``local:N``, None for a scheduler address; a one-line error for a malformed ``local:``."""
    if not address.startswith("local:"):
        return None
    count = address.split(":", 1)[1]
    if not count.isdigit() or int(count) < 1:
        raise CourseError(f"--dask local:N needs a number of worker processes of at least 1, got '{address}'")
    return int(count)


def local_cluster(workers: int):
    """``local:N``: a LocalCluster of N single-threaded worker processes on loopback, configured as a
    grading scheduler should be (LOCAL_CONFIG)."""
    import dask
    from distributed import LocalCluster

    with dask.config.set(LOCAL_CONFIG):
        return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                            dashboard_address=None, silence_logs=logging.ERROR)


def package_digest() -> str:
    """A digest of the installed course package: the client and every worker must grade with the same code."""
    import ppo_course

    root = Path(ppo_course.__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def worker_report(sandbox: bool, modules: tuple[str, ...] = ()) -> dict:
    """Run on each worker before grading: can it grade? Starts its forkserver (nbgrader, torch) meanwhile."""
    from ..grading.supervise import worker_context
    from ..sandbox.bubblewrap import probe

    problem = probe() if sandbox else None
    if problem is None:
        worker_context(modules)
    return {"sandbox": problem, "course": package_digest(), "python": sys.version.split()[0]}


class WorkerUnfit(RuntimeError):
    """This worker cannot grade (no sandbox here): the task fails, and the scheduler tries another worker."""


def grade_on_worker(bundle: Bundle, submission, limits: Limits) -> Graded:
    """The task: ``grade_one`` on a Dask worker, its log saying which worker graded it."""
    from distributed import get_worker

    from ..sandbox.bubblewrap import probe
    from ..sandbox.cgroups import Cgroups

    address = get_worker().address
    Cgroups.remove_orphans()   # what a worker killed here earlier left behind
    if limits.sandbox and probe():
        raise WorkerUnfit(f"worker {address}: {probe()}")
    graded = grade_one(bundle, submission, limits)
    if graded.log:   # (nothing ran for an unreadable file: no log, as here)
        graded.log = f"graded on Dask worker {address}\n" + graded.log
    return graded


def bundle_of(bundle: Bundle) -> Bundle:
    return bundle


class DaskRunner:
    """A connection to a Dask scheduler (and the LocalCluster behind ``local:N``), and the grading loop."""

    def __init__(self, address: str, limits: Limits, modules: tuple[str, ...] = ()):
        require_distributed()
        self.requested, self.limits, self.modules = address, limits, modules
        self.local = parse_local(address)
        self.cluster = self.client = None

    # ------------------------------------------------------------ connecting

    def __enter__(self) -> "DaskRunner":
        from distributed import Client

        self.quiet()
        try:
            if self.local is not None:
                self.cluster = local_cluster(self.local)
                self.client = Client(self.cluster, set_as_default=False)
            else:
                self.client = Client(self.requested, timeout=30, set_as_default=False)
        except (OSError, TimeoutError) as error:
            self.__exit__(None, None, None)
            raise CourseError(f"no Dask scheduler answered at {self.requested} ({error})") from None
        self.check_workers()
        return self

    def quiet(self) -> None:
        """Dask's own log lines off while we grade: what matters reaches the instructor as a record or one
        line (a lost scheduler, for one, is otherwise a page of tracebacks from its reconnection attempts)."""
        names = ["distributed"] + [n for n in logging.root.manager.loggerDict if n.startswith("distributed.")]
        self.log_levels = {name: logging.getLogger(name).level for name in names}
        for name in names:
            logging.getLogger(name).setLevel(logging.CRITICAL)

    @property
    def address(self) -> str:
        return self.client.scheduler.address if self.client else self.requested

    def check_workers(self) -> None:
        """Stop with one line when a worker cannot grade like this machine (no sandbox, other code)."""
        reports = self.client.run(worker_report, self.limits.sandbox, self.modules)
        ours = package_digest()
        for worker, report in sorted(reports.items()):
            if report["sandbox"]:
                raise CourseError(f"Dask worker {worker} cannot grade: {report['sandbox']}")
            if report["course"] != ours:
                raise CourseError(f"Dask worker {worker} has another version of the course installed "
                                  f"(ppo_course {report['course']}, here {ours}): install the same one everywhere")
        threads = sum(info["nthreads"] for info in self.client.scheduler_info()["workers"].values())
        print(f"grading on the Dask cluster at {self.address}: {len(reports)} worker(s), {threads} thread(s)"
              + ("" if reports else "; none yet: grading starts when one joins"), file=sys.stderr)

    def __exit__(self, *exc) -> None:
        if self.client is not None:
            try:
                self.client.close(timeout=10)
            except Exception:  # noqa: BLE001 - a lost scheduler cannot be told goodbye
                pass
        if self.cluster is not None:
            self.cluster.close(timeout=30)
        for name, level in getattr(self, "log_levels", {}).items():
            logging.getLogger(name).setLevel(level)

    # ------------------------------------------------------------ grading

    def __call__(self, tasks: list[Task], bundles: dict[str, Bundle], limits: Limits, done) -> None:
        from distributed import as_completed

        run = uuid.uuid4().hex[:8]   # keys unique to this run: a scheduler shared with another run keeps them apart
        shipped = {lesson: self.client.submit(bundle_of, bundle, key=f"bundle-{lesson}-{run}", pure=False)
                   for lesson, bundle in bundles.items() if any(t.assignment == lesson for t in tasks)}
        futures = {}
        for task in tasks:
            key = f"grade-{task.assignment}-{task.submission.student}-{run}"
            futures[self.client.submit(grade_on_worker, shipped[task.assignment], task.submission, limits, key=key,
                                       retries=TASK_RETRIES, pure=False)] = task
        finished_count = 0
        try:
            for future in as_completed(futures, loop=self.client.loop):
                task = futures.pop(future)
                done(task, self.outcome(future, task, bundles[task.assignment], limits, finished_count, len(tasks)))
                finished_count += 1
                future.release()
        except KeyboardInterrupt:
            self.client.cancel(list(futures), force=True)
            raise

    def outcome(self, future, task: Task, bundle: Bundle, limits: Limits, count: int, total: int) -> Graded:
        from distributed import KilledWorker

        try:
            return future.result()
        except KilledWorker as error:
            deaths = error.allowed_failures + 1
            record = new_record(bundle, task.submission, limits) | {
                "status": "crashed",
                "message": f"its grading killed {deaths} Dask workers (the last: {error.last_worker.address}), "
                           "killed or out of memory; not graded (see the workers' logs)"}
            return Graded(finished(record), log=str(error))
        except Exception as error:  # noqa: BLE001 - reported per student, or the run stops below
            if getattr(error, "reason", None) == "scheduler-connection-lost":
                raise CourseError(f"lost the Dask scheduler at {self.address}: {count} of {total} submissions "
                                  "graded and saved; run the same command again to grade the rest") from None
            if type(error).__name__ in ("CancelledError", "FutureCancelledError"):
                raise CourseError(f"the Dask scheduler at {self.address} cancelled grading ({error}); {count} of "
                                  f"{total} submissions graded and saved; run the same command again") from None
            return Graded(error_record(bundle, task.submission.student, f"{type(error).__name__}: {error}"))


def default_address(explicit: str | None, jobs_given: bool) -> str | None:
    """--dask, else DASK_SCHEDULER_ADDRESS unless --jobs asks for local grading."""
    if explicit:
        return explicit
    if not jobs_given:
        return os.environ.get("DASK_SCHEDULER_ADDRESS") or None
    return None
