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

A frame is a 4-byte header length, a JSON header, a 4-byte buffer count, then each buffer as an
8-byte length and its bytes; frames and nesting are bounded, so a hostile kernel can make a test
fail but cannot make the grader allocate without limit, hang past its deadline, or run its code.
"""
from __future__ import annotations

import itertools
import json
import math
import select
import socket
import struct
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from torch.autograd.function import once_differentiable

MAX_FRAME_BYTES = 32 * 2**20      # one message; the course's tests pass kilobytes
MAX_RECEIVED_BYTES = 256 * 2**20  # all messages one reader takes (the grader makes one per test cell)
MAX_DEPTH = 32
MAX_ITEMS = 100_000
TORCH_DTYPES = {str(d).removeprefix("torch."): d for d in (
    torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64,
    torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.complex64, torch.complex128)}
NUMPY_KINDS = "biufc"             # bool, int, uint, float, complex: nothing with objects or pointers
# Exceptions a learner's function may raise that the test sees as themselves (anything else: LearnerError).
PLAIN_ERRORS = {e.__name__: e for e in (
    ArithmeticError, AssertionError, AttributeError, IndexError, KeyError, LookupError, NameError,
    NotImplementedError, OverflowError, RecursionError, RuntimeError, TypeError, ValueError, ZeroDivisionError)}


class ProtocolError(Exception):
    """The other side sent something that is not a valid message (a broken or tampered kernel)."""


class LearnerError(Exception):
    """An exception raised by the learner's code, of a type the grader does not re-create."""


class PeerTimeout(Exception):
    """No answer before the deadline."""


class PeerGone(Exception):
    """The other side closed the connection (its process died or stopped serving)."""


class Interrupted(BaseException):
    """The other side's code was interrupted (a test's time limit). Not an Exception, so that a
    test's ``except Exception`` cannot turn a time-out into a pass."""


# ---------------------------------------------------------------- framing

def send_frame(sock: socket.socket, header: dict, buffers: list[bytes]) -> None:
    head = json.dumps(header, allow_nan=True).encode()
    parts = [struct.pack("!I", len(head)), head, struct.pack("!I", len(buffers))]
    for buf in buffers:
        parts += [struct.pack("!Q", len(buf)), buf]
    sock.sendall(b"".join(parts))


class FrameReader:
    """Reads frames from a socket with a deadline, calling ``check`` every poll (is the peer alive?)."""

    def __init__(self, sock: socket.socket, check: Callable[[], None] = lambda: None):
        self.sock, self.check = sock, check
        self.received = 0

    def _exactly(self, n: int, deadline: float | None) -> bytes:
        chunks, got = [], 0
        while got < n:
            wait = 0.1 if deadline is None else min(0.1, max(0.0, deadline - time.monotonic()))
            ready, _, _ = select.select([self.sock], [], [], wait)
            if not ready:
                self.check()
                if deadline is not None and time.monotonic() >= deadline:
                    raise PeerTimeout("no answer before the deadline")
                continue
            chunk = self.sock.recv(min(n - got, 1 << 20))
            if not chunk:
                raise PeerGone("the connection was closed")
            self.received += len(chunk)
            if self.received > MAX_RECEIVED_BYTES:
                raise ProtocolError(f"more than {MAX_RECEIVED_BYTES // 2**20} MiB sent in one test cell")
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def read(self, deadline: float | None = None) -> tuple[dict, list[bytes]]:
        (length,) = struct.unpack("!I", self._exactly(4, deadline))
        if length > MAX_FRAME_BYTES:
            raise ProtocolError(f"a message header of {length} bytes")
        try:
            header = json.loads(self._exactly(length, deadline))
        except ValueError as error:
            raise ProtocolError(f"a message that is not JSON ({error})") from None
        if not isinstance(header, dict):
            raise ProtocolError("a message that is not a JSON object")
        (count,) = struct.unpack("!I", self._exactly(4, deadline))
        if count > MAX_ITEMS:
            raise ProtocolError(f"{count} buffers in one message")
        buffers, total = [], length
        for _ in range(count):
            (size,) = struct.unpack("!Q", self._exactly(8, deadline))
            total += size
            if total > MAX_FRAME_BYTES:
                raise ProtocolError(f"a message over {MAX_FRAME_BYTES // 2**20} MiB")
            buffers.append(self._exactly(size, deadline))
        return header, buffers


# ---------------------------------------------------------------- values as plain data

@dataclass
class Encoded:
    """A value as JSON plus the raw buffers its arrays point to, and the tensors in it (flat order)."""
    tree: Any
    tensors: list[dict] = field(default_factory=list)   # {"dtype", "shape", "buf", "grad"}
    buffers: list[bytes] = field(default_factory=list)
    originals: list[torch.Tensor] = field(default_factory=list)


class Encoder:
    """Turns a value into ``Encoded``; callables become handles registered with ``register``."""

    def __init__(self, register: Callable[[Callable], int]):
        self.register = register

    def encode(self, value: Any) -> Encoded:
        out = Encoded(None)
        out.tree = self._encode(value, out, 0)
        return out

    def _buffer(self, data: bytes, out: Encoded) -> int:
        out.buffers.append(data)
        return len(out.buffers) - 1

    def _encode(self, value: Any, out: Encoded, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise TypeError("a value nested too deeply to pass between grader and kernel")
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return int(value)
        if isinstance(value, float):
            return {"$": "float", "v": repr(float(value))} if not math.isfinite(value) else float(value)
        if isinstance(value, complex):
            return {"$": "complex", "re": repr(value.real), "im": repr(value.imag)}
        if isinstance(value, torch.Tensor):
            return self._tensor(value, out)
        if isinstance(value, np.ndarray) or isinstance(value, np.generic):
            array = np.asarray(value)
            if array.dtype.kind not in NUMPY_KINDS:
                raise TypeError(f"a NumPy array of dtype {array.dtype} cannot be passed (numbers only)")
            array = np.array(array, order="C")   # (ascontiguousarray would make a 0-d array 1-d)
            return {"$": "ndarray" if isinstance(value, np.ndarray) else "npscalar", "dtype": array.dtype.str,
                    "shape": list(array.shape), "buf": self._buffer(array.tobytes(), out)}
        if isinstance(value, torch.dtype):
            return {"$": "torch.dtype", "name": str(value).removeprefix("torch.")}
        if isinstance(value, (list, tuple)):
            items = [self._encode(v, out, depth + 1) for v in value]
            return items if type(value) is list else {"$": "tuple", "items": items}
        if isinstance(value, dict):
            return {"$": "dict", "items": [[self._encode(k, out, depth + 1), self._encode(v, out, depth + 1)]
                                            for k, v in value.items()]}
        if callable(value):
            return {"$": "callable", "handle": self.register(value)}
        raise TypeError(f"{type(value).__name__} objects cannot be passed between the grader and the kernel: "
                        "use tensors, arrays, numbers, strings, lists, tuples or dicts")

    def _tensor(self, tensor: torch.Tensor, out: Encoded) -> dict:
        name = str(tensor.dtype).removeprefix("torch.")
        if name not in TORCH_DTYPES or tensor.layout != torch.strided:
            raise TypeError(f"a {tensor.layout} tensor of dtype {tensor.dtype} cannot be passed")
        plain = torch.Tensor.detach(tensor).cpu().contiguous()
        data = plain.reshape(-1).view(torch.uint8).numpy().tobytes() if plain.numel() else b""
        out.tensors.append({"dtype": name, "shape": list(plain.shape), "buf": self._buffer(data, out),
                            "grad": bool(tensor.requires_grad)})
        out.originals.append(tensor)
        return {"$": "tensor", "k": len(out.tensors) - 1}


def _shape(raw: Any) -> tuple[int, ...]:
    if not isinstance(raw, list) or len(raw) > 64 or not all(isinstance(n, int) and n >= 0 for n in raw):
        raise ProtocolError("a tensor with an invalid shape")
    return tuple(raw)


def decode_tensor(meta: Any, buffers: list[bytes]) -> torch.Tensor:
    """A fresh base-class tensor from dtype + shape + bytes (validated: a tampered kernel only fails)."""
    if not isinstance(meta, dict) or meta.get("dtype") not in TORCH_DTYPES:
        raise ProtocolError("a tensor of unknown dtype")
    dtype, shape, buf = TORCH_DTYPES[meta["dtype"]], _shape(meta.get("shape")), _buffer_of(meta, buffers)
    numel = math.prod(shape)
    if numel * torch.empty((), dtype=dtype).element_size() != len(buf):
        raise ProtocolError("a tensor whose bytes do not match its shape")
    if numel == 0:
        return torch.empty(shape, dtype=dtype)
    return torch.frombuffer(bytearray(buf), dtype=torch.uint8).view(dtype).reshape(shape)


def _buffer_of(meta: dict, buffers: list[bytes]) -> bytes:
    index = meta.get("buf")
    if not isinstance(index, int) or not 0 <= index < len(buffers):
        raise ProtocolError("a reference to a missing buffer")
    return buffers[index]


class Decoder:
    """Builds values from ``Encoded`` data; tensors come from ``tensors`` (already decoded, flat order)."""

    def __init__(self, tensors: list[torch.Tensor], buffers: list[bytes], remote_callable: Callable[[int], Any]):
        self.tensors, self.buffers, self.remote_callable = tensors, buffers, remote_callable
        self.count = 0

    def decode(self, tree: Any, depth: int = 0) -> Any:
        self.count += 1
        if depth > MAX_DEPTH or self.count > MAX_ITEMS:
            raise ProtocolError("a value nested too deeply or too large")
        if tree is None or isinstance(tree, (bool, int, float, str)):
            return tree
        if isinstance(tree, list):
            return [self.decode(v, depth + 1) for v in tree]
        if not isinstance(tree, dict):
            raise ProtocolError("an unknown kind of value")
        kind = tree.get("$")
        if kind == "tensor":
            k = tree.get("k")
            if not isinstance(k, int) or not 0 <= k < len(self.tensors):
                raise ProtocolError("a reference to a missing tensor")
            return self.tensors[k]
        if kind == "tuple":
            return tuple(self.decode(v, depth + 1) for v in _items(tree))
        if kind == "dict":
            pairs = [self.decode(pair, depth + 1) for pair in _items(tree)]
            if not all(isinstance(p, list) and len(p) == 2 for p in pairs):
                raise ProtocolError("a dict that is not a list of pairs")
            try:
                return {k: v for k, v in pairs}
            except TypeError:
                raise ProtocolError("a dict with an unhashable key") from None
        if kind == "float":
            return float(_text(tree, "v"))
        if kind == "complex":
            return complex(float(_text(tree, "re")), float(_text(tree, "im")))
        if kind in ("ndarray", "npscalar"):
            return _array(tree, self.buffers, scalar=kind == "npscalar")
        if kind == "torch.dtype":
            if tree.get("name") not in TORCH_DTYPES:
                raise ProtocolError("an unknown torch dtype")
            return TORCH_DTYPES[tree["name"]]
        if kind == "callable":
            if not isinstance(tree.get("handle"), int):
                raise ProtocolError("a callable without a handle")
            return self.remote_callable(tree["handle"])
        raise ProtocolError(f"an unknown kind of value {kind!r}")


def _items(tree: dict) -> list:
    items = tree.get("items")
    if not isinstance(items, list):
        raise ProtocolError("a container without items")
    return items


def _text(tree: dict, key: str) -> str:
    value = tree.get(key)
    if not isinstance(value, str) or len(value) > 40:
        raise ProtocolError("a number written as text that is not a number")
    return value


def _array(tree: dict, buffers: list[bytes], scalar: bool):
    try:
        dtype = np.dtype(tree.get("dtype"))
    except TypeError:
        raise ProtocolError("an array of unknown dtype") from None
    if dtype.kind not in NUMPY_KINDS or dtype.hasobject:
        raise ProtocolError("an array that is not numbers")
    shape, buf = _shape(tree.get("shape")), _buffer_of(tree, buffers)
    if math.prod(shape) * dtype.itemsize != len(buf):
        raise ProtocolError("an array whose bytes do not match its shape")
    array = np.frombuffer(buf, dtype=dtype).reshape(shape).copy()
    return array[()] if scalar else array


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
        found = torch.autograd.grad([o for o, _ in pairs], inputs, [g.to(o.dtype) for o, g in pairs],
                                    retain_graph=True, allow_unused=True)
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
