"""Calls between the grader's trusted test process and the learner's sandboxed kernel, as plain data.

Grading runs a lesson's test cells in the grader's own process, never in the kernel where student
code runs: that interpreter can be rewritten from the inside (input transformers, patched
``assert_close``, a ``torch.Tensor`` subclass whose ``__eq__`` always says yes). A test that calls
``clipped_surrogate(r, A)`` calls a ``LearnerFunction`` proxy instead; the proxy sends the arguments
over a Unix socket to the kernel, which runs the learner's function and sends back the result.

What crosses the socket is plain data and nothing else (never pickle): numbers, strings, None,
lists, tuples, dicts, ``torch.dtype``, and tensors and NumPy arrays as dtype + shape + raw bytes.
The receiving side builds fresh base-class tensors from the bytes, so no object the learner made
ever reaches the test. A callable passed as an argument (``Avp`` for conjugate gradient) stays where
it is and is called back over the same socket.

Gradients cross too. When an argument requires grad, the callee makes it a leaf that requires grad,
keeps the graph, and the caller wraps the outputs in ``RemoteGraph``, an autograd Function whose
backward asks the callee for the vector-Jacobian product. The protocol is symmetric (each side is a
``Peer``), so a learner's ``ppo_policy_loss`` can call the course's reference ``clipped_surrogate``
in the grader (``checks.reference_for``) and the gradient still flows back through both processes.
First derivatives only: a second backward through the bridge raises.

The wire format (frames, values as plain data) is ``wire``; this module is the protocol on top.
"""
from __future__ import annotations

import itertools
import socket
import traceback
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch.autograd.function import once_differentiable

from .wire import (
    MAX_DEPTH,
    MAX_ITEMS,
    PLAIN_ERRORS,
    Decoder,
    Encoded,
    Encoder,
    FrameReader,
    Interrupted,
    LearnerError,
    PeerGone,
    PeerTimeout,
    ProtocolError,
    decode_tensor,
    send_frame,
)

# ---------------------------------------------------------------- autograd across the socket

@dataclass
class _Link:
    peer: "Peer"
    graph: int
    outputs: list[torch.Tensor]


class RemoteGraph(torch.autograd.Function):
    """Outputs computed by the other process; backward asks it for the vector-Jacobian product."""

    @staticmethod
    def forward(ctx, link: _Link, *inputs: torch.Tensor):
        ctx.link = link
        ctx.input_count = len(inputs)
        ctx.set_materialize_grads(False)
        return tuple(link.outputs)

    @staticmethod
    @once_differentiable
    def backward(ctx, *grad_outputs):
        grads = ctx.link.peer.vjp(ctx.link.graph, list(grad_outputs), ctx.input_count)
        return (None, *grads)


# ---------------------------------------------------------------- one end of the connection

class Peer:
    """One side of the bridge: sends requests and answers the other side's, over one socket.

    ``request`` sends a message and waits for its answer; while it waits, the other side may send
    requests of its own (a callback, a vector-Jacobian product), which are answered in between, so
    calls can nest to any depth in both directions. ``accept`` says which requests this side answers:
    the grader answers only calls to callables it handed out and products on its own graphs.
    """

    def __init__(self, sock: socket.socket, accept: set[str], check: Callable[[], None] = lambda: None,
                 namespace: dict | None = None):
        self.sock, self.accept, self.namespace = sock, accept, namespace if namespace is not None else {}
        self.reader = FrameReader(sock, check)
        self.deadline: float | None = None
        self.callables: dict[int, Callable] = {}
        self.graphs: dict[int, tuple[list[torch.Tensor], list[torch.Tensor]]] = {}
        self.saved_globals: dict[str, list[tuple[bool, Any]]] = {}
        self.ids = itertools.count(1)
        self.encoder = Encoder(self.register)

    def register(self, function: Callable) -> int:
        handle = next(self.ids)
        self.callables[handle] = function
        return handle

    def revoke(self, handle: int) -> None:
        self.callables.pop(handle, None)

    # -- sending values and requests

    def _send(self, header: dict, encoded: list[Encoded]) -> None:
        buffers: list[bytes] = []
        for part in encoded:   # renumber each part's buffers into one list
            offset = len(buffers)
            for meta in part.tensors:
                meta["buf"] += offset
            _shift_buffers(part.tree, offset)
            buffers += part.buffers
        send_frame(self.sock, header, buffers)

    def request(self, header: dict, encoded: list[Encoded] = ()) -> tuple[dict, list[bytes]]:
        """Send a request and answer nested requests until its reply comes."""
        self._send(header, list(encoded))
        while True:
            message, buffers = self.reader.read(self.deadline)
            op = message.get("op")
            if op in ("return", "raise"):
                return message, buffers
            self.answer(message, buffers)

    def call(self, target: dict, args: tuple, kwargs: dict) -> Any:
        """Call a function on the other side (``target`` names it) and return its result as local values."""
        packed = self.encoder.encode((tuple(args), dict(kwargs)))
        diff_inputs = [t for t, meta in zip(packed.originals, packed.tensors) if meta["grad"]]
        op = "call_name" if "name" in target else "call"
        reply, buffers = self.request(dict(target, op=op, value=packed.tree, tensors=packed.tensors), [packed])
        if reply.get("op") == "raise":
            raise_remote(reply)
        value = self.receive(reply, buffers, diff_inputs)
        for index, meta in reply.get("mutated", []) if isinstance(reply.get("mutated"), list) else []:
            self._apply_mutation(packed.originals, index, meta, buffers)
        return value

    def receive(self, reply: dict, buffers: list[bytes], diff_inputs: list[torch.Tensor]) -> Any:
        """Decode a returned value; outputs that require grad are linked to ``diff_inputs`` by RemoteGraph."""
        metas = reply.get("tensors")
        if not isinstance(metas, list) or len(metas) > MAX_ITEMS:
            raise ProtocolError("a reply without its tensor list")
        tensors = [decode_tensor(meta, buffers) for meta in metas]
        wants_grad = [i for i, meta in enumerate(metas) if meta.get("grad") is True and _differentiable(tensors[i])]
        graph = reply.get("graph")
        if wants_grad and isinstance(graph, int) and diff_inputs:
            linked = RemoteGraph.apply(_Link(self, graph, [tensors[i] for i in wants_grad]), *diff_inputs)
            for i, tensor in zip(wants_grad, linked):
                tensors[i] = tensor
        else:
            for i in wants_grad:   # requires grad on the other side, but not through anything of ours
                tensors[i].requires_grad_(True)
        return Decoder(tensors, buffers, self.remote_callable).decode(reply.get("value"))

    def _apply_mutation(self, originals: list, index: Any, meta: Any, buffers: list[bytes]) -> None:
        """The callee changed an argument in place: change ours the same way, so a test can see it."""
        if not isinstance(index, int) or not 0 <= index < len(originals):
            raise ProtocolError("a changed argument that was never sent")
        new, target = decode_tensor(meta, buffers), originals[index]
        if new.shape == target.shape and new.dtype == target.dtype:
            with torch.no_grad():
                torch.Tensor.copy_(target, new)

    def vjp(self, graph: int, grad_outputs: list, input_count: int) -> list:
        """Ask the other side for d(outputs)/d(inputs) applied to ``grad_outputs`` of its graph ``graph``."""
        packed = self.encoder.encode([g for g in grad_outputs])
        reply, buffers = self.request({"op": "vjp", "graph": graph, "value": packed.tree, "tensors": packed.tensors},
                                      [packed])
        if reply.get("op") == "raise":
            raise_remote(reply)
        grads = self.receive(reply, buffers, [])
        if not isinstance(grads, list) or len(grads) != input_count or not all(
                g is None or isinstance(g, torch.Tensor) for g in grads):
            raise ProtocolError("gradients that do not match the inputs")
        return grads

    def remote_callable(self, handle: int) -> "RemoteCallable":
        return RemoteCallable(self, handle)

    # -- answering the other side's requests

    def answer(self, message: dict, buffers: list[bytes]) -> None:
        op = message.get("op")
        try:
            if op not in self.accept:
                raise ProtocolError(f"a request this side does not answer ({op!r})")
            value, graph, mutated = getattr(self, f"_answer_{op}")(message, buffers)
            out = self.encoder.encode(value)
            header = {"op": "return", "value": out.tree, "tensors": out.tensors, "graph": None, "mutated": []}
            parts = [out]
            if graph is not None:
                header["graph"] = graph
            for index, tensor in mutated:
                changed = self.encoder.encode(tensor)
                parts.append(changed)
                header["mutated"].append([index, changed.tensors[0]])
            self._send(header, parts)
        except (PeerTimeout, PeerGone):
            raise
        except BaseException as error:  # noqa: BLE001 - reported to the caller as data, like a failed call
            self._send(describe_error(error), [])
            if isinstance(error, ProtocolError):
                raise

    def _decode_arguments(self, message: dict, buffers: list[bytes]) -> tuple[tuple, dict, list, list]:
        metas = message.get("tensors")
        if not isinstance(metas, list):
            raise ProtocolError("a call without its tensor list")
        tensors = [decode_tensor(meta, buffers) for meta in metas]
        leaves = []
        for tensor, meta in zip(tensors, metas):
            if meta.get("grad") is True and _differentiable(tensor):
                tensor.requires_grad_(True)
                leaves.append(tensor)
        decoded = Decoder(tensors, buffers, self.remote_callable).decode(message.get("value"))
        if not (isinstance(decoded, tuple) and len(decoded) == 2 and isinstance(decoded[0], tuple)
                and isinstance(decoded[1], dict) and all(isinstance(k, str) for k in decoded[1])):
            raise ProtocolError("call arguments that are not (args, kwargs)")
        return decoded[0], decoded[1], tensors, leaves

    def _run(self, function: Callable, message: dict, buffers: list[bytes]):
        args, kwargs, tensors, leaves = self._decode_arguments(message, buffers)
        before = [None if t.requires_grad else t.clone() for t in tensors]
        result = function(*args, **kwargs)
        mutated = [(i, t) for i, (t, old) in enumerate(zip(tensors, before))
                   if old is not None and not _same_bits(t, old)]
        outputs = [t for t in _tensors_in(result) if t.requires_grad]
        graph = None
        if outputs:
            graph = next(self.ids)
            self.graphs[graph] = (leaves, outputs)
        return result, graph, mutated

    def _answer_call(self, message: dict, buffers: list[bytes]):
        """A call to a callable this side handed out (a test's ``Avp``, a swapped-in reference)."""
        handle = message.get("handle")
        if not isinstance(handle, int) or handle not in self.callables:
            raise ProtocolError("a call to a callable that was never handed out, or is no longer valid")
        return self._run(self.callables[handle], message, buffers)

    def _answer_call_name(self, message: dict, buffers: list[bytes]):
        """A call, by name, of a function in the namespace (the kernel side: the learner's functions)."""
        name = message.get("name")
        if not isinstance(name, str) or name not in self.namespace:
            raise NameError(f"name {name!r} is not defined")
        return self._run(self.namespace[name], message, buffers)

    def _answer_vjp(self, message: dict, buffers: list[bytes]):
        graph = message.get("graph")
        if graph not in self.graphs:
            raise ProtocolError("a gradient request for a graph that does not exist")
        inputs, outputs = self.graphs[graph]
        metas = message.get("tensors")
        if not isinstance(metas, list):
            raise ProtocolError("a gradient request without tensors")
        decoder = Decoder([decode_tensor(m, buffers) for m in metas], buffers, self.remote_callable)
        grads = decoder.decode(message.get("value"))
        if not isinstance(grads, list) or len(grads) != len(outputs):
            raise ProtocolError("gradients that do not match the outputs")
        pairs = [(o, g) for o, g in zip(outputs, grads) if g is not None]
        if not pairs or not inputs:
            return [None] * len(inputs), None, []
        for output, grad in pairs:
            if not isinstance(grad, torch.Tensor) or grad.shape != output.shape:
                raise ProtocolError("a gradient of the wrong shape")
        # The vector-Jacobian product as the gradient of sum(o * g): the same numbers as passing g as
        # grad_outputs, without torch's shape check for grad_outputs, which imports sympy (0.5 s a kernel).
        with torch.enable_grad():   # (asked from inside a no_grad block, say)
            weighted = sum((o * g.to(o.dtype).detach()).sum() for o, g in pairs)
        found = torch.autograd.grad(weighted, inputs, retain_graph=True, allow_unused=True)
        return list(found), None, []

    def _answer_swap(self, message: dict, buffers: list[bytes]):
        """Bind a name in the namespace to a callable of the other side (undone by ``restore``)."""
        name, handle = message.get("name"), message.get("handle")
        if not isinstance(name, str) or not isinstance(handle, int):
            raise ProtocolError("a swap without a name and a handle")
        self.saved_globals.setdefault(name, []).append((name in self.namespace, self.namespace.get(name)))
        self.namespace[name] = self.remote_callable(handle)
        return None, None, []

    def _answer_restore(self, message: dict, buffers: list[bytes]):
        name = message.get("name")
        if not self.saved_globals.get(name):
            raise ProtocolError(f"nothing to restore for {name!r}")
        existed, value = self.saved_globals[name].pop()
        if existed:
            self.namespace[name] = value
        else:
            self.namespace.pop(name, None)
        return None, None, []

    def restore_all(self) -> None:
        """Undo every swap still in force (the connection ended in the middle of a test)."""
        for name in list(self.saved_globals):
            while self.saved_globals[name]:
                self._answer_restore({"name": name}, [])

    def _answer_release(self, message: dict, buffers: list[bytes]):
        """The test cell is over: forget its graphs and callables."""
        self.graphs.clear()
        self.callables.clear()
        return None, None, []


class RemoteCallable:
    """A callable that lives on the other side of the bridge (a test's ``Avp``, a reference function)."""

    def __init__(self, peer: Peer, handle: int):
        self._peer, self._handle = peer, handle

    def __call__(self, *args, **kwargs):
        return self._peer.call({"handle": self._handle}, args, kwargs)

    def __repr__(self) -> str:
        return f"<function from the grader #{self._handle}>"


def _shift_buffers(tree: Any, offset: int) -> None:
    if not offset:
        return
    if isinstance(tree, list):
        for item in tree:
            _shift_buffers(item, offset)
    elif isinstance(tree, dict):
        if tree.get("$") in ("ndarray", "npscalar"):
            tree["buf"] += offset
        for key, item in tree.items():
            if key != "buf":
                _shift_buffers(item, offset)


def _differentiable(tensor: torch.Tensor) -> bool:
    return tensor.dtype.is_floating_point or tensor.dtype.is_complex


def _same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.numel() == 0:
        return True
    return bool(torch.equal(a.detach().reshape(-1).view(torch.uint8), b.reshape(-1).view(torch.uint8)))


def _tensors_in(value: Any, depth: int = 0) -> list[torch.Tensor]:
    if depth > MAX_DEPTH:
        return []
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for item in value for t in _tensors_in(item, depth + 1)]
    if isinstance(value, dict):
        return [t for item in value.values() for t in _tensors_in(item, depth + 1)]
    return []


def describe_error(error: BaseException) -> dict:
    """An exception as data: its type's name, its message, and a short traceback."""
    lines = traceback.format_exception(type(error), error, error.__traceback__)
    return {"op": "raise", "type": type(error).__name__, "message": str(error)[:2000],
            "traceback": "".join(lines)[-4000:]}


def raise_remote(reply: dict) -> None:
    """Raise, here, the exception the other side reported (re-created only for plain built-in types), marked
    ``raised_by_learner`` (in the grader: the learner's code raised it, so its text is theirs, not a test's)."""
    name, message = str(reply.get("type", "Error"))[:100], str(reply.get("message", ""))[:2000]
    if name in ("KeyboardInterrupt", "Interrupted"):
        error: BaseException = Interrupted(message or "interrupted")
    elif name == "ProtocolError":
        error = ProtocolError(message)
    elif name in PLAIN_ERRORS:
        error = PLAIN_ERRORS[name](message)
    else:
        error = LearnerError(f"{name}: {message}" if message else name)
    error.raised_by_learner = True
    raise error


# ---------------------------------------------------------------- the kernel's side

def serve(path: str) -> None:
    """Run inside the learner's kernel while one test cell runs: answer the grader's calls, then return.

    Started by the grader as a silent execute request; it connects to the grader's socket at ``path``
    and serves the notebook's namespace (the learner's functions are looked up at each call).
    """
    from IPython import get_ipython

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    serve_connection(sock, get_ipython().user_ns)


def serve_connection(sock: socket.socket, namespace: dict) -> None:
    """Answer calls into ``namespace`` (and gradient requests) until the grader says the cell is done."""
    peer = Peer(sock, accept={"call", "call_name", "vjp", "swap", "restore", "release"}, namespace=namespace)
    try:
        while True:
            try:
                message, buffers = peer.reader.read()
            except KeyboardInterrupt:
                continue  # an interrupt that arrived between calls: nothing to stop
            if message.get("op") == "done":
                return
            peer.answer(message, buffers)
    finally:
        peer.restore_all()
        sock.close()
