"""The OS sandbox every graded kernel runs in: bubblewrap, Linux namespaces, cgroups, resource limits.

Inside, student code sees only:
  * the Python runtime and its installed packages, read-only (``sys.base_prefix``, ``sys.prefix``,
    ``/usr``), and a few harmless files of ``/etc`` (the dynamic linker's cache, time zone);
  * the course's reference package, if it has one, with the graded assignment's references stubbed out
    (``package``), and the grader's bridge (``BRIDGE_MOUNT``), which the kernel serves calls with;
  * its home, ``/home/student`` (a tmpfs capped at the scratch size), holding the released lesson's
    data files read-only, and a small private ``/tmp``;
  * ``/run/grader``, a 4 MB tmpfs of its own holding the kernel's connection file and IPC sockets, which
    the grader reaches through ``/proc/<pid>/root``: no folder of the host is writable from inside.
Not the course repository (no ``solutions/``, no hidden tests), not the instructor's course folder,
not other students, not the host's ``/tmp``, ``/root`` or ``/home``. Namespaces: user (it runs as
uid 1000, with no capabilities and no further user namespaces), mount, PID (its own ``/proc``; when
the kernel exits every process it left is killed), network (its own, loopback down: no connection to
anything, 127.0.0.1 included), IPC and UTS. Limits: resident memory and process count by cgroup
(``cgroups``), CPU seconds, file size and open files by rlimit; the address space only where no
memory cgroup can be made, and the result says so.
"""
from __future__ import annotations

import functools
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CourseError
from .cgroups import Cgroups

LAUNCHER = Path(__file__).with_name("launch.py")
SANDBOX_HOME = "/home/student"
SANDBOX_RUN = "/run/grader"
SANDBOX_UID = 1000
BRIDGE_DIR = Path(__file__).resolve().parents[1] / "bridge"
BRIDGE_MOUNT = "/opt/autograder"          # the kernel imports the bridge from here as ``autograder_bridge``
BRIDGE_PACKAGE = "autograder_bridge"
ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "nsswitch.conf", "fonts")
PASSED_THROUGH = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "LANG", "TZ")   # safe, and some BLAS builds need them
NO_SANDBOX_HINT = "or pass --no-sandbox to grade without isolation (only for submissions you trust)"


class SandboxUnavailable(CourseError):
    """This machine cannot run the sandbox; the message names what is missing, in one line."""


@dataclass(frozen=True)
class SandboxLimits:
    memory_bytes: int
    cpu_seconds: int
    max_pids: int = 256
    scratch_bytes: int = 512 * 2**20
    open_files: int = 1024


@dataclass
class KernelLayout:
    """What one sandboxed kernel is given: the course's package (stubbed), the data files, its IPC folder."""
    data_files: list[Path]
    assignment: str
    run_dir: Path                  # the grader's folder for this kernel (launch spec; sockets with --no-sandbox)
    env: dict[str, str] = field(default_factory=dict)
    packages: list[tuple[Path, Path]] = field(default_factory=list)   # (stubbed copy, mounted over this path)

    @property
    def workdir(self) -> str:
        return f"{SANDBOX_HOME}/{self.assignment}"


def _runtime_mounts() -> list[str]:
    """Read-only mounts for the Python runtime and the system libraries it loads."""
    args = ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    for name in ETC_FILES:
        args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    seen = {"/usr"}
    for prefix in sorted({os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix), sys.prefix}):
        if not any(prefix == s or prefix.startswith(s + "/") for s in seen):
            args += ["--ro-bind", prefix, prefix]
            seen.add(prefix)
    return args


def bwrap_argv(layout: KernelLayout, limits: SandboxLimits, command: list[str], privileged: bool,
               connection_fd: int = -1, info_fd: int = -1) -> list[str]:
    """bubblewrap's command line; ``connection_fd`` is copied to SANDBOX_RUN/kernel.json, and bwrap writes
    the sandbox's pid to ``info_fd`` (where the grader finds its sockets: /proc/<pid>/root/run/grader)."""
    bwrap = shutil.which("bwrap") or "bwrap"
    args = [bwrap, "--unshare-user", "--unshare-ipc", "--unshare-pid", "--unshare-uts", "--unshare-cgroup-try",
            "--disable-userns", "--die-with-parent", "--new-session",
            "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--hostname", "sandbox"]
    if privileged:
        args += ["--cap-drop", "ALL"]
    # The private folders first: a runtime that lives under /tmp or /home (a clone in /tmp, a venv in
    # a home folder) is mounted on top of them below, instead of being hidden by them.
    args += ["--proc", "/proc", "--dev", "/dev", "--size", str(64 * 2**20), "--tmpfs", "/dev/shm",
             "--size", str(64 * 2**20), "--tmpfs", "/tmp",
             "--size", str(limits.scratch_bytes), "--tmpfs", SANDBOX_HOME,
             "--dir", layout.workdir]
    args += _runtime_mounts()
    for copy, target in layout.packages:
        args += ["--ro-bind", str(copy), str(target)]
    args += ["--ro-bind", str(BRIDGE_DIR), f"{BRIDGE_MOUNT}/{BRIDGE_PACKAGE}"]
    for path in layout.data_files:
        args += ["--ro-bind", str(path), f"{layout.workdir}/{path.name}"]
    args += ["--size", str(4 * 2**20), "--tmpfs", SANDBOX_RUN]
    if connection_fd >= 0:
        args += ["--ro-bind-data", str(connection_fd), f"{SANDBOX_RUN}/kernel.json"]
    if info_fd >= 0:
        args += ["--info-fd", str(info_fd)]
    args += ["--remount-ro", "/", "--chdir", layout.workdir, "--clearenv"]
    for name, value in sandbox_env(layout).items():
        args += ["--setenv", name, value]
    return args + ["--", *command]


def sandbox_env(layout: KernelLayout) -> dict[str, str]:
    """The kernel's whole environment: nothing of the grader's (no tokens), a few safe settings."""
    env = {name: os.environ[name] for name in PASSED_THROUGH if name in os.environ}
    env.update(HOME=SANDBOX_HOME, USER="student", LOGNAME="student", TMPDIR="/tmp",
               PATH=os.pathsep.join([str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]),
               MPLBACKEND="Agg", MPLCONFIGDIR=f"{SANDBOX_HOME}/.config/matplotlib",
               PYTHONDONTWRITEBYTECODE="1", PYTHONNOUSERSITE="1", PYTHONUNBUFFERED="1",
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               PYDEVD_DISABLE_FILE_VALIDATION="1", PYTHONPATH=BRIDGE_MOUNT)
    env.setdefault("LANG", "C.UTF-8")
    env.update(layout.env)
    return env


def rlimits(limits: SandboxLimits, address_space: bool) -> dict[str, object]:
    found: dict[str, object] = {"cpu": [limits.cpu_seconds, limits.cpu_seconds + 5],
                                "fsize": limits.scratch_bytes, "core": 0, "nofile": limits.open_files}
    if address_space:   # no memory cgroup: the only memory limit left (torch's mappings count too)
        found["as"] = limits.memory_bytes
    return found


def launch_command(spec_path: Path, argv: list[str], limits: SandboxLimits, cgroups: Cgroups | None) -> list[str]:
    """The command that starts ``argv`` (bwrap ...) through ``launch.py``; writes its spec to ``spec_path``."""
    spec = {"rlimits": rlimits(limits, address_space=cgroups is None),
            "cgroup_procs": cgroups.procs_files if cgroups else [], "argv": argv}
    spec_path.write_text(json.dumps(spec))
    return [sys.executable, "-I", "-S", str(LAUNCHER), str(spec_path)]


@functools.lru_cache(maxsize=1)
def probe() -> str | None:
    """None when sandboxed grading works here, else one line saying what is missing (cached)."""
    if platform.system() != "Linux":
        return f"grading in a sandbox needs Linux namespaces, and this is {platform.system()}; {NO_SANDBOX_HINT}"
    if shutil.which("bwrap") is None:
        return ("grading in a sandbox needs bubblewrap (bwrap), which is not installed "
                f"(Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install bubblewrap); {NO_SANDBOX_HINT}")
    with tempfile.TemporaryDirectory(prefix="ppo-probe-") as tmp:
        root = Path(tmp)
        (root / "run").mkdir()
        layout = KernelLayout([], "probe", root / "run")
        limits = SandboxLimits(memory_bytes=2**30, cpu_seconds=10)
        argv = bwrap_argv(layout, limits, [sys.executable, "-I", "-S", "-c", "pass"], privileged=os.geteuid() == 0)
        command = launch_command(root / "spec.json", argv, limits, None)
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as error:
            return f"the sandbox could not start ({error}); {NO_SANDBOX_HINT}"
    if done.returncode == 0:
        return None
    detail = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
    if "unshare failed" in detail or "user namespace" in detail.lower() or "Operation not permitted" in detail:
        return (f"the sandbox needs user and network namespaces, which this machine does not allow ({detail}); "
                f"enable them (sysctl user.max_user_namespaces=10000, kernel.unprivileged_userns_clone=1), "
                f"{NO_SANDBOX_HINT}")
    return f"bubblewrap could not start a sandbox ({detail}); {NO_SANDBOX_HINT}"
