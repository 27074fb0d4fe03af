"""The bridge's wire format: frames, and values as plain data (never pickle).

A frame is a 4-byte header length, a JSON header, a 4-byte buffer count, then each buffer as an
8-byte length and its bytes; frames and nesting are bounded, so a hostile kernel can make a test
fail but cannot make the grader allocate without limit, hang past its deadline, or run its code.

What crosses is plain data and nothing else: numbers, strings, None, lists, tuples, dicts,
``torch.dtype``, and tensors and NumPy arrays as dtype + shape + raw bytes. The receiving side builds
fresh base-class tensors from the bytes, so no object the learner made ever reaches the test. A
callable becomes a handle (``peer`` calls it back).
"""
from __future__ import annotations

import json
import math
import select
import socket
import struct
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

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
