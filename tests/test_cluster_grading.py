"""Grading on a Dask cluster gives what grading here gives, and survives what clusters do.

  * a class of 22 lesson-03 submissions (correct, wrong, blank, crashing, hanging, unreadable, missing)
    is graded with ``--jobs 2`` and with ``--dask local:2``: every record, file and summary line agrees;
  * a worker killed in the middle of a submission costs it a retry elsewhere, graded (and written)
    exactly once; a submission whose workers die twice is reported crashed with the reason;
  * a scheduler that disappears (real ``dask scheduler`` / ``dask worker`` commands on loopback, found
    through DASK_SCHEDULER_ADDRESS) stops the run with one line, nothing half-written;
  * Ctrl-C cancels what is left, keeps what was written, and leaves no process behind; a worker or a
    grade command killed outright takes its grading (kernel, sandbox) with it within seconds;
  * the grading function itself is pure: bundle and bytes in, records and bytes out, no course folder.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import psutil
import pytest

from ppo_course.autograder.commands import client as grading
from ppo_course.autograder.commands.cli import main
from ppo_course.autograder.commands.client import grade
from ppo_course.autograder.commands.folder import Course
from ppo_course.autograder.grading.bundle import Bundle, prepare
from ppo_course.autograder.grading.grade import Submission, SubmittedFile, grade_one
from ppo_course.autograder.grading.job import Limits

from conftest import RELEASE_CACHE, REPO
from grading_helpers import solution_answers, submission, with_edit
from lesson03_class import EXPECTED as CLASS_EXPECTED
from lesson03_class import LIMITS as CLASS_LIMITS
from lesson03_class import graded_class_once

LESSON = "03-clipped-surrogate"
FULL = {"clipped_surrogate_tests": 4.0, "clip_is_active_tests": 3.0, "ppo_policy_loss_tests": 3.0}
ZERO = dict.fromkeys(FULL, 0.0)
CELL_TIMEOUT = 8   # short for the hanging submissions, long enough for the rest on a loaded 2-core machine
LIMIT_FLAGS = ["--cell-timeout", str(CELL_TIMEOUT), "--timeout", "120", "--memory-gb", "2", "--max-processes", "64",
               "--scratch-mb", "64", "--no-progress", "--release-cache", str(RELEASE_CACHE)]
VOLATILE = ("graded_at", "seconds")   # when and how long: the only fields two gradings may differ in


def to_bytes(nb) -> bytes:
    return nbformat.writes(nb).encode()


def answers_with(**changes) -> bytes:
    return to_bytes(submission(LESSON, dict(solution_answers(LESSON), **changes)))


def wrong(exercise: str, correct: str, mistake: str) -> bytes:
    return to_bytes(submission(LESSON, with_edit(solution_answers(LESSON), exercise,
                                                 lambda s: s.replace(correct, mistake))))


def hand_in(root: Path, files: dict[str, tuple[str, bytes]]) -> Course:
    course = Course(root)
    for student, (name, data) in files.items():
        folder = course.submitted / student / LESSON
        folder.mkdir(parents=True)
        (folder / name).write_bytes(data)
    return course


def cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(list(argv))
    return code, out.getvalue()


def results(course: Course) -> dict[str, dict]:
    return {student: {k: v for k, v in record.items() if k not in VOLATILE}
            for student, record in course.results(LESSON).items()}


def folder_files(course: Course) -> dict[str, list[str]]:
    return {p.name: sorted(f.name for f in (p / LESSON).iterdir()) for p in course.autograded.iterdir()}


def leftovers(course: Course) -> list[str]:
    incoming = course.root / ".grading-cache" / "incoming"
    return sorted(p.name for p in incoming.iterdir()) if incoming.exists() else []


# ------------------------------------------------------------------ fast: flags, purity


def test_dask_flag_without_dask_says_what_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "distributed", None)   # as if the cluster extra were not installed
    code = main(["grade", "--course", str(tmp_path), "--dask", "local:2"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0, f"--dask without Dask must be one line and exit 2: {code} {err!r}"
    assert "pip install 'ppo-course[cluster]'" in err, f"the line must say what to install: {err!r}"


@pytest.mark.parametrize("argv, message", [
    (["--dask", "local:0"], "at least 1"), (["--dask", "local:two"], "at least 1"),
    (["--dask", "local:2", "--jobs", "2"], "give one of them")])
def test_bad_dask_flags_are_one_line(tmp_path, capsys, argv, message):
    code = main(["grade", "--course", str(tmp_path), *argv])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and "\n" not in err, f"{argv}: one line, exit 2, saying '{message}': {err!r}"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return prepare(LESSON, REPO / "solutions", RELEASE_CACHE)


@pytest.mark.slow   # releases the lesson with nbgrader (seconds)
def test_grading_is_a_function_of_the_bundle_and_the_bytes(bundle, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    graded = grade_one(bundle, one_file(b"{not json"), Limits())
    assert graded.record["status"] == "unreadable" and graded.notebooks == {}, graded.record
    assert graded.record["total"] == 0 and graded.record["max"] == 10, graded.record
    assert list(tmp_path.iterdir()) == [], "grading one submission must write nothing where it runs"
    damaged = Bundle(bundle.contract, bundle.settings, bundle.source_sha256, bundle.digest, bundle.data[:-10])
    with pytest.raises(ValueError, match="damaged"):
        grade_one(damaged, one_file(b"{}"), Limits())


def one_file(data: bytes) -> Submission:
    return Submission("s1", {f"{LESSON}.ipynb": SubmittedFile(f"{LESSON}.ipynb", data)})


# ------------------------------------------------------------------ a class, here and on a cluster


@pytest.fixture(scope="module")
def two_gradings(tmp_path_factory, sandbox):
    """Lesson 03's class of every kind of submission (lesson03_class: collected and graded here once per run,
    with --jobs 2), graded again on a Dask cluster from a copy of the same collected course."""
    local = graded_class_once()
    here = Course(local["course"])
    there = Course(tmp_path_factory.mktemp("cluster-class") / "course")
    shutil.copytree(here.submitted, there.submitted)
    shutil.copy(here.collected_log, there.collected_log)
    limits = [flag for flag, previous in zip(CLASS_LIMITS, ["", *CLASS_LIMITS]) if "--jobs" not in (flag, previous)]
    flags = [*limits, "--no-progress", "--release-cache", str(RELEASE_CACHE)]
    outputs = {"here": local["outputs"]["grade"],
               "there": cli("grade", "--course", str(there.root), *flags, "--dask", "local:2")}
    again = cli("grade", "--course", str(there.root), *flags, "--dask", "local:2", "--student", "101")
    return {"here": here, "there": there, "outputs": outputs, "again": again}


@pytest.mark.slow
def test_a_cluster_grades_the_class_as_this_machine_does(two_gradings):
    here, there = two_gradings["here"], two_gradings["there"]
    assert {k: code for k, (code, _) in two_gradings["outputs"].items()} == {"here": 0, "there": 0}, (
        f"both gradings must exit 0: {two_gradings['outputs']}")
    local, remote = results(here), results(there)
    assert {s for s, r in local.items()} == set(CLASS_EXPECTED), "the local grading's checks are test_autograder_class"
    differ = {s: (local[s], remote.get(s)) for s in local if local[s] != remote.get(s)}
    assert differ == {} and len(remote) == len(local) == len(CLASS_EXPECTED), (
        f"every record from the cluster must equal the local one but for its time: {differ}")
    assert folder_files(here) == folder_files(there), (
        "each student's autograded folder must hold the same files (notebook, gradebook, log, result)")
    assert two_gradings["outputs"]["here"][1] == two_gradings["outputs"]["there"][1], (
        "the summary printed after a cluster run must be the one printed after a local run")
    log = (there.autograded / "101" / LESSON / "grading.log").read_text()
    assert log.startswith("graded on Dask worker tcp://127.0.0.1:"), f"grading.log must say which worker: {log[:200]}"
    assert leftovers(there) == [] and leftovers(here) == [], "no staged folder may be left behind"
    assert tree(there.submitted) == tree(here.submitted), "a submitted file changed while the cluster graded"


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_a_cluster_run_skips_what_was_graded(two_gradings):
    code, out = two_gradings["again"]
    assert code == 0 and "1 submission: 1 graded (1 unchanged since the last run, not regraded)" in out, (
        f"--student 101 again, unchanged: it must be skipped on the cluster as here:\n{out}")


# ------------------------------------------------------------------ faults


def kernels_under(pid: int) -> list[psutil.Process]:
    """The grading processes under a Dask worker while it grades (its sandboxed kernel is running)."""
    try:
        family = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    names = set()
    for member in family:
        with contextlib.suppress(psutil.Error):
            names.add(member.name())
    return family if "bwrap" in names else []


def worker_pids(cluster) -> dict[str, int]:
    """{worker address: pid} of a LocalCluster's worker processes (from their nannies; one restarting has none)."""
    pids = {}
    for nanny in list(cluster.workers.values()):
        with contextlib.suppress(AttributeError):
            if nanny.worker_address and nanny.process.process.pid:
                pids[nanny.worker_address] = nanny.process.process.pid
    return pids


@pytest.mark.slow
def test_a_killed_worker_costs_a_retry_and_each_submission_is_graded_once(tmp_path, sandbox, monkeypatch):
    from distributed import Client

    from ppo_course.autograder.commands.cluster import local_cluster

    slow = answers_with(clip_is_active=solution_answers(LESSON)["clip_is_active"] + "\nimport time\ntime.sleep(12)\n")
    files = {f"good-{i}": (f"{LESSON}.ipynb", answers_with()) for i in range(4)}
    files |= {"victim": (f"{LESSON}.ipynb", slow), "killer": (f"{LESSON}.ipynb", slow),
              "blank": (f"{LESSON}.ipynb", to_bytes(submission(LESSON, {})))}
    course = hand_in(tmp_path / "course", files)
    writes: dict[str, int] = {}
    keep = grading.keep

    def counted(course, record, *args, **kwargs):
        writes[record["student"]] = writes.get(record["student"], 0) + 1
        return keep(course, record, *args, **kwargs)

    monkeypatch.setattr(grading, "keep", counted)
    limits = Limits(cell_timeout=20, timeout=90, memory_gb=2.0, max_processes=64, scratch_mb=64)
    kills = {"victim": [], "killer": []}   # (worker address, its grading processes) per kill
    to_check: list[tuple[float, list[psutil.Process]]] = []   # (when, a killed worker's grading processes)
    survivors: list[int] = []
    with local_cluster(2) as cluster, Client(cluster, set_as_default=False) as client:
        outcome: dict = {}
        runner = threading.Thread(target=lambda: outcome.update(records=grade(
            course, [LESSON], limits, jobs=1, progress=False, dask=cluster.scheduler_address,
            release_cache=RELEASE_CACHE)))
        runner.start()
        deadline = time.monotonic() + 600
        while runner.is_alive() and time.monotonic() < deadline:
            pids = worker_pids(cluster)
            for worker, keys in client.processing().items():
                for student, wanted in (("victim", 1), ("killer", 2)):
                    if len(kills[student]) < wanted and any(f"-{student}-" in k for k in keys) and worker in pids:
                        family = kernels_under(pids[worker])
                        if family and all(worker != w for w, _ in kills[student]):
                            os.kill(pids[worker], signal.SIGKILL)   # mid-task: its kernel is running
                            kills[student].append((worker, family))
                            to_check.append((time.monotonic() + 4, grading_processes(family)))   # its sleep runs on
            while to_check and to_check[0][0] < time.monotonic():
                survivors += still_running(to_check.pop(0)[1])
            time.sleep(0.3)
        runner.join(timeout=5)
        for when, family in to_check:
            time.sleep(max(0.0, when - time.monotonic()))
            survivors += still_running(family)
    assert "records" in outcome, "grading must finish after its workers were killed"
    assert [len(kills["victim"]), len(kills["killer"])] == [1, 2], (
        f"the test must have killed the victim's worker once and the killer's twice mid-task: {kills}")
    records = {r["student"]: r for r in outcome["records"]}
    assert writes == dict.fromkeys(files, 1), f"every submission must be written exactly once: {writes}"
    assert {s: (r["status"], r["scores"]) for s, r in records.items() if s != "killer"} == {
        **{f"good-{i}": ("graded", FULL) for i in range(4)}, "victim": ("graded", FULL), "blank": ("graded", ZERO)}, (
        "the submissions on a killed worker must be graded on another one as if nothing happened")
    victim_log = (course.autograded / "victim" / LESSON / "grading.log").read_text()
    assert kills["victim"][0][0] not in victim_log.splitlines()[0], (
        f"the victim must have been graded again on another worker: {victim_log.splitlines()[0]}")
    killer = records["killer"]
    assert killer["status"] == "crashed" and "killed 2 Dask workers" in killer["message"], (
        f"a submission whose grading lost two workers must be reported crashed, saying so: {killer}")
    assert survivors == [], f"the grading processes of a killed worker must die with it, within 4 s: {survivors}"
    everything = [p for _, family in kills["victim"] + kills["killer"] for p in family]
    wait_for(lambda: not still_running(everything), 60, "a killed worker's forkserver to exit")


@pytest.mark.slow
def test_a_killed_grade_command_takes_its_grading_with_it(tmp_path, sandbox):
    slow = answers_with(clip_is_active=solution_answers(LESSON)["clip_is_active"] + "\nimport time\ntime.sleep(30)\n")
    course = hand_in(tmp_path / "course", {"slow": (f"{LESSON}.ipynb", slow)})
    grader = subprocess.Popen(grading_command(course, "--jobs", "1"), env=tool_env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    family: list[psutil.Process] = []
    try:
        wait_for(lambda: family.extend(kernels_under(grader.pid)) or family or grader.poll() is not None,
                 120, "the sandboxed kernel")
    finally:
        grader.kill()   # SIGKILL: nothing of the grader's own runs after this
        grader.wait()
    assert family, "the grader must have started a sandboxed kernel before it was killed"
    time.sleep(4)   # the kernel would sleep on for 30 s if nothing watched the grader
    survivors = still_running(grading_processes(family))
    assert survivors == [], f"a killed grade command's grading processes must die with it: {survivors}"
    wait_for(lambda: not still_running(family), 60, "the killed grader's forkserver to exit")


def still_running(processes: list[psutil.Process]) -> list[int]:
    alive = []
    for process in processes:
        with contextlib.suppress(psutil.Error):
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                alive.append(process.pid)
    return alive


def grading_processes(family: list[psutil.Process]) -> list[psutil.Process]:
    """A worker's processes but its forkserver (which, with torch loaded, takes seconds to exit)."""
    def is_server(process: psutil.Process) -> bool:
        with contextlib.suppress(psutil.Error):
            return "multiprocessing.forkserver" in " ".join(process.cmdline())
        return False
    return [process for process in family if not is_server(process)]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def grading_command(course: Course, *extra: str) -> list[str]:
    return [sys.executable, "-m", "ppo_course.autograder", "grade", "--course", str(course.root), *LIMIT_FLAGS,
            *extra]


def tool_env(**extra: str) -> dict[str, str]:
    return dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"], **extra)


@contextlib.contextmanager
def sigint_as_at_a_terminal():
    """Children inherit SIGINT ignored where this process ignores it: a shell ignores it in background jobs
    (``.ci/run &``), and Python then never raises KeyboardInterrupt, so Ctrl-C cannot reach the grader. A
    command typed at a terminal has the default; give the children started here that one."""
    ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    if ignored:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        yield
    finally:
        if ignored:
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def assert_whole(course: Course) -> None:
    """Every autograded folder is a complete grading; no staged copy is visible."""
    for folder in course.autograded.glob(f"*/{LESSON}"):
        names = {p.name for p in folder.iterdir()}
        record = json.loads((folder / "result.json").read_text())
        assert record["status"] != "graded" or {f"{LESSON}.ipynb", "gradebook.db", "grading.log"} <= names, (
            f"{folder} is half-written: {names}")
    assert not list(course.autograded.glob("*/.*")), "a staging folder is visible under autograded/"


@pytest.mark.slow
def test_losing_the_scheduler_stops_with_one_line(tmp_path, sandbox):
    files = {f"s{i}": (f"{LESSON}.ipynb", answers_with()) for i in range(8)}
    course = hand_in(tmp_path / "course", files)
    address = f"tcp://127.0.0.1:{free_port()}"
    env = tool_env(DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES="1",
                   DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION="1.0")
    dask = str(Path(sys.executable).parent / "dask")
    scheduler = subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1],
                                  "--no-dashboard"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers = subprocess.Popen([dask, "worker", address, "--host", "127.0.0.1", "--nworkers", "2", "--nthreads", "1",
                                "--no-dashboard"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    try:
        grader = subprocess.Popen(grading_command(course), env=tool_env(DASK_SCHEDULER_ADDRESS=address),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: list(course.autograded.glob(f"*/{LESSON}/result.json")) or grader.poll() is not None,
                 300, "the first graded submission")
        scheduler.kill()
        out, err = grader.communicate(timeout=120)
    finally:
        scheduler.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(workers.pid, signal.SIGKILL)
        workers.wait()
    lines = [line for line in err.splitlines() if line.strip()]
    assert grader.returncode == 2, f"losing the scheduler must exit 2:\n{err}"
    assert lines[0].startswith(f"grading on the Dask cluster at {address}"), (
        f"DASK_SCHEDULER_ADDRESS must be where it grades: {lines[:1]}")
    assert len(lines) == 2 and lines[1].startswith(f"error: lost the Dask scheduler at {address}: ") and (
        "graded and saved; run the same command again" in lines[1]), f"one line, saying what to do:\n{err}"
    assert_whole(course)


@pytest.mark.slow
def test_ctrl_c_cancels_the_rest_and_keeps_what_finished(tmp_path, sandbox):
    files = {f"s{i:02d}": (f"{LESSON}.ipynb", answers_with()) for i in range(12)}
    course = hand_in(tmp_path / "course", files)
    with sigint_as_at_a_terminal():
        grader = subprocess.Popen(grading_command(course, "--dask", "local:2"), env=tool_env(),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    family: dict[int, psutil.Process] = {}

    def first_written() -> bool:
        with contextlib.suppress(psutil.NoSuchProcess):
            family.update({p.pid: p for p in psutil.Process(grader.pid).children(recursive=True)})
        return bool(list(course.autograded.glob(f"*/{LESSON}/result.json"))) or grader.poll() is not None

    wait_for(first_written, 300, "the first graded submission")
    ended = grader.poll()
    grader.send_signal(signal.SIGINT)
    out, err = grader.communicate(timeout=120)
    graded = list(course.autograded.glob(f"*/{LESSON}/result.json"))
    assert ended is None, (f"the grader ended (exit {ended}) before the test could interrupt it, {len(graded)} of "
                           f"{len(files)} graded:\n{out[-1000:]}{err[-1000:]}")
    assert grader.returncode == 130 and "interrupted: submissions graded so far are saved" in err, (
        f"Ctrl-C must stop with exit 130 and say what was kept ({len(graded)} of {len(files)} graded):\n"
        f"{out[-1000:]}{err[-2000:]}")
    assert 1 <= len(graded) < len(files), f"what finished is kept, the rest is not graded: {len(graded)} written"
    assert_whole(course)
    wait_for(lambda: not [p for p in family.values() if p.is_running() and p.status() != psutil.STATUS_ZOMBIE],
             30, f"the cluster's processes to end after Ctrl-C: {sorted(family)}")
