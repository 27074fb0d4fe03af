"""Hostile submissions, built as a dishonest student would write them, for the hostile-class tests.

Every trick comes with an honest twin: the same wrong answers without the trick. A trick that works
would score more than its twin; the tests require that none does. Probes (escape attempts) come with
correct answers, so that they must get full marks and reach nothing.

Tricks work on the learner's interpreter (``GLOBAL_TRICKS``: prepended to the first answer cell), on
what an answer returns (``WRAPPERS``: appended to every answer cell), or replace the answers by
delegation to the course's references (``delegating_answers``).
"""
from __future__ import annotations

# ---------------------------------------------------------------- on the learner's interpreter

GLOBAL_TRICKS = {
    "input_transformer": '''
def _skip_asserts(lines):
    return ["pass\\n"] if any("assert" in line for line in lines) else lines
get_ipython().input_transformers_post.append(_skip_asserts)
''',
    "cleanup_transformer": '''
import ast as _ast
def _blank_what_defines_nothing(lines):
    try:
        tree = _ast.parse("".join(lines))
    except SyntaxError:
        return lines
    kinds = (_ast.FunctionDef, _ast.ClassDef, _ast.Import, _ast.ImportFrom)
    return lines if any(isinstance(node, kinds) for node in tree.body) else []
get_ipython().input_transformers_cleanup.append(_blank_what_defines_nothing)
''',
    "ast_transformer": '''
import ast as _ast
class _NoAsserts(_ast.NodeTransformer):
    def visit_Assert(self, node):
        return _ast.Pass()
    def visit_Raise(self, node):
        return _ast.Pass()
get_ipython().ast_transformers.append(_NoAsserts())
''',
    "custom_exception_handler": '''
get_ipython().set_custom_exc((BaseException,), lambda shell, etype, value, tb, tb_offset=None: None)
''',
    "silenced_tracebacks": '''
import sys as _sys
get_ipython().showtraceback = lambda *args, **kwargs: None
get_ipython().showsyntaxerror = lambda *args, **kwargs: None
_sys.excepthook = lambda *args: None
''',
    "check_helpers_in_globals": '''
assert_close = lambda *args, **kwargs: None
assert_tensor = lambda *args, **kwargs: None
reference_for = lambda *args, **kwargs: __import__("contextlib").nullcontext()
''',
    "check_helpers_in_package": '''
import ppo_course.checks as _checks
_checks.assert_close = lambda *args, **kwargs: None
_checks.assert_tensor = lambda *args, **kwargs: None
''',
    "comparison_functions": '''
import builtins as _builtins, numpy as _np, torch as _torch
_np.allclose = lambda *args, **kwargs: True
_np.isclose = lambda a, b, *args, **kwargs: _np.ones(_np.broadcast(_np.asarray(a), _np.asarray(b)).shape, dtype=bool)
_np.array_equal = lambda *args, **kwargs: True
_torch.equal = lambda *args, **kwargs: True
_torch.allclose = lambda *args, **kwargs: True
_torch.isclose = lambda a, b, *args, **kwargs: _torch.ones(_torch.broadcast_shapes(a.shape, b.shape), dtype=_torch.bool)
_builtins.isinstance = lambda obj, cls: True
''',
    "forged_bridge_replies": '''
import autograder_bridge.peer as _bridge   # the module the kernel serves the grader's calls with
_bridge.Peer._run = lambda self, function, message, buffers: (True, None, [])
''',
    "bridge_never_serves": '''
import autograder_bridge.peer as _bridge
_bridge.serve = lambda *args, **kwargs: None
''',
}

# ---------------------------------------------------------------- on what answers return

LIARS = '''
import torch as _torch
class _AlwaysEqual(_torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", "") in ("__eq__", "eq", "equal", "allclose", "isclose", "__ne__"):
            return True
        return super().__torch_function__(func, types, args, kwargs or {})
    def __eq__(self, other):
        return True
    def __bool__(self):
        return True
class _Anything:
    def __eq__(self, other): return True
    def __float__(self): return 0.0
    def __getattr__(self, name): return lambda *args, **kwargs: self
    def __iter__(self): return iter([self, self])
def _lie(value, kind):
    if kind == "object":
        return _Anything()
    if isinstance(value, _torch.Tensor):
        return value.as_subclass(_AlwaysEqual)
    if isinstance(value, (tuple, list)):
        return type(value)(_lie(v, kind) for v in value)
    return value
'''

BORROWER = '''
def _borrowed(name):
    for value in list(globals().values()):
        if type(value).__name__ == "RemoteCallable":
            return value
    return None
'''

WRAPPERS = {
    "lying_tensor_subclass": "tensor",
    "always_equal_object": "object",
}


def wrap(answer: str, function: str, kind: str) -> str:
    """``answer`` whose ``function`` returns lying values (``kind``: 'tensor' or 'object')."""
    return (f"{answer}\n\n_impl_{function} = {function}\n"
            f"def {function}(*args, **kwargs):\n"
            f"    return _lie(_impl_{function}(*args, **kwargs), {kind!r})\n")


def borrow(answer: str, function: str) -> str:
    """``answer`` that first tries any callable the grader left in the namespace."""
    return (f"{answer}\n\n_own_{function} = {function}\n"
            f"def {function}(*args, **kwargs):\n"
            f"    other = _borrowed({function!r})\n"
            f"    if other is not None:\n"
            f"        try:\n"
            f"            return other(*args, **kwargs)\n"
            f"        except Exception:\n"
            f"            pass\n"
            f"    return _own_{function}(*args, **kwargs)\n")


def delegating_answers(functions: dict[str, str], module: str) -> dict[str, str]:
    """Answers that call the course package's reference of the same name ({answer_id: function})."""
    return {answer_id: f"from ppo_course.{module} import {name} as _reference_{name}\n\n"
                       f"def {name}(*args, **kwargs):\n"
                       f"    return _reference_{name}(*args, **kwargs)\n"
            for answer_id, name in functions.items()}


def source_reading_answers(functions: dict[str, str], module: str) -> dict[str, str]:
    """Answers that read the reference's source from the installed package and run it."""
    return {answer_id: f"import inspect as _inspect, ppo_course.{module} as _module\n"
                       f"exec(_inspect.getsource(_module), globals())\n"
                       f"{name} = globals()[{name!r}]\n"
            for answer_id, name in functions.items()}


# ---------------------------------------------------------------- escapes, with correct answers

def survivor_spawner(token: str) -> str:
    """Code that tries to leave two processes behind, marked with ``token`` in their command lines: one
    double-forked into a session of its own (a daemon), one started by subprocess."""
    return f'''
import os as _os, subprocess as _subprocess, sys as _sys
if _os.fork() == 0:
    _os.setsid()
    if _os.fork() == 0:
        _os.execv(_sys.executable, [_sys.executable, "-c", "import time; time.sleep(600)", {token!r}])
    _os._exit(0)
_subprocess.Popen([_sys.executable, "-c", "import time; time.sleep(600)", {token!r}], start_new_session=True)
'''


def probe(token: str, host_paths: list[str], ports: dict[str, int], secrets: list[str], unix_socket: str) -> str:
    """Code that tries every escape and prints what it reached (the tests check the host too).

    ``secrets`` are strings the probe must not find in any file it can read (hidden tests, another
    student's submission); they are passed reversed, so that the probe's own code does not contain them.
    """
    reversed_secrets = [s[::-1] for s in secrets]
    return f'''
import os as _os, socket as _socket, subprocess as _subprocess, sys as _sys
from pathlib import Path as _Path
import ppo_course as _ppo
_report = []
_repo = _Path(_ppo.__file__).resolve().parents[2]
_report.append(f"solutions visible: {{(_repo / 'solutions').exists()}}")
_cmdlines = []
for _pid in [p for p in _os.listdir("/proc") if p.isdigit()]:
    try:
        _cmdlines.append(open(f"/proc/{{_pid}}/cmdline", "rb").read())
    except OSError:
        pass
_report.append(f"course folder in a cmdline: {{any(b'--course' in c for c in _cmdlines)}}")
_secrets = [s[::-1] for s in {reversed_secrets!r}]
_found, _gradebooks = [], []
for _root, _dirs, _files in _os.walk("/"):
    if _root.startswith(("/proc", "/sys", "/dev", "/usr")) or "site-packages" in _root or "/lib/python" in _root:
        _dirs[:] = []
        continue
    _gradebooks += [_name for _name in _files if _name == "gradebook.db"]
    for _name in _files:
        try:
            _text = open(_os.path.join(_root, _name), "rb").read(2_000_000).decode("utf-8", "replace")
        except OSError:
            continue
        if any(s in _text for s in _secrets):
            _found.append(_os.path.join(_root, _name))
_report.append(f"gradebooks visible: {{len(_gradebooks)}}")
_report.append(f"secret files found: {{len(_found)}} {{_found[:3]}}")
_written = []
for _target in {host_paths!r}:
    try:
        _Path(_target).parent.mkdir(parents=True, exist_ok=True)
        _Path(_target).write_text("written from the sandbox")
        _written.append(_target)
    except OSError:
        pass
_report.append(f"paths written (inside the sandbox, if anywhere): {{len(_written)}}")
for _address, _port in {list(ports.items())!r}:
    _s = _socket.socket(_socket.AF_INET6 if ":" in _address else _socket.AF_INET)
    _s.settimeout(2)
    try:
        _s.connect((_address, _port))
        _report.append(f"connected to {{_address}}")
    except OSError as _error:
        _report.append(f"{{_address}}: {{_error.strerror}}")
for _kind, _path in (("unix socket", {unix_socket!r}), ("abstract socket", "\\0" + {token!r})):
    try:
        _u = _socket.socket(_socket.AF_UNIX)
        _u.connect(_path)
        _report.append(f"connected to the host's {{_kind}}")
    except OSError as _error:
        _report.append(f"{{_kind}}: {{_error.strerror}}")
{survivor_spawner(token)}
_report.append(f"environment secret: {{'PPO_GRADER_SECRET' in _os.environ}}")
print("PROBE " + " | ".join(_report))
'''


RECORDER = '''
_code_the_kernel_ran = []
def _record(lines):
    _code_the_kernel_ran.append("".join(lines))
    return lines
get_ipython().input_transformers_cleanup.insert(0, _record)
'''


def recorded_report(secrets: list[str]) -> str:
    """Printed by the probe's last answer: did any code the kernel was asked to run contain a secret?"""
    return f'''
_hidden = [s[::-1] for s in {[s[::-1] for s in secrets]!r}]
print(f"KERNEL RAN {{len(_code_the_kernel_ran)}} requests; with a secret: "
      f"{{sum(any(s in code for s in _hidden) for code in _code_the_kernel_ran)}}")
'''


def process_spawner(processes: int) -> str:
    """Start up to ``processes`` sleeping children; print how many started (then kill them: they are many)."""
    return f"""
import subprocess as _subprocess
_children = []
try:
    for _ in range({processes}):
        _children.append(_subprocess.Popen(["sleep", "600"]))
except OSError:
    pass
print(f"SPAWNED {{len(_children)}} processes")
"""


def disk_filler(mib: int) -> str:
    """Write ``mib`` MiB to a file in the working folder; print whether it all fitted."""
    return f"""
try:
    with open("filler.bin", "wb") as _handle:
        for _ in range({mib}):
            _handle.write(b"x" * 2**20)
    print("FILLER wrote {mib} MiB")
except OSError as _error:
    print(f"FILLER stopped: {{_error.strerror}}")
"""


FORK_BOMB = process_spawner(5000)
DISK_FILLER = disk_filler(400)


def memory_user(mib: int) -> str:
    return f"_block = bytearray({mib} * 2**20)\nprint('MEMORY touched {mib} MiB')\ndel _block\n"
