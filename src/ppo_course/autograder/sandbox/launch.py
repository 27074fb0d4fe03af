"""Start one sandboxed kernel: limits, cgroups and a network namespace, then exec bubblewrap.

    python -I -S launch.py SPEC.json

Run by the grader (as ``sys.executable -I -S``: standard library only, nothing from the course or the
environment can change it) between its fork and the kernel, because some things must be set up by
the process that becomes the sandbox, before bubblewrap takes over:

  * resource limits (CPU seconds, file size, no core dumps, open files, and the address space only
    when no memory cgroup is available), inherited by everything inside;
  * membership of the submission's cgroups (resident memory, process count), so that every process
    the kernel ever starts is counted and can be killed as one;
  * a network namespace of its own in which the loopback interface stays down: a connection to
    127.0.0.1 fails as unreachable, not refused (bubblewrap's own --unshare-net brings loopback up).
    A grader that is not root first enters a user namespace of its own, where it may do this.

SPEC holds {"rlimits": {name: value}, "cgroup_procs": [paths], "argv": [bwrap, ...]}.
"""
import ctypes
import json
import os
import resource
import sys

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
RLIMITS = {"cpu": resource.RLIMIT_CPU, "fsize": resource.RLIMIT_FSIZE, "core": resource.RLIMIT_CORE,
           "nofile": resource.RLIMIT_NOFILE, "as": resource.RLIMIT_AS, "nproc": resource.RLIMIT_NPROC}


def fail(message: str) -> None:
    sys.stderr.write(f"sandbox: {message}\n")
    sys.stderr.flush()
    os._exit(126)


def unshare(flags: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(flags) != 0:
        fail(f"unshare failed: {os.strerror(ctypes.get_errno())}")


def own_network_namespace() -> None:
    """A network namespace with loopback down; a non-root grader first gets a user namespace for it."""
    if os.geteuid() == 0:
        unshare(CLONE_NEWNET)
        return
    uid, gid = os.geteuid(), os.getegid()
    unshare(CLONE_NEWUSER | CLONE_NEWNET)
    for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
        with open(f"/proc/self/{name}", "w") as handle:
            handle.write(text)


def main() -> None:
    with open(sys.argv[1]) as handle:
        spec = json.load(handle)
    for name, value in spec.get("rlimits", {}).items():
        soft, hard = (value, value) if not isinstance(value, list) else value
        resource.setrlimit(RLIMITS[name], (soft, hard))
    for procs in spec.get("cgroup_procs", []):
        with open(procs, "w") as handle:
            handle.write(str(os.getpid()))
    own_network_namespace()
    argv = spec["argv"]
    try:
        os.execv(argv[0], argv)
    except OSError as error:
        fail(f"could not start {argv[0]}: {error.strerror}")


if __name__ == "__main__":
    main()
