"""The OS sandbox of a learner kernel, probed from inside and checked from outside.

Each test starts the kernel exactly as grading does (bubblewrap through launch.py, cgroups, limits)
and runs code in it the way a learner's answer cell would; what the test believes it checks from the
host, never from the kernel's word alone, wherever that can be done (listening sockets, processes,
files on the host).
"""
from __future__ import annotations

import os
import socket
import sys
import tempfile
import time
import uuid
from pathlib import Path
from queue import Empty

import psutil
import pytest

from ppo_course.autograder.sandbox.bubblewrap import KernelLayout, SandboxLimits
from ppo_course.autograder.sandbox.kernel import KernelLost, LearnerKernel, wait_until_ready
from ppo_course.autograder.sandbox.package import build_stubbed_package

import hostile
from conftest import RELEASE_CACHE, REPO

pytestmark = pytest.mark.slow   # starts sandboxed kernels

MiB = 2**20
PACKAGE_DIR = Path(__import__("ppo_course").__file__).resolve().parent   # the course's package, stubbed in the kernel


@pytest.fixture(scope="module")
def student_package(tmp_path_factory):
    package = tmp_path_factory.mktemp("pkg") / "ppo_course"
    build_stubbed_package({"clipped_surrogate", "clip_is_active", "ppo_policy_loss"}, package, PACKAGE_DIR,
                          "ppo_course")
    return package


def start_kernel(package: Path, **limits) -> LearnerKernel:
    run_dir = Path(tempfile.mkdtemp(prefix="ppo-test-run-", dir="/tmp"))
    data = Path(tempfile.mkdtemp(prefix="ppo-test-data-")) / "data.json"
    data.write_text('{"released": true}')
    layout = KernelLayout([data], "03-clipped-surrogate", run_dir, packages=[(package, PACKAGE_DIR)])
    settings = dict(memory_bytes=1024 * MiB, cpu_seconds=120, max_pids=64, scratch_bytes=32 * MiB) | limits
    kernel = LearnerKernel(layout, SandboxLimits(**settings))
    kernel.start()
    return kernel


@pytest.fixture(scope="module")
def kernel(sandbox, student_package):
    os.environ["PPO_GRADER_SECRET"] = "an LMS token"
    kernel = start_kernel(student_package)
    del os.environ["PPO_GRADER_SECRET"]
    yield kernel
    kernel.stop()


def run(kernel: LearnerKernel, code: str, timeout: float = 60) -> str:
    """What the cell printed (and the error it raised, as 'ERROR Name: message')."""
    result = kernel.run_cell(code, timeout)
    text = ""
    for output in result.outputs:
        if output.output_type == "stream":
            text += output.text
        elif output.output_type == "error":
            text += f"ERROR {output.ename}: {output.evalue}\n"
    return text


class SlowJoiningKernel:
    """A kernel client whose IOPub subscription reaches the kernel only after its third request: it answers
    every kernel_info on the shell channel, but publishes nothing we can see before then."""

    def __init__(self):
        self.requests, self.replies, self.published = 0, 0, False

    def kernel_info(self):
        self.requests += 1
        self.replies += 1

    def get_shell_msg(self, timeout):
        if not self.replies:
            raise Empty
        self.replies -= 1
        return {"msg_type": "kernel_info_reply"}

    def get_iopub_msg(self, timeout):
        if self.requests < 3 or self.published:
            raise Empty
        self.published = True
        return {"msg_type": "status"}


def test_a_kernel_is_ready_only_once_its_iopub_is_heard():
    """Under load a kernel answered on the shell channel before our IOPub subscription reached it: the first
    cell's outputs and its end were lost, and the cell was declared stuck after its time limit (two tests
    here failed that way on two workers). Ready means a reply and an IOPub message."""
    client = SlowJoiningKernel()
    wait_until_ready(client, lambda: None, timeout=30)
    assert client.requests == 3 and client.published, (
        f"ready after {client.requests} kernel_info request(s), IOPub heard: {client.published}")


def test_it_sees_the_runtime_and_its_home_and_nothing_else(kernel, tmp_path):
    canary = Path(tempfile.gettempdir()) / f"ppo-canary-{uuid.uuid4().hex}"
    canary.write_text("host")
    try:
        out = run(kernel, f"""
import os
print("top", sorted(os.listdir("/")))
print("home", sorted(n for n in os.listdir(os.path.expanduser("~")) if not n.startswith(".")), sorted(os.listdir(".")))
print("tmp", os.listdir("/tmp"))
for path in [{str(REPO / "solutions")!r}, {str(REPO / "lessons")!r}, {str(REPO / ".git")!r}, {str(canary)!r},
             {str(tmp_path)!r}, "/root/.ssh", "/etc/shadow", "/etc/passwd"]:
    print("exists", path, os.path.exists(path))
print("cwd", os.getcwd(), open("data.json").read())
""")
    finally:
        canary.unlink()
    seen = [line.split() for line in out.splitlines() if line.startswith("exists")]
    assert len(seen) == 8 and all(fields[-1] == "False" for fields in seen), out
    runtime_tops = {Path(path).parts[2] for path in (sys.prefix, sys.base_prefix, PACKAGE_DIR)
                    if str(path).startswith("/tmp/")}   # a runtime under /tmp (a clone there) shows through
    tmp_entries = eval(out.split("tmp ", 1)[1].splitlines()[0])
    assert set(tmp_entries) <= runtime_tops, tmp_entries
    assert "home ['03-clipped-surrogate'] ['data.json']" in out, (
        f"the kernel's home must hold only the lesson's folder, and that only the released data file:\n{out}")
    assert '{"released": true}' in out, f"the released data file must be readable in the kernel's folder:\n{out}"
    top = eval(out.splitlines()[0][4:])
    assert set(top) <= {"usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc", "proc", "dev", "tmp",
                        "home", "run", "opt", *Path(PACKAGE_DIR).parts[1:2], *Path(sys.base_prefix).parts[1:2],
                        *Path(sys.prefix).parts[1:2]}, top


def test_no_network_not_even_loopback(kernel):
    listeners = []
    for family, address in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        server = socket.socket(family, socket.SOCK_STREAM)
        server.bind((address, 0))
        server.listen(1)
        server.setblocking(False)
        listeners.append((server, address, server.getsockname()[1]))
    probes = "\n".join(f"""
s = socket.socket(socket.AF_INET{'6' if ':' in address else ''}, socket.SOCK_STREAM)
s.settimeout(3)
try:
    s.connect(({address!r}, {port}))
    print("connected", {address!r})
except OSError as error:
    print("refused" if isinstance(error, ConnectionRefusedError) else "unreachable", {address!r}, error)
""" for _, address, port in listeners)
    out = run(kernel, "import socket\n" + probes + """
try:
    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("127.0.0.1", 9))
    print("udp sent")
except OSError as error:
    print("udp failed", error)
print(socket.if_nameindex())
""")
    for server, _address, _ in listeners:
        with pytest.raises(BlockingIOError):
            server.accept()  # nobody ever connected
        server.close()
    assert "connected" not in out and "refused" not in out and "udp sent" not in out, out
    assert "unreachable 127.0.0.1 [Errno 101] Network is unreachable" in out, (
        f"connecting to a listener on the host's 127.0.0.1 must fail as unreachable: the kernel's own network "
        f"namespace has loopback down:\n{out}")


def test_the_runtime_and_the_package_are_read_only(kernel):
    out = run(kernel, f"""
import os, sys
for folder in [{str(PACKAGE_DIR)!r}, sys.prefix, sys.base_prefix, "/usr/lib", "/", "/etc", "/home"]:
    try:
        open(os.path.join(folder, "written-by-student.txt"), "w").write("x")
        print("wrote", folder)
    except OSError as error:
        print("refused", folder, type(error).__name__)
open("mine.txt", "w").write("home is writable")
print(open("mine.txt").read())
try:
    open("/run/grader/junk", "wb").write(b"x" * 8 * 2**20)
except OSError as error:
    print("run folder full:", error.strerror)
""")
    assert "wrote" not in out.replace("wrote /run", "") and "home is writable" in out, out
    assert "run folder full: No space left on device" in out, out
    assert sorted(p.name for p in kernel.layout.run_dir.iterdir()) == ["kernel.json", "launch.json"], (
        "nothing in the sandbox may write to a folder of the host")
    assert not (PACKAGE_DIR / "written-by-student.txt").exists(), (
        "the kernel wrote into the course package folder: the sandbox must mount it read-only")
    assert not list(PACKAGE_DIR.glob("__pycache__/*.student*")), (
        "the kernel left compiled files in the host's package folder: it must have been mounted read-only")


def test_other_processes_and_the_graders_environment_are_invisible(kernel):
    out = run(kernel, f"""
import os
pids = [p for p in os.listdir("/proc") if p.isdigit()]
print("pids", len(pids))
print("cmdlines", [open(f"/proc/{{p}}/cmdline", "rb").read().split(b"\\0")[0] for p in pids])
print("host pid visible", os.path.exists("/proc/{os.getpid()}/cmdline") and
      b"pytest" in open("/proc/{os.getpid()}/cmdline", "rb").read())
print("secret", "PPO_GRADER_SECRET" in os.environ, sorted(os.environ)[:3])
""")
    assert "host pid visible False" in out and "secret False" in out, out
    assert int(out.split("pids ")[1].split()[0]) < 10, out
    assert b"pytest".decode() not in out.split("cmdlines")[1], (
        f"the kernel read the host's pytest command line from /proc: it must have a PID namespace of its own:\n{out}")


def test_the_courses_reference_is_a_stub_with_no_source_to_read(kernel):
    out = run(kernel, """
import inspect, torch, ppo_course.clipping as clipping
try:
    clipping.clipped_surrogate(torch.ones(2), torch.ones(2))
except RuntimeError as error:
    print("stub:", error)
print("minimum in source:", "torch.minimum" in inspect.getsource(clipping))
from ppo_course.gae import compute_gae   # another lesson's reference is untouched
print("gae works:", compute_gae(torch.ones(2), torch.zeros(2), torch.zeros(2), torch.tensor(0.0))[0].tolist())
""")
    assert "stub: ppo_course.clipping.clipped_surrogate is the course's reference" in out, out
    assert "minimum in source: False" in out and "gae works: [1.94" in out, (
        f"the graded lesson's reference source must not be readable in the kernel, while another lesson's "
        f"reference (compute_gae) still works:\n{out}")


def test_no_nested_user_namespaces_and_limits_in_place(kernel):
    out = run(kernel, """
import resource, subprocess
print("unshare", subprocess.run(["unshare", "--user", "true"], capture_output=True).returncode)
print("cpu", resource.getrlimit(resource.RLIMIT_CPU), "fsize", resource.getrlimit(resource.RLIMIT_FSIZE)[0])
""")
    assert "unshare 0" not in out and "unshare" in out, out
    assert f"cpu (120, 125) fsize {32 * MiB}" in out, out


def test_nothing_it_starts_outlives_it(sandbox, student_package):
    kernel = start_kernel(student_package)
    token = f"ppo-survivor-{uuid.uuid4().hex}"
    try:
        run(kernel, hostile.survivor_spawner(token))
        assert len(survivors(token)) == 2, "the check must be able to see the processes"
    finally:
        kernel.stop()
    deadline = time.monotonic() + 10
    while survivors(token) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert survivors(token) == [], (
        "a double-forked daemon and a new-session subprocess outlived the kernel: stopping it must kill every "
        "process it started (its own PID namespace, --die-with-parent)")


def survivors(token: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if token in (process.info["cmdline"] or []) and process.status() != psutil.STATUS_ZOMBIE:
            found.append(process)
    return found


def test_resident_memory_is_limited_not_address_space(sandbox, student_package):
    """torch maps far more address space than it touches: under a 1 GiB address-space limit it could not even
    be imported; under 1 GiB of resident memory it imports and an answer may touch 400 MiB more."""
    kernel = start_kernel(student_package, memory_bytes=1024 * MiB)
    try:
        fits = run(kernel, "import torch, resource\nblock = torch.ones(100 * 2**20)  # 400 MiB\n"
                           "print('touched', block.numel() * 4 // 2**20, 'MiB')\ndel block\n"
                           "print('address space', "
                           "open('/proc/self/status').read().split('VmPeak:')[1].split()[0], 'kB')")
        if kernel.cgroups is None:   # the fallback, said so: an address-space limit
            assert "address space" in kernel.memory_limit, (
                f"without a memory cgroup the kernel must say its limit is on address space: {kernel.memory_limit!r}")
            return
        assert "touched 400 MiB" in fits and "resident (cgroup" in kernel.memory_limit, fits
        assert int(fits.split("address space ")[1].split()[0]) > 1024 * 1024, "torch's mappings exceed 1 GiB"
        with pytest.raises(KernelLost, match="more than 1 GB of memory"):
            run(kernel, "block = bytearray(1500 * 2**20)")
    finally:
        kernel.stop()


def test_processes_and_scratch_space_are_limited(sandbox, student_package):
    kernel = start_kernel(student_package, max_pids=32)
    try:
        out = run(kernel, hostile.process_spawner(200) + "for _child in _children:\n    _child.kill()\n"
                  + hostile.disk_filler(64))
        if kernel.cgroups is not None and kernel.cgroups.pids is not None:
            assert int(out.split("SPAWNED ")[1].split()[0]) < 32, f"the pids cgroup let it start more than 32:\n{out}"
        assert "FILLER stopped:" in out and "FILLER wrote" not in out, f"the scratch space must be limited:\n{out}"
    finally:
        kernel.stop()


def test_grade_stops_when_the_sandbox_cannot_run_unless_told(tmp_path, capsys, monkeypatch):
    from ppo_course.autograder.commands import client as grade_module
    from ppo_course.autograder.commands.cli import main

    folder = tmp_path / "course" / "submitted" / "alice" / "03-clipped-surrogate"
    folder.mkdir(parents=True)
    (folder / "03-clipped-surrogate.ipynb").write_text("{}")
    monkeypatch.setattr(grade_module, "probe", lambda: "grading in a sandbox needs bubblewrap (bwrap), which is "
                                                       "not installed; or pass --no-sandbox")
    assert main(["grade", "--course", str(tmp_path / "course"), "--no-progress"]) == 2, (
        "grade must refuse (exit 2) to run student code when the sandbox cannot start and --no-sandbox is not given")
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bubblewrap" in err and "--no-sandbox" in err, err


def test_probe_names_what_is_missing(monkeypatch):
    from ppo_course.autograder.sandbox import bubblewrap as sandbox

    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    assert ("needs bubblewrap (bwrap)" in sandbox.probe.__wrapped__()
            and "--no-sandbox" in sandbox.probe.__wrapped__()), (
        "with no bwrap on PATH the probe must say bubblewrap is needed and offer --no-sandbox")
    monkeypatch.setattr(sandbox.platform, "system", lambda: "Darwin")
    assert "needs Linux namespaces, and this is Darwin" in sandbox.probe.__wrapped__(), (
        "on another system the probe must say Linux namespaces are needed, naming the system")


def test_no_sandbox_grades_and_says_so_everywhere(tmp_path):
    import contextlib
    import io
    import json

    import nbformat

    from ppo_course.autograder.commands.cli import main

    from grading_helpers import solution_answers, submission

    lesson = "03-clipped-surrogate"
    folder = tmp_path / "course" / "submitted" / "bob" / lesson
    folder.mkdir(parents=True)
    nbformat.write(submission(lesson, solution_answers(lesson)), folder / f"{lesson}.ipynb")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["grade", "--course", str(tmp_path / "course"), "--no-progress", "--no-sandbox",
                     "--release-cache", str(RELEASE_CACHE)]) == 0, (
            f"grade --no-sandbox must grade a correct submission and exit 0:\n{out.getvalue()}")
    assert out.getvalue().startswith("WARNING: no sandbox (--no-sandbox): student code ran with the grader's rights"), (
        f"without a sandbox, grade's output must open with a warning that says so:\n{out.getvalue()}")
    assert "1 submission: 1 graded" in out.getvalue(), (
        f"the summary must count bob's one submission as graded:\n{out.getvalue()}")
    record = json.loads((tmp_path / "course" / "autograded" / "bob" / lesson / "result.json").read_text())
    assert record["total"] == 10 and record["isolation"].startswith("no sandbox (--no-sandbox)"), (
        f"bob's correct answers must earn 10 points, and his result must record that no sandbox was used: {record}")
    assert "address space" in record["memory_limit"], (
        f"without a sandbox the memory limit can only be on address space: {record['memory_limit']!r}")
