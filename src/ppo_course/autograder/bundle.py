"""A lesson's release bundle: everything a grader needs to grade that lesson, as one blob of bytes.

The client (the machine with the course folder) makes the bundle once per run from nbgrader's
release of the lesson (``grade.cached_release``): the released notebook and its data files, and the
assignment's gradebook, which holds the hidden tests. A grader (this process with ``--jobs N``, or a
Dask worker on another machine) unpacks it into a private temp folder once per content hash and
reuses it for every submission of that lesson; no filesystem is shared between the two. The copy of
the course package that the sandboxed kernel sees (the lesson's references stubbed) is made there
too, from the grader's own install, so the kernel and the grader's tests run the same code.
"""
from __future__ import annotations

import atexit
import hashlib
import io
import shutil
import tarfile
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from .contract import Contract


@dataclass(frozen=True)
class LessonBundle:
    lesson: str
    contract: Contract
    source_sha256: str        # of the lesson's source notebook: a regrade is due when it changes
    digest: str               # sha256 of ``data``: the graders' cache key
    data: bytes               # a tar.gz of gradebook.db and release/<released files>

    def __repr__(self) -> str:   # dask's dashboard and tracebacks show this, not megabytes of bytes
        return f"LessonBundle({self.lesson}, {len(self.data) // 1024} KiB, {self.digest[:12]})"


def _normalised(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """The same release makes the same bytes (and so the same digest) on every run."""
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
    return info


def make_bundle(lesson: str, contract: Contract, source_sha256: str, release_root: Path) -> LessonBundle:
    """Pack nbgrader's release of ``lesson`` (``release_root``: gradebook.db, release/<lesson>/)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=6) as tar:
        tar.add(release_root / "gradebook.db", arcname="gradebook.db", filter=_normalised)
        released = release_root / "release" / lesson
        for path in sorted(p for p in released.rglob("*") if p.is_file()):
            tar.add(path, arcname=f"release/{path.relative_to(released).as_posix()}", filter=_normalised)
    data = buffer.getvalue()
    return LessonBundle(lesson, contract, source_sha256, hashlib.sha256(data).hexdigest(), data)


class BundleCache:
    """The bundles this process has unpacked, by digest, under one private temp folder (removed at exit)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.kits: dict[str, object] = {}
        self.root: Path | None = None

    def kit(self, bundle: LessonBundle):
        """The ``grade.LessonKit`` of ``bundle``, unpacked (and its student package built) on first use."""
        from .grade import LessonKit

        if hashlib.sha256(bundle.data).hexdigest() != bundle.digest:   # (a millisecond: checked every time)
            raise ValueError(f"the release bundle of {bundle.lesson} arrived damaged (digest mismatch)")
        with self.lock:   # a Dask worker grades on several threads: one unpacks, the others wait
            if bundle.digest in self.kits:
                return self.kits[bundle.digest]
            if self.root is None:
                self.root = Path(tempfile.mkdtemp(prefix="ppo-grading-bundles-"))   # mode 0700: hidden tests
                atexit.register(shutil.rmtree, self.root, True)
            folder = self.root / f"{bundle.lesson}-{bundle.digest[:16]}"
            shutil.rmtree(folder, ignore_errors=True)
            with tarfile.open(fileobj=io.BytesIO(bundle.data), mode="r:gz") as tar:
                try:
                    tar.extractall(folder, filter="data")
                except TypeError:   # a Python without extraction filters (before 3.10.12 / 3.11.4)
                    tar.extractall(folder)  # noqa: S202 - our own bundle, made by the client
            kit = LessonKit.unpacked(bundle, folder)
            self.kits[bundle.digest] = kit
            return kit


KITS = BundleCache()
