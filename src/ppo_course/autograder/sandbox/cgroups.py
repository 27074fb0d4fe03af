"""Resident-memory and process-count limits for one submission, from Linux control groups.

A submission's kernel joins a cgroup of its own before the sandbox starts (``launch.py`` writes its
pid into ``procs_files``), so every process it starts is counted: the memory limit is on resident
memory (what a machine really runs out of), not on address space, which torch's mappings inflate.
Both cgroup versions are handled: v2 (the unified hierarchy of current distributions, where the
grader's own cgroup must be delegated to it, e.g. ``systemd-run --user --scope -p Delegate=yes``)
and v1 (separate ``memory`` and ``pids`` hierarchies). Without either, ``create`` returns None and
the caller falls back to an address-space limit, and says so.
"""
from __future__ import annotations

import itertools
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

_names = itertools.count()


def _mounts() -> list[tuple[str, str, set[str]]]:
    """(mount point, fs type, super options) of every cgroup mount."""
    found = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) >= 5 and len(tail) >= 3 and tail[0] in ("cgroup", "cgroup2"):
            found.append((fields[4].replace("\\040", " "), tail[0], set(tail[2].split(","))))
    return found


def _own_paths() -> dict[str, str]:
    """This process's cgroup path per hierarchy: '' for v2, each controller name for v1."""
    paths = {}
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for controller in (controllers.split(",") if controllers else [""]):
                paths[controller] = path
    except (OSError, ValueError):
        pass
    return paths


def _write(path: Path, text: str) -> None:
    with open(path, "w") as handle:
        handle.write(text)


@dataclass
class Cgroups:
    """The cgroup(s) of one submission: ``procs_files`` to join, then limits, OOM count, peak, cleanup."""
    version: int
    memory: Path
    pids: Path | None

    @property
    def procs_files(self) -> list[str]:
        return [str(d / "cgroup.procs") for d in {self.memory, self.pids} if d is not None]

    @property
    def description(self) -> str:
        return f"resident memory and processes by cgroup v{self.version}"

    @classmethod
    def create(cls, memory_bytes: int, max_pids: int) -> "Cgroups | None":
        """Make the cgroup(s) with these limits, or return None where this machine does not allow it."""
        name = f"ppo-grade-{os.getpid()}-{next(_names)}"
        own, mounts = _own_paths(), _mounts()
        for mount, kind, _options in mounts:   # v2 first: the one modern systems use
            if kind == "cgroup2" and "" in own:
                made = cls._try(Path(mount + own[""]) / name, 2, memory_bytes, max_pids)
                if made:
                    return made
        memory = next((m for m, kind, opts in mounts if kind == "cgroup" and "memory" in opts), None)
        if memory is None or "memory" not in own:
            return None
        pids_mount = next((m for m, kind, opts in mounts if kind == "cgroup" and "pids" in opts), None)
        made = cls._try(Path(memory + own["memory"]) / name, 1, memory_bytes, max_pids)
        if made and pids_mount and "pids" in own:
            pids = Path(pids_mount + own["pids"]) / name
            try:
                pids.mkdir()
                _write(pids / "pids.max", str(max_pids))
                made.pids = pids
            except OSError:
                made.pids = None
        return made

    @classmethod
    def _try(cls, path: Path, version: int, memory_bytes: int, max_pids: int) -> "Cgroups | None":
        try:
            path.mkdir()
        except OSError:
            return None
        try:
            if version == 2:
                _write(path / "memory.max", str(memory_bytes))
                if (path / "memory.swap.max").exists():
                    _write(path / "memory.swap.max", "0")
                has_pids = (path / "pids.max").exists()
                if has_pids:
                    _write(path / "pids.max", str(max_pids))
                return cls(2, path, path if has_pids else None)
            _write(path / "memory.limit_in_bytes", str(memory_bytes))
            if (path / "memory.memsw.limit_in_bytes").exists():
                try:
                    _write(path / "memory.memsw.limit_in_bytes", str(memory_bytes))
                except OSError:
                    pass  # swap accounting off: no swap to limit
            return cls(1, path, None)
        except OSError:
            _remove(path)
            return None

    def _read(self, name: str) -> str:
        try:
            return (self.memory / name).read_text()
        except OSError:
            return ""

    def oom_kills(self) -> int:
        """How many processes the kernel killed for going over the memory limit."""
        text = self._read("memory.events" if self.version == 2 else "memory.oom_control")
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit():
                return int(value)
        return 0

    def peak_bytes(self) -> int | None:
        text = self._read("memory.peak" if self.version == 2 else "memory.max_usage_in_bytes").strip()
        return int(text) if text.isdigit() else None

    def kill(self) -> None:
        """Kill every process still in the cgroup (the pid namespace already should have)."""
        if self.version == 2 and (self.memory / "cgroup.kill").exists():
            try:
                _write(self.memory / "cgroup.kill", "1")
                return
            except OSError:
                pass
        for directory in {self.memory, self.pids} - {None}:
            for pid in (directory / "cgroup.procs").read_text().split() if directory.exists() else []:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (OSError, ValueError):
                    pass

    def remove(self) -> None:
        self.kill()
        for directory in {self.memory, self.pids} - {None}:
            _remove(directory)

    @staticmethod
    def remove_left_by(pid: int) -> None:
        """Remove the cgroups a worker process made, after it was killed before it could."""
        for version, directory in _graders_cgroups(f"ppo-grade-{pid}-*"):
            Cgroups(version, directory, None).remove()

    @staticmethod
    def remove_orphans() -> None:
        """Remove the empty cgroups of graders that are gone: a Dask worker killed mid-task takes the
        supervisor that would have removed its kernel's cgroup along (its kernel died with it)."""
        for _version, directory in _graders_cgroups("ppo-grade-*-*"):
            pid = directory.name.split("-")[2]
            try:
                empty = not (directory / "cgroup.procs").read_text().strip()
            except OSError:
                continue
            if pid.isdigit() and empty and not Path(f"/proc/{pid}").exists():
                _remove(directory)


def _graders_cgroups(pattern: str) -> list[tuple[int, Path]]:
    """(cgroup version, folder) of the submission cgroups matching ``pattern`` beside this process's own."""
    own, found = _own_paths(), []
    for mount, kind, options in _mounts():
        for controller in ([""] if kind == "cgroup2" else [c for c in ("memory", "pids") if c in options]):
            if controller in own:
                found += [(2 if kind == "cgroup2" else 1, d) for d in Path(mount + own[controller]).glob(pattern)]
    return found


def _remove(path: Path) -> None:
    for _ in range(50):  # a killed process leaves its cgroup a moment after it dies
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.02)
