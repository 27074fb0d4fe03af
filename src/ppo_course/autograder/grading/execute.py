"""nbgrader's Execute step, split so that no test verdict is computed where student code runs.

``SandboxedExecute`` takes the place of nbgrader's ``Execute`` in the autograde pipeline. It walks
the rebuilt notebook (the course's released cells, with only the answer cells from the learner) and
runs each cell where it belongs:

  ========================  ==================================  =====================================
  cell                      learner kernel (sandboxed)          grader process (trusted)
  ========================  ==================================  =====================================
  tagged ``setup``          yes: the imports the answers use    yes: the imports the tests use
  answer (solution cell)    yes                                 no
  test (graded cell)        no: only its calls, via the bridge  yes: the test code and its verdict
  anything else             no (teaching cells are not graded)  no
  ========================  ==================================  =====================================

In the grader, each contract function name is bound to a ``LearnerFunction`` that calls the
learner's function in the kernel through ``bridge``; the test's assertions, its helpers and its
comparisons are the grader's own, so nothing the learner's code does to its interpreter (input or
AST transformers, custom exception handlers, patched ``assert_close`` or ``torch.allclose``, lying
tensor subclasses) reaches them. Hidden tests never enter the kernel: it receives setup and answer
cells, and calls.

The setup cell and every answer run first, in notebook order; then every test cell in the form the
learner's notebook shows (hidden tests removed); then the cells with hidden tests in full, which
decide the score. So what a learner reads of a test never carries what their code saw in a hidden
check (``hidden``). A test's output and message are capped in size (``capped``), as the kernel's are.

A cell error is recorded as nbgrader expects (an ``error`` output) and scores 0 there as usual. When
the kernel dies or stops answering, grading stops and the abort file says in which cell, so the
grader can drop that answer and grade the rest again.
"""
from __future__ import annotations

import ast
import contextlib
import io
import linecache
import select
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Unicode

from ..bridge import LEARNER_KERNEL
from ..bridge.peer import Peer
from ..bridge.wire import PLAIN_ERRORS, LearnerError, PeerGone, PeerTimeout, ProtocolError, send_frame
from ..sandbox.bubblewrap import BRIDGE_PACKAGE, KernelLayout
from ..sandbox.kernel import INTERRUPT_GRACE, KernelLost, LearnerKernel
from ..syntax import parse_python
from .contract import is_answer_cell, is_manual_cell, is_setup_cell, is_test_cell, python_lines
from .hidden import failing_line, has_hidden_tests, hidden_failure_message, hidden_lines, numbers_in, visible_form
from .job import Job, OutcomeFile

BRIDGE_IMPORT_TIMEOUT = 120
SERVE = f"__import__('{BRIDGE_PACKAGE}.peer', fromlist=['serve']).serve({{path!r}})"


class CellTimeoutError(BaseException):
    """A test's call into the learner's code passed the cell's time limit (not an Exception: a test's
    ``except Exception`` must not turn it into a pass)."""


def _bound_names(node: ast.stmt) -> set[str]:
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return {(alias.asname or alias.name).split(".")[0] for alias in node.names}
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
    return {n.id for t in targets if t is not None for n in ast.walk(t) if isinstance(n, ast.Name)}


def _used_names(tree: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}


def setup_for_answers(setup: str, answers: list[str]) -> str:
    """The statements of a setup cell that the answers need, for the learner's kernel.

    The kernel needs the names the answers use (``torch``, ``np``, ``EPS``...), what those
    statements use in turn, and every statement that binds nothing (``torch.manual_seed(0)``); the
    imports that only the lesson's widgets and plots need (matplotlib, ipywidgets: a second of CPU
    per submission) are left out, and so are magics (the kernel plots nothing).
    """
    code = python_lines(setup)
    tree = parse_python(code)
    if tree is None:
        return code
    needed: set[str] = set()
    for answer in answers:
        parsed = parse_python(answer)
        if parsed is None:
            return code  # the learner's broken code fails on its own; give it the whole setup
        needed |= _used_names(parsed)
    kept: set[int] = set()
    changed = True
    while changed:   # a kept statement's own names are needed too
        changed = False
        for index, node in enumerate(tree.body):
            bound = _bound_names(node)
            if index not in kept and (not bound or bound & needed):
                kept.add(index)
                needed |= _used_names(node)
                changed = True
    return "\n".join(ast.get_source_segment(code, node) for i, node in enumerate(tree.body) if i in kept)


MAX_STREAM_CHARS = 64 * 2**10      # of what one test cell printed
MAX_ERROR_CHARS = 2_000             # of a failed test's message
MAX_TRACEBACK_CHARS = 16 * 2**10
MAX_WARNINGS = 20


def cell_name(index: int) -> str:
    return f"<test cell {index}>"


def capped(text: str, limit: int = MAX_STREAM_CHARS) -> str:
    """At most ``limit`` characters: a test's message or output cannot carry a submission's bulk."""
    if len(text) <= limit:
        return text
    return text[: limit // 2] + f"\n... {len(text) - limit} characters cut by the grader ...\n" + text[-limit // 2:]


@dataclass
class TestRun:
    """What one run of a test cell printed, and the exception it ended with (None: it passed)."""
    stdout: str
    stderr: str
    failure: BaseException | None

    def error_output(self, evalue: str):
        failure = self.failure
        if isinstance(failure, KernelTestFailure):   # (its traceback stayed in the kernel)
            return nbformat.v4.new_output("error", ename=failure.ename, evalue=capped(evalue, MAX_ERROR_CHARS),
                                          traceback=[f"{failure.ename}: {capped(evalue, MAX_ERROR_CHARS)}"])
        lines = traceback.format_exception(type(failure), failure, failure.__traceback__)
        return nbformat.v4.new_output("error", ename=type(failure).__name__,
                                      evalue=capped(evalue, MAX_ERROR_CHARS),
                                      traceback=capped("".join(lines), MAX_TRACEBACK_CHARS).splitlines())

    def outputs(self, full: "TestRun", source: str, index: int, visible_numbers: set[str]) -> list:
        """The cell's outputs: this visible run's, scored as the ``full`` run of the cell went (see ``hidden``).

        A hidden check's failure says only what ``hidden.hidden_failure_message`` allows; a visible test that
        passed when run alone and failed in the full run says so without its message, which could carry what
        the learner's code saw in the hidden checks run before it."""
        outputs = [nbformat.v4.new_output("stream", name=name, text=text)
                   for name, text in (("stdout", self.stdout), ("stderr", self.stderr)) if text]
        if full.failure is None:
            return outputs
        if full is self:
            return outputs + [self.error_output(str(self.failure))]
        line = failing_line(full.failure, cell_name(index), hidden_lines(source))
        if line is None and self.failure is not None:   # failed in the visible part, both times
            return outputs + [self.error_output(str(self.failure))]
        if isinstance(full.failure, KernelTestFailure):   # ran in the kernel: no line to tell which part failed
            message = "a hidden test failed (this test ran in your notebook's kernel)"
        elif line is None:
            message = ("a visible test failed when the tests ran again after the hidden ones (does your code "
                       "keep state between calls?)")
        elif isinstance(full.failure, CellTimeoutError):
            message = f"a hidden test failed: {full.failure}"
        else:
            message = hidden_failure_message(full.failure, source, line, visible_numbers, PLAIN_ERRORS)
        return outputs + [full.error_output(message)]


class LearnerFunction:
    """Stands in, in the grader's namespace, for a function the learner wrote in the kernel."""

    def __init__(self, tests: "TrustedTests", name: str):
        self._tests, self.__name__ = tests, name

    def __call__(self, *args, **kwargs):
        return self._tests.call({"name": self.__name__}, args, kwargs)

    def __repr__(self) -> str:
        return f"<the learner's {self.__name__}, in the sandboxed kernel>"


class TrustedTests:
    """The namespace the test cells run in, in the grader's process, and its link to the kernel."""

    def __init__(self, kernel: LearnerKernel, functions: list[str], cell_timeout: float):
        self.kernel, self.cell_timeout = kernel, cell_timeout
        self.namespace: dict = {"__name__": "__main__", "__builtins__": __builtins__, LEARNER_KERNEL: self}
        self.functions = functions
        self.peer: Peer | None = None
        self.serving: str | None = None     # msg_id of the kernel's serve request
        self.broken: str | None = None      # why the connection can no longer be trusted, in this cell
        self.deadline = 0.0
        self.bind_learner_functions()   # (a course without a setup cell binds them here)

    def bind_learner_functions(self) -> None:
        for name in self.functions:
            self.namespace[name] = LearnerFunction(self, name)

    # ------------------------------------------------------------ setup and test cells

    def run_setup(self, source: str, index: int) -> None:
        code = python_lines(source)
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), \
                warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exec(self._compile(code, f"<setup cell {index}>"), self.namespace)
        self.bind_learner_functions()   # a setup cell must not shadow them

    def run_test(self, source: str, index: int) -> TestRun:
        """Run a test cell here: what it printed and how it failed. KernelLost when the kernel is gone."""
        out, err = io.StringIO(), io.StringIO()
        self.deadline = time.monotonic() + self.cell_timeout
        failure = None
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
                    warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    exec(self._compile(source, cell_name(index)), self.namespace)
                finally:
                    for warning in caught[:MAX_WARNINGS]:
                        err.write(warnings.formatwarning(warning.message, warning.category, warning.filename,
                                                         warning.lineno))
        except KernelLost:
            raise
        except BaseException as error:  # noqa: BLE001 - a failed test is data: nbgrader scores the cell 0
            failure = error
        finally:
            self.end_serving()
        return TestRun(capped(out.getvalue()), capped(err.getvalue()), failure)

    @staticmethod
    def _compile(source: str, name: str):
        linecache.cache[name] = (len(source), None, source.splitlines(keepends=True), name)  # tracebacks quote it
        return compile(source, name, "exec")

    # ------------------------------------------------------------ calls into the kernel

    def call(self, target: dict, args: tuple, kwargs: dict):
        peer = self.connect()
        try:
            return peer.call(target, args, kwargs)
        except PeerTimeout:
            self.broken = "timed out"
            self.kernel.interrupt()
            raise CellTimeoutError(f"{target.get('name', 'the learner’s code')} did not return within the "
                                   f"{self.cell_timeout:.0f} s limit, and was interrupted") from None
        except (PeerGone, ProtocolError) as error:
            self.broken = str(error)
            self.kernel.check_alive()  # a dead kernel stops grading (KernelLost), else the test fails
            raise LearnerError(f"the learner's kernel stopped answering the grader ({error})") from None

    def connect(self) -> Peer:
        """The connection to the kernel for this cell (the kernel runs ``bridge.serve`` until the cell ends)."""
        if self.broken:
            raise LearnerError(f"the learner's kernel can no longer be asked in this cell ({self.broken})")
        if self.peer is not None:
            return self.peer
        self.serving = self.kernel.start_silent(SERVE.format(path=f"{self.kernel.inner_run_dir}/bridge.sock"))
        listener = self.kernel.listener
        while True:
            ready, _, _ = select.select([listener], [], [], 0.1)
            if ready:
                sock, _ = listener.accept()
                break
            self.kernel.check_alive()
            if self.kernel.is_finished(self.serving):
                self.broken = "no connection"
                raise LearnerError("the learner's kernel finished the grader's request without answering it "
                                   "(did the notebook's code change how the kernel runs code?)")
            if time.monotonic() > self.deadline:
                self.broken = "no connection"
                raise LearnerError("the learner's kernel did not connect to the grader (is it still busy, or "
                                   "did the notebook's code break the kernel?)")
        self.peer = Peer(sock, accept={"call", "vjp"}, check=self.kernel.check_alive)
        self.peer.deadline = self.deadline
        return self.peer

    @contextlib.contextmanager
    def swapped(self, references: dict):
        """``checks.reference_for`` in the kernel too: the learner's code calls the grader's references."""
        peer = self.connect()
        handles = []
        try:
            for name, value in references.items():
                handle = peer.register(value)
                handles.append(handle)
                self._simple(peer, {"op": "swap", "name": name, "handle": handle})
            yield
        finally:
            for handle in handles:
                peer.revoke(handle)
            if not self.broken:
                for name in reversed(list(references)[: len(handles)]):
                    self._simple(peer, {"op": "restore", "name": name})

    def _simple(self, peer: Peer, header: dict) -> None:
        try:
            reply, _ = peer.request(header)
        except (PeerTimeout, PeerGone, ProtocolError) as error:
            self.broken = str(error)
            self.kernel.check_alive()
            raise LearnerError(f"the learner's kernel stopped answering the grader ({error})") from None
        if reply.get("op") != "return":
            self.broken = "refused"
            raise LearnerError(f"the learner's kernel refused the grader ({reply.get('message', '')[:200]})")

    def end_serving(self) -> None:
        """Close this cell's connection; wait until the kernel is idle again (else: KernelLost)."""
        if self.serving is None:
            return
        peer, msg_id = self.peer, self.serving
        self.peer, self.serving = None, None
        if peer is not None:
            if not self.broken:
                with contextlib.suppress(Exception):
                    peer.deadline = time.monotonic() + INTERRUPT_GRACE
                    peer.request({"op": "release"})
                    send_frame(peer.sock, {"op": "done"}, [])
            peer.sock.close()
        self.broken = None
        self.kernel.collect(msg_id, INTERRUPT_GRACE, keep_outputs=False,
                            stuck="the learner's code kept running after a test's time limit, even when interrupted")


class SandboxedExecute(NbGraderPreprocessor):
    """Runs a notebook across the learner's kernel and the grader (see the module docstring)."""

    job_file = Unicode("", help="the grading's Job (job.Job.save), which says what to run and where").tag(config=True)

    def preprocess(self, nb, resources):
        job = Job.load(Path(self.job_file))
        notebook = job.notebook(resources["nbgrader"]["notebook"] + ".ipynb")
        progress = OutcomeFile(job.outcome_path)
        layout = KernelLayout([Path(p) for p in job.data_files], job.assignment, Path(job.run_dir) / notebook.name,
                              env=dict(job.kernel_env), packages=[(Path(a), Path(b)) for a, b in job.packages])
        layout.run_dir.mkdir(exist_ok=True)
        kernel = LearnerKernel(layout, job.limits.sandbox_limits(), sandboxed=job.limits.sandbox,
                               log_path=job.kernel_log)
        tests = TrustedTests(kernel, list(notebook.functions), job.limits.cell_timeout)
        in_kernel = set(notebook.tests_in_kernel)
        timeout = job.limits.cell_timeout
        index = -1
        try:
            kernel.start()
            progress.update(memory=kernel.memory_limit)
            # The bridge (and torch, which it uses) is imported before any learner code runs and on its own
            # clock: in a course whose notebooks do not use torch, the first test's call would otherwise pay
            # torch's import inside that test's time limit (on a cold, busy machine: tens of seconds).
            kernel.collect(kernel.start_silent(f"import {BRIDGE_PACKAGE}.peer"), BRIDGE_IMPORT_TIMEOUT,
                           keep_outputs=False, stuck="the kernel could not load the grader's bridge in {timeout:.0f} s")
            # 1. The setup, every answer and (where the course runs them) the teaching cells, in order,
            #    before any test calls the learner's code.
            answers = [cell.source for cell in nb.cells if is_answer_cell(cell)]
            for index, cell in enumerate(nb.cells):
                progress.update(running=(notebook.name, index))
                cell.outputs = []
                if cell.cell_type != "code" or is_test_cell(cell):
                    continue
                if is_setup_cell(cell):
                    source = cell.source if job.run_teaching_cells else setup_for_answers(cell.source, answers)
                    cell.outputs = kernel.run_cell(source, timeout).outputs
                    tests.run_setup(cell.source, index)
                elif is_answer_cell(cell) or is_manual_cell(cell) or job.run_teaching_cells:
                    cell.outputs = kernel.run_cell(cell.source, timeout).outputs
            # 2. Every test cell as the learner's notebook shows it (no hidden check has run yet), then
            #    3. the cells with hidden tests in full: they decide the score (module ``hidden``).
            visible_numbers = numbers_in("\n".join(visible_form(c.source) for c in nb.cells if not is_answer_cell(c)))
            test_cells = [(i, c) for i, c in enumerate(nb.cells) if is_test_cell(c)]

            def run(source: str, cell, index: int) -> TestRun:
                progress.update(running=(notebook.name, index))
                if cell.metadata.nbgrader.get("grade_id") in in_kernel:
                    return kernel_test(kernel.run_cell(source, timeout).outputs)
                return tests.run_test(source, index)

            shown = {index: run(visible_form(cell.source), cell, index) for index, cell in test_cells}
            for index, cell in test_cells:
                full = run(cell.source, cell, index) if has_hidden_tests(cell.source) else shown[index]
                cell.outputs = shown[index].outputs(full, cell.source, index, visible_numbers)
        except KernelLost as lost:  # nbgrader reports a plain Exception as a failed autograde
            progress.update(status=lost.status, message=str(lost), running=(notebook.name, index))
            raise RuntimeError(f"grading stopped in {notebook.name}, cell {index}: {lost}") from None
        finally:
            kernel.stop()
        count = 0
        for cell in nb.cells:
            if cell.cell_type == "code":
                ran = bool(cell.outputs) or is_answer_cell(cell) or is_test_cell(cell) or is_setup_cell(cell)
                count += ran
                cell.execution_count = count if ran else None
        return nb, resources


def kernel_test(outputs: list) -> TestRun:
    """A test cell the kernel ran (it needs the learner's namespace): its outputs, failed if one is an error."""
    error = next((o for o in outputs if o.get("output_type") == "error"), None)
    failure = KernelTestFailure(error.get("ename", "Error"), error.get("evalue", "")) if error else None
    streams = {"stdout": "", "stderr": ""}
    for output in outputs:
        if output.get("output_type") == "stream":
            streams[output.get("name", "stdout")] = streams.get(output.get("name", "stdout"), "") + output["text"]
    return TestRun(capped(streams["stdout"]), capped(streams["stderr"]), failure)


class KernelTestFailure(Exception):
    """A test cell that ran in the learner's kernel failed: its exception's name and message, as the kernel said."""

    def __init__(self, ename: str, evalue: str):
        super().__init__(evalue)
        self.ename = ename
