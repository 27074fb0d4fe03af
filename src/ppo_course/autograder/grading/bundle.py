"""An assignment's release bundle: everything a grader needs to grade it, as one blob of bytes.

The client (the machine with the course folder) makes the bundle once per run (``prepare``) from
nbgrader's release of the assignment (``cached_release``, kept in a cache folder under a digest of
the assignment's source and of this grading package, so a change to either is a new release): the
released notebooks and data files, and the assignment's gradebook, which holds the hidden tests. A
grader (this process with ``--jobs N``, or a Dask worker on another machine) unpacks it into a
private temp folder once per content hash (``KITS``) and reuses it for every submission of that
assignment; no filesystem is shared between the two. The copy of the course's reference package that
the sandboxed kernel sees (the exercises' references stubbed, ``sandbox.package``) is made there too,
from the grader's own install, so the kernel and the grader's tests run the same code.
"""
from __future__ import annotations

import atexit
import hashlib
import importlib.util
import io
import shutil
import tarfile
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import nbformat

from ..errors import CourseError
from ..sandbox.package import build_stubbed_package
from .contract import Contract, read_contract
from .pipeline import release_in_course
from .settings import GradingSettings

GRADING_PACKAGE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Bundle:
    contract: Contract
    settings: GradingSettings
    source_sha256: str        # of the assignment's source notebooks: a regrade is due when it changes
    digest: str               # sha256 of ``data``: the graders' cache key
    data: bytes               # a tar.gz of gradebook.db and release/<released files>

    @property
    def assignment(self) -> str:
        return self.contract.assignment

    def __repr__(self) -> str:   # dask's dashboard and tracebacks show this, not megabytes of bytes
        return f"Bundle({self.assignment}, {len(self.data) // 1024} KiB, {self.digest[:12]})"


def release_digest(folder: Path) -> str:
    """A digest of an assignment's source folder and of everything that releases and grades it: nbgrader's
    version and every module of this grading package (the pipelines, the preprocessors, the contract)."""
    from importlib.metadata import version  # (importing nbgrader itself takes seconds)

    digest = hashlib.sha256(f"nbgrader {version('nbgrader')}\n".encode())
    for path in sorted(GRADING_PACKAGE.rglob("*.py")):
        digest.update(path.relative_to(GRADING_PACKAGE).as_posix().encode() + b"\0" + path.read_bytes())
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def cached_release(assignment: str, source: Path, cache: Path) -> Path:
    """nbgrader's release of ``assignment`` (gradebook.db + release/), made once per digest in ``cache``."""
    folder = cache / f"{assignment}-{release_digest(source / assignment)[:16]}"
    if not (folder / "release" / assignment).is_dir():
        cache.mkdir(parents=True, exist_ok=True)
        staged = Path(tempfile.mkdtemp(prefix=f".{assignment}-", dir=cache))
        release_in_course(assignment, source, staged)
        shutil.rmtree(staged / "source")  # solutions never sit next to a student's scratch course
        try:
            staged.rename(folder)
        except OSError:  # another grader made it meanwhile
            shutil.rmtree(staged, ignore_errors=True)
    return folder


def _normalised(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """The same release makes the same bytes (and so the same digest) on every run."""
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
    return info


def prepare(assignment: str, source: Path, cache: Path) -> Bundle:
    """The release bundle of ``assignment`` from the course's ``source`` folder (released once per version)."""
    contract = read_contract(source / assignment)
    if not contract.notebooks:
        raise CourseError(f"no notebook in {source / assignment}")
    keys = contract.test_ids
    if len(keys) != len(set(keys)):
        raise CourseError(f"{assignment}: two notebooks have a test cell of the same grade_id; make them unique")
    root = cached_release(assignment, source, cache)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=6) as tar:
        tar.add(root / "gradebook.db", arcname="gradebook.db", filter=_normalised)
        released = root / "release" / assignment
        for path in sorted(p for p in released.rglob("*") if p.is_file()):
            tar.add(path, arcname=f"release/{path.relative_to(released).as_posix()}", filter=_normalised)
    data = buffer.getvalue()
    sources = hashlib.sha256()
    for notebook in contract.notebooks:
        sources.update((source / assignment / notebook.notebook).read_bytes())
    return Bundle(contract, GradingSettings.of_course(source), sources.hexdigest(), hashlib.sha256(data).hexdigest(),
                  data)


@dataclass(frozen=True)
class Kit:
    """A bundle as one grader unpacked it."""
    bundle: Bundle
    released: dict[str, nbformat.NotebookNode]   # by file name
    gradebook: Path               # the assignment's gradebook (holds the hidden tests: never in a sandbox)
    extra_files: Path             # the released folder: data files a notebook reads
    packages: tuple[tuple[str, str], ...]   # (stubbed copy, the real package's folder) for the kernel

    @property
    def assignment(self) -> str:
        return self.bundle.assignment

    @property
    def contract(self) -> Contract:
        return self.bundle.contract


def unpack(bundle: Bundle, folder: Path) -> Kit:
    with tarfile.open(fileobj=io.BytesIO(bundle.data), mode="r:gz") as tar:
        try:
            tar.extractall(folder, filter="data")
        except TypeError:   # a Python without extraction filters (before 3.10.12 / 3.11.4)
            tar.extractall(folder)  # noqa: S202 - our own bundle, made by the client
    packages = ()
    name = bundle.settings.reference_package
    if name:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            raise CourseError(f"the course's reference package {name} is not installed on this grader")
        real = Path(next(iter(spec.submodule_search_locations))).resolve()
        build_stubbed_package(bundle.contract.function_names, folder / name, real, name)
        packages = ((str(folder / name), str(real)),)
    released = folder / "release"
    return Kit(bundle, {nb.notebook: nbformat.read(released / nb.notebook, as_version=4)
                        for nb in bundle.contract.notebooks}, folder / "gradebook.db", released, packages)


class KitCache:
    """The bundles this process has unpacked, by digest, under one private temp folder (removed at exit)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.kits: dict[str, Kit] = {}
        self.root: Path | None = None

    def kit(self, bundle: Bundle) -> Kit:
        if hashlib.sha256(bundle.data).hexdigest() != bundle.digest:   # (a millisecond: checked every time)
            raise ValueError(f"the release bundle of {bundle.assignment} arrived damaged (digest mismatch)")
        with self.lock:   # a Dask worker grades on several threads: one unpacks, the others wait
            if bundle.digest not in self.kits:
                if self.root is None:
                    self.root = Path(tempfile.mkdtemp(prefix="grading-bundles-"))   # mode 0700: hidden tests
                    atexit.register(shutil.rmtree, self.root, True)
                folder = self.root / f"{bundle.assignment}-{bundle.digest[:16]}"
                shutil.rmtree(folder, ignore_errors=True)
                self.kits[bundle.digest] = unpack(bundle, folder)
            return self.kits[bundle.digest]


KITS = KitCache()
