"""One learner kernel for one submission: started (sandboxed or not), given cells, watched, stopped.

The kernel is an ordinary ipykernel, so answer cells run exactly as in the learner's notebook (magics,
display, IPython itself). It speaks the Jupyter protocol over IPC sockets in its run folder; the
grader also listens there on ``bridge.sock``, where the kernel connects while a test cell runs
(``bridge.serve``). Each kernel runs cells under a time limit: at the limit it is interrupted, and
if it still does not answer it is declared stuck; a kernel whose process exits is declared dead,
with the reason (the memory cgroup's OOM count) when there is one.
"""
from __future__ import annotations

import contextlib
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

from .cgroups import Cgroups
from .sandbox import SANDBOX_RUN, KernelLayout, SandboxLimits, bwrap_argv, launch_command, sandbox_env

SAFE_MIME = ("text/plain", "image/png", "image/jpeg")   # no HTML or JavaScript from student code in feedback
INTERRUPT_GRACE = 5.0
PORTS = dict(shell_port=1, iopub_port=2, stdin_port=3, control_port=4, hb_port=5)


class KernelLost(BaseException):
    """The kernel died or stopped answering; ``status`` is 'crashed' or 'timeout'. Not an Exception, so
    that no ``except Exception`` in a test can hide it."""

    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status = status


@dataclass
class CellRun:
    outputs: list
    timed_out: bool = False
    error: str | None = None     # ename of the error the cell raised, if any


@dataclass
class LearnerKernel:
    layout: KernelLayout
    limits: SandboxLimits
    sandboxed: bool = True
    log_path: Path | None = None
    process: subprocess.Popen | None = None
    client: BlockingKernelClient | None = None
    cgroups: Cgroups | None = None
    listener: socket.socket | None = None
    notes: list[str] = field(default_factory=list)

    # ------------------------------------------------------------ lifecycle

    @property
    def memory_limit(self) -> str:
        gb = f"{self.limits.memory_bytes / 2**30:g} GB"
        if self.cgroups:
            return f"{gb} resident (cgroup v{self.cgroups.version})"
        return f"{gb} of address space (no memory cgroup available here)"

    def start(self, ready_timeout: float = 60.0) -> None:
        run = self.layout.run_dir
        inside = SANDBOX_RUN if self.sandboxed else str(run)
        connection = run / "kernel.json"
        write_connection_file(str(connection), transport="ipc", ip=f"{inside}/k", **PORTS)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(run / "bridge.sock"))
        self.listener.listen(1)
        kernel = [sys.executable, "-m", "ipykernel_launcher", "-f", f"{inside}/kernel.json",
                  "--HistoryManager.hist_file=:memory:", "--IPKernelApp.log_level=ERROR"]
        log = open(self.log_path or os.devnull, "ab")
        if self.sandboxed:
            self.cgroups = Cgroups.create(self.limits.memory_bytes, self.limits.max_pids)
            argv = bwrap_argv(self.layout, self.limits, kernel, privileged=os.geteuid() == 0)
            command = launch_command(run / "launch.json", argv, self.limits, self.cgroups)
            self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                            start_new_session=True)
        else:
            self.process = self._start_unsandboxed(kernel, log)
        log.close()
        client = BlockingKernelClient()
        client.load_connection_info(_host_connection(connection, run))
        client.start_channels()
        self.client = client
        deadline = time.monotonic() + ready_timeout
        while True:
            self.check_alive()
            client.kernel_info()
            try:
                client.get_shell_msg(timeout=1.0)
                break
            except Empty:
                if time.monotonic() > deadline:
                    raise KernelLost("crashed", f"the kernel did not start within {ready_timeout:.0f} s") from None
        _drain(client)

    def _start_unsandboxed(self, kernel: list[str], log) -> subprocess.Popen:
        """--no-sandbox: the same kernel, its environment cleared and its limits set, but no isolation."""
        from .sandbox import rlimits

        import resource

        limits = rlimits(self.limits, address_space=True)
        names = {"cpu": resource.RLIMIT_CPU, "fsize": resource.RLIMIT_FSIZE, "core": resource.RLIMIT_CORE,
                 "nofile": resource.RLIMIT_NOFILE, "as": resource.RLIMIT_AS}
        workdir = self.layout.run_dir.parent / "home" / self.layout.lesson
        workdir.mkdir(parents=True, exist_ok=True)
        for path in self.layout.data_files:
            (workdir / path.name).write_bytes(path.read_bytes())
        env = sandbox_env(self.layout) | {"HOME": str(workdir.parent), "TMPDIR": str(workdir.parent),
                                          "MPLCONFIGDIR": str(workdir.parent / ".matplotlib")}

        def limit():
            for name, value in limits.items():
                soft, hard = value if isinstance(value, list) else (value, value)
                resource.setrlimit(names[name], (soft, hard))

        return subprocess.Popen(kernel, stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=workdir, env=env,
                                preexec_fn=limit, start_new_session=True)

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

    def start_silent(self, code: str) -> str:
        return self.client.execute(code, silent=True, store_history=False, allow_stdin=False)

    def collect(self, msg_id: str, timeout: float, keep_outputs: bool = True,
                stuck: str = "a cell kept running after it was interrupted at the {timeout:.0f} s limit "
                              "(a loop that ignores Ctrl-C?)") -> CellRun:
        """Gather a request's outputs until the kernel is idle; interrupt at ``timeout``; KernelLost if it never is."""
        run = CellRun([])
        deadline, interrupted = time.monotonic() + timeout, False
        while True:
            self.check_alive()
            try:
                message = self.client.get_iopub_msg(timeout=0.1)
            except Empty:
                if time.monotonic() > deadline:
                    if interrupted:
                        raise KernelLost("timeout", stuck.format(timeout=timeout))
                    self.interrupt()
                    interrupted, run.timed_out = True, True
                    deadline = time.monotonic() + INTERRUPT_GRACE
                continue
            if message["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = message["msg_type"], message["content"]
            if kind == "status" and content.get("execution_state") == "idle":
                break
            if kind == "error":
                run.error = content.get("ename")
            if keep_outputs:
                _add_output(run.outputs, message)
        if run.timed_out:
            run.outputs.append(nbformat.v4.new_output(
                "error", ename="CellTimeoutError", evalue=f"stopped after {timeout:.0f} s",
                traceback=[f"CellTimeoutError: the cell ran longer than {timeout:.0f} s and was interrupted"]))
        return run


def _host_connection(connection: Path, run: Path) -> dict:
    """The kernel's connection info, with the socket paths as the grader sees them."""
    import json

    info = json.loads(connection.read_text())
    info["ip"] = str(run / "k")
    return info


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
