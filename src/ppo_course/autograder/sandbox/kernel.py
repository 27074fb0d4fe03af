"""One learner kernel for one submission: started (sandboxed or not), given cells, watched, stopped.

The kernel is an ordinary ipykernel, so answer cells run exactly as in the learner's notebook (magics,
display, IPython itself). It speaks the Jupyter protocol over IPC sockets in the sandbox's own
``/run/grader`` (a small tmpfs), which the grader reaches from outside as ``/proc/<pid>/root/run/grader``;
the grader also listens there on ``bridge.sock``, where the kernel connects while a test cell runs
(``bridge.serve``). So the sandbox needs no writable folder of the host. Each kernel runs cells under
a time limit: at the limit it is interrupted, and if it still does not answer it is declared stuck;
a kernel whose process exits is declared dead, with the reason (the memory cgroup's OOM count) when
there is one.
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty

import nbformat
from jupyter_client import BlockingKernelClient
from jupyter_client.connect import write_connection_file

from ..errors import EndsWithStatus
from .bubblewrap import (
    BRIDGE_DIR,
    BRIDGE_PACKAGE,
    SANDBOX_RUN,
    KernelLayout,
    SandboxLimits,
    bwrap_argv,
    launch_command,
    rlimits,
    sandbox_env,
)
from .cgroups import Cgroups

SAFE_MIME = ("text/plain", "image/png", "image/jpeg")   # no HTML or JavaScript from student code in feedback
INTERRUPT_GRACE = 5.0
MAX_OUTPUT_CHARS = 256 * 2**10          # of one cell's outputs kept: a cell that prints without end fills no memory
MAX_NOTEBOOK_OUTPUT_CHARS = 2**20       # of all cells' outputs: what one submission can add to its graded notebook
PORTS = dict(shell_port=1, iopub_port=2, stdin_port=3, control_port=4, hb_port=5)


class KernelLost(EndsWithStatus, BaseException):
    """The kernel died or stopped answering; ``status`` is 'crashed' or 'timeout'. Not an Exception, so
    that no ``except Exception`` in a test can hide it."""


@dataclass
class CellRun:
    outputs: list
    timed_out: bool = False


@dataclass
class LearnerKernel:
    """A kernel for one submission; ``sandboxed=False`` is --no-sandbox (same limits, no namespaces)."""
    layout: KernelLayout
    limits: SandboxLimits
    sandboxed: bool = True
    log_path: Path | None = None
    process: subprocess.Popen | None = None
    client: BlockingKernelClient | None = None
    cgroups: Cgroups | None = None
    listener: socket.socket | None = None
    finished: set[str] = field(default_factory=set)   # requests whose 'idle' status has been read
    output_left: int = MAX_NOTEBOOK_OUTPUT_CHARS       # what later cells may still keep of their outputs

    # ------------------------------------------------------------ lifecycle

    @property
    def memory_limit(self) -> str:
        gb = f"{self.limits.memory_bytes / 2**30:g} GB"
        if self.cgroups:
            return f"{gb} resident (cgroup v{self.cgroups.version})"
        return f"{gb} of address space (no memory cgroup available here)"

    @property
    def inner_run_dir(self) -> str:
        """The run folder as the kernel sees it: the sandbox's own /run/grader, or the host folder without one."""
        return SANDBOX_RUN if self.sandboxed else str(self.layout.run_dir)

    def start(self, ready_timeout: float = 60.0) -> None:
        run = self.layout.run_dir
        connection = run / "kernel.json"
        write_connection_file(str(connection), transport="ipc", ip=f"{self.inner_run_dir}/k", **PORTS)
        if self.sandboxed:
            sockets = self._start_sandboxed(connection, ready_timeout)
        else:
            self.process = self._start_unsandboxed(connection)
            sockets = run
        client = BlockingKernelClient()
        client.load_connection_info(json.loads(connection.read_text()) | {"ip": str(sockets / "k")})
        client.start_channels()
        self.client = client
        wait_until_ready(client, self.check_alive, ready_timeout)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(sockets / "bridge.sock"))   # where bridge.serve connects, in the kernel's folder
        self.listener.listen(1)

    def kernel_command(self, connection: str) -> list[str]:
        return [sys.executable, "-m", "ipykernel_launcher", "-f", connection,
                "--HistoryManager.hist_file=:memory:", "--IPKernelApp.log_level=ERROR"]

    def _start_sandboxed(self, connection: Path, timeout: float) -> Path:
        """Start bwrap through launch.py; returns the host path of the sandbox's SANDBOX_RUN."""
        self.cgroups = Cgroups.create(self.limits.memory_bytes, self.limits.max_pids)
        info_read, info_write = os.pipe()
        connection_fd = os.open(connection, os.O_RDONLY)
        argv = bwrap_argv(self.layout, self.limits, self.kernel_command(f"{SANDBOX_RUN}/kernel.json"),
                          privileged=os.geteuid() == 0, connection_fd=connection_fd, info_fd=info_write)
        command = launch_command(self.layout.run_dir / "launch.json", argv, self.limits, self.cgroups)
        with open(self.log_path or os.devnull, "ab") as log:
            self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                            pass_fds=(info_write, connection_fd), start_new_session=True)
        os.close(info_write)
        os.close(connection_fd)
        with os.fdopen(info_read, "rb") as info:
            pid = _sandbox_pid(info, timeout)
        if pid is None:
            self.process.wait(timeout=10)
            raise KernelLost("crashed", "the sandbox did not start: " + self._last_log_line())
        return Path(f"/proc/{pid}/root{SANDBOX_RUN}")

    def _last_log_line(self) -> str:
        lines = self.log_path.read_text(errors="replace").splitlines() if self.log_path else []
        return next((line for line in reversed(lines) if line.strip()), "no message")[:300]

    def _start_unsandboxed(self, connection: Path) -> subprocess.Popen:
        """--no-sandbox: the same kernel, its environment cleared and its limits set, but no isolation."""
        import resource

        limits = rlimits(self.limits, address_space=True)
        names = {"cpu": resource.RLIMIT_CPU, "fsize": resource.RLIMIT_FSIZE, "core": resource.RLIMIT_CORE,
                 "nofile": resource.RLIMIT_NOFILE, "as": resource.RLIMIT_AS}
        workdir = self.layout.run_dir / "home" / self.layout.assignment
        workdir.mkdir(parents=True, exist_ok=True)
        for path in self.layout.data_files:
            (workdir / path.name).write_bytes(path.read_bytes())
        lib = self.layout.run_dir / "lib"   # the bridge, importable as in the sandbox
        lib.mkdir(exist_ok=True)
        (lib / BRIDGE_PACKAGE).symlink_to(BRIDGE_DIR, target_is_directory=True)
        env = sandbox_env(self.layout) | {"HOME": str(workdir.parent), "TMPDIR": str(workdir.parent),
                                          "MPLCONFIGDIR": str(workdir.parent / ".matplotlib"), "PYTHONPATH": str(lib)}

        def limit():
            for name, value in limits.items():
                soft, hard = value if isinstance(value, list) else (value, value)
                resource.setrlimit(names[name], (soft, hard))

        with open(self.log_path or os.devnull, "ab") as log:
            return subprocess.Popen(self.kernel_command(str(connection)), stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=log, cwd=workdir, env=env, preexec_fn=limit, start_new_session=True)

    def check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise KernelLost("crashed", self.death_reason())

    def death_reason(self) -> str:
        if self.cgroups and self.cgroups.oom_kills():
            return f"the kernel was killed for using more than {self.limits.memory_bytes / 2**30:g} GB of memory"
        code = self.process.returncode if self.process else None
        if code is not None and code < 0:
            return f"the kernel died (signal {-code})"
        return f"the kernel died (os._exit, a crash, or out of memory; exit status {code})"

    def stop(self) -> None:
        if self.client is not None:
            with contextlib.suppress(Exception):
                self.client.stop_channels()
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, 9)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=10)
        if self.cgroups:
            self.cgroups.remove()
        if self.listener is not None:
            self.listener.close()

    def interrupt(self) -> None:
        message = self.client.session.msg("interrupt_request", content={})
        self.client.control_channel.send(message)

    # ------------------------------------------------------------ cells

    def run_cell(self, source: str, timeout: float) -> CellRun:
        """Execute ``source`` like a notebook cell; outputs as nbformat outputs (safe MIME types only)."""
        msg_id = self.client.execute(source, store_history=True, allow_stdin=False)
        return self.collect(msg_id, timeout)

    def _note_idle(self, message: dict) -> bool:
        """Remember a request as finished when its 'idle' status arrives; True for status messages."""
        if message["msg_type"] != "status":
            return False
        if message["content"].get("execution_state") == "idle":
            self.finished.add(message["parent_header"].get("msg_id"))
        return True

    def is_finished(self, msg_id: str) -> bool:
        """Read what the kernel has published so far; True once the request ``msg_id`` is done."""
        while msg_id not in self.finished:
            try:
                self._note_idle(self.client.get_iopub_msg(timeout=0))
            except Empty:
                break
        return msg_id in self.finished

    def start_silent(self, code: str) -> str:
        return self.client.execute(code, silent=True, store_history=False, allow_stdin=False)

    def collect(self, msg_id: str, timeout: float, keep_outputs: bool = True,
                stuck: str = "a cell kept running after it was interrupted at the {timeout:.0f} s limit "
                              "(a loop that ignores Ctrl-C?)") -> CellRun:
        """Gather a request's outputs until the kernel is idle; interrupt at ``timeout``; KernelLost if it never is."""
        run = CellRun([])
        deadline, interrupted = time.monotonic() + timeout, False
        kept, budget = 0, min(MAX_OUTPUT_CHARS, self.output_left)
        while msg_id not in self.finished:
            self.check_alive()
            if time.monotonic() > deadline:   # checked on every message: a cell that prints forever ends too
                if interrupted:
                    raise KernelLost("timeout", stuck.format(timeout=timeout))
                self.interrupt()
                interrupted, run.timed_out = True, True
                deadline = time.monotonic() + INTERRUPT_GRACE
            try:
                message = self.client.get_iopub_msg(timeout=0.1)
            except Empty:
                continue
            if self._note_idle(message) or message["parent_header"].get("msg_id") != msg_id:
                continue
            if keep_outputs and kept < budget:
                size = len(json.dumps(message["content"]))
                kept += size
                if kept <= budget:
                    _add_output(run.outputs, message)
                else:
                    run.outputs.append(nbformat.v4.new_output("stream", name="stdout",
                                                              text="\n... output truncated by the grader ...\n"))
        self.output_left = max(0, self.output_left - kept)
        if run.timed_out:
            run.outputs.append(nbformat.v4.new_output(
                "error", ename="CellTimeoutError", evalue=f"stopped after {timeout:.0f} s",
                traceback=[f"CellTimeoutError: the cell ran longer than {timeout:.0f} s and was interrupted"]))
        return run


def _sandbox_pid(info, timeout: float) -> int | None:
    """The host pid of the sandbox's first process, from bwrap's --info-fd (None if bwrap failed)."""
    import select

    data, deadline = b"", time.monotonic() + timeout
    while b"}" not in data and time.monotonic() < deadline:
        ready, _, _ = select.select([info], [], [], 0.5)
        if ready:
            chunk = os.read(info.fileno(), 4096)
            if not chunk:
                break
            data += chunk
    try:
        return int(json.loads(data[: data.index(b"}") + 1])["child-pid"])
    except (ValueError, KeyError):
        return None


def wait_until_ready(client, check_alive, timeout: float) -> None:
    """Ask for the kernel's info until both its reply and a message on IOPub arrive. A reply alone is not
    enough: until the kernel's IOPub has taken our subscription (ZeroMQ's slow joiner, slower on a loaded
    machine), what it publishes is lost, and a cell whose end we then never saw would be declared stuck.
    (jupyter_client's own wait_for_ready checks IOPub the same way.)"""
    deadline = time.monotonic() + timeout
    while True:
        check_alive()
        client.kernel_info()
        try:
            client.get_shell_msg(timeout=1.0)
            client.get_iopub_msg(timeout=0.5)   # the kernel's status for that request
            break
        except Empty:
            if time.monotonic() > deadline:
                raise KernelLost("crashed", f"the kernel did not start within {timeout:.0f} s") from None
    _drain(client)


def _drain(client: BlockingKernelClient) -> None:
    with contextlib.suppress(Empty):
        while True:
            client.get_iopub_msg(timeout=0.05)


def _add_output(outputs: list, message: dict) -> None:
    kind, content = message["msg_type"], message["content"]
    if kind == "stream":
        if outputs and outputs[-1].get("output_type") == "stream" and outputs[-1].get("name") == content["name"]:
            outputs[-1]["text"] += content["text"]
        else:
            outputs.append(nbformat.v4.new_output("stream", name=content["name"], text=content["text"]))
    elif kind in ("display_data", "execute_result"):
        data = {mime: value for mime, value in content.get("data", {}).items() if mime in SAFE_MIME}
        if data:
            output = nbformat.v4.output_from_msg(message)
            output["data"] = nbformat.from_dict(data)
            output["metadata"] = nbformat.from_dict({})
            outputs.append(output)
    elif kind == "error":
        outputs.append(nbformat.v4.output_from_msg(message))
    elif kind == "clear_output":
        outputs.clear()
