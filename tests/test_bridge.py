"""The grader <-> kernel bridge, both ends in this process: values, gradients, callbacks, and abuse.

The kernel end runs ``serve_connection`` in a thread over a socketpair, serving a namespace that plays
the learner's notebook; the grader end is a ``Peer`` as the autograder makes it.
"""
from __future__ import annotations

import json
import math
import socket
import struct
import threading
import time

import numpy as np
import pytest
import torch

from ppo_course import clipping
from ppo_course.autograder.bridge import peer as bridge
from ppo_course.autograder.bridge import wire as bridge_wire
from ppo_course.autograder.bridge.peer import Peer
from ppo_course.autograder.bridge.wire import FrameReader, Interrupted, LearnerError, PeerTimeout, ProtocolError

LEARNER = '''
import time
import numpy as np
import torch

def clipped_surrogate(ratio, adv, eps=0.2):
    return torch.minimum(ratio * adv, torch.clamp(ratio, 1 - eps, 1 + eps) * adv)

def ppo_policy_loss(logp_new, logp_old, adv, eps=0.2):
    return -clipped_surrogate(torch.exp(logp_new - logp_old), adv, eps).mean()

def solve(Avp, b, iters=10):
    x, r = torch.zeros_like(b), b.clone()
    p, rr = r.clone(), r @ r
    for _ in range(iters):
        if rr < 1e-12:
            break
        Ap = Avp(p)
        alpha = rr / (p @ Ap)
        x, r = x + alpha * p, r - alpha * Ap
        p, rr = r + (r @ r) / rr * p, r @ r
    return x

def echo(*args, **kwargs):
    return args, kwargs

def doubles_in_place(x):
    x.mul_(2)
    return None

def several(x):
    return x * 2, {"sum": (x ** 2).sum(), "n": 3}, [np.arange(3), torch.arange(3)]

class Liar(torch.Tensor):
    def __eq__(self, other):
        return True
    def __bool__(self):
        return True

def lying_tensor(x):
    return Liar(torch.zeros_like(x))

class Anything:
    def __eq__(self, other):
        return True

def lying_object(x):
    return Anything()

class Custom(Exception):
    pass

def raises_value_error(x):
    raise ValueError("shapes do not match")

def raises_custom(x):
    raise Custom("mine")

def sleeps(seconds):
    time.sleep(seconds)
    return seconds

def uses_parameter(x):
    w = torch.ones(1, requires_grad=True)
    return (w * x).sum()
'''


@pytest.fixture
def kernel():
    """(grader Peer, learner namespace, serving thread) over a socketpair; closed afterwards."""
    grader_end, kernel_end = socket.socketpair()
    namespace: dict = {}
    exec(LEARNER, namespace)
    thread = threading.Thread(target=bridge.serve_connection, args=(kernel_end, namespace), daemon=True)
    thread.start()
    peer = Peer(grader_end, accept={"call", "vjp"})
    peer.deadline = time.monotonic() + 30
    yield peer, namespace, thread
    bridge.send_frame(grader_end, {"op": "done"}, [])
    thread.join(5)
    grader_end.close()


def call(peer, name, *args, **kwargs):
    return peer.call({"name": name}, args, kwargs)


def test_plain_values_round_trip(kernel):
    peer, _, _ = kernel
    values = (1, -2.5, float("inf"), True, None, "text", 3 + 4j, [1, (2, 3)], {"a": 1, 2: "b"},
              np.float32(1.5), np.arange(6, dtype=np.int16).reshape(2, 3), torch.float64,
              torch.tensor([True, False]), torch.ones(2, dtype=torch.bfloat16), torch.empty(0, 3), torch.tensor(7))
    args, kwargs = call(peer, "echo", *values, key=np.nan)
    assert math.isnan(kwargs["key"]), f"NaN passed as a keyword argument came back as {kwargs['key']!r}"
    for sent, got in zip(values, args):
        assert type(got) is type(sent), f"{sent!r} crossed the bridge and came back as a {type(got).__name__}"
        if isinstance(sent, torch.Tensor):
            assert got.dtype == sent.dtype and torch.equal(got, sent), f"the tensor {sent!r} came back as {got!r}"
        elif isinstance(sent, np.ndarray):
            assert got.dtype == sent.dtype and np.array_equal(got, sent), f"the array {sent!r} came back as {got!r}"
        else:
            assert got == sent


def test_gradients_flow_back_through_the_learner_function(kernel):
    peer, _, _ = kernel
    ratio = torch.tensor([0.5, 1.0, 1.5, 0.5, 1.0, 1.5], requires_grad=True)
    adv = torch.tensor([1.0, 1.0, 1.0, -1.0, -1.0, -1.0])
    value = call(peer, "clipped_surrogate", ratio, adv)
    assert type(value) is torch.Tensor and value.requires_grad, (
        f"the learner's result must arrive as a plain tensor attached to the grader's autograd graph: {value!r}")
    assert torch.allclose(value.detach(), clipping.clipped_surrogate(ratio, adv).detach()), (
        "the learner's clipped_surrogate, called across the bridge, must give the reference's values")
    value.sum().backward()
    assert ratio.grad.tolist() == [1.0, 1.0, 0.0, 0.0, -1.0, -1.0], (
        "backward() in the grader must reach the ratio through the learner's function, zero where clipped")
    with pytest.raises(RuntimeError):  # first derivatives only
        x = torch.tensor([1.0], requires_grad=True)
        (g,) = torch.autograd.grad(call(peer, "clipped_surrogate", x, torch.ones(1)).sum(), x, create_graph=True)
        g.sum().backward()


def test_a_reference_swapped_in_runs_in_the_grader_and_gradients_cross_twice(kernel):
    peer, namespace, _ = kernel
    seen = []

    def reference(ratio, adv, eps=0.2):
        seen.append(ratio.shape)
        return clipping.clipped_surrogate(ratio, adv, eps)

    handle = peer.register(reference)
    assert peer.request({"op": "swap", "name": "clipped_surrogate", "handle": handle})[0]["op"] == "return", (
        "the kernel must accept swapping the grader's reference in for clipped_surrogate")
    logp_old = torch.log(torch.tensor([0.2, 0.5, 0.3], dtype=torch.float64))
    logp_new = torch.log(torch.tensor([0.3, 0.5, 0.3], dtype=torch.float64)).requires_grad_(True)
    adv = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    loss = call(peer, "ppo_policy_loss", logp_new, logp_old, adv)
    expected = clipping.ppo_policy_loss(logp_new, logp_old, adv)
    assert seen == [torch.Size([3])] and torch.allclose(loss, expected), (
        f"ppo_policy_loss in the kernel must call the swapped-in reference once (calls: {seen}) and give "
        f"the reference loss {expected.item()}, got {loss.item()}")
    loss.backward()
    (want,) = torch.autograd.grad(expected, logp_new)
    assert torch.allclose(logp_new.grad, want), (
        f"gradients that cross the bridge twice (grader -> kernel -> grader reference) must be the reference's: "
        f"{logp_new.grad} != {want}")
    assert peer.request({"op": "restore", "name": "clipped_surrogate"})[0]["op"] == "return", (
        "the kernel must accept restoring the learner's own clipped_surrogate")
    assert not isinstance(namespace["clipped_surrogate"], bridge.RemoteCallable), (
        "after restore the learner's namespace must hold its own function again, not the grader's reference")


def test_callables_are_called_back_in_the_grader(kernel):
    peer, _, _ = kernel
    A = torch.tensor([[4.0, 1.0], [1.0, 3.0]], dtype=torch.float64)
    b = torch.tensor([1.0, 2.0], dtype=torch.float64)
    products = []

    def Avp(v):
        products.append(v)
        return A @ v

    x = call(peer, "solve", Avp, b)
    assert torch.allclose(x, torch.linalg.solve(A, b)) and len(products) == 2, (
        f"the learner's CG must solve the 2x2 system calling the grader's Avp back twice: x={x}, "
        f"{len(products)} calls")


def test_in_place_changes_reach_the_caller_and_results_are_plain(kernel):
    peer, _, _ = kernel
    x = torch.ones(3)
    assert call(peer, "doubles_in_place", x) is None, "a function that returns None must return None over the bridge"
    assert x.tolist() == [2.0, 2.0, 2.0], "a test that checks inputs are untouched must see the change"
    doubled, stats, arrays = call(peer, "several", torch.tensor([1.0, 2.0], requires_grad=True))
    assert doubled.requires_grad and stats["n"] == 3 and isinstance(arrays[0], np.ndarray), (
        f"nested results must arrive as plain values (a tensor with its graph, an int, an array): "
        f"{doubled!r}, {stats!r}, {arrays!r}")
    lie = call(peer, "lying_tensor", torch.ones(2))
    assert type(lie) is torch.Tensor and not bool((lie == torch.ones(2)).all()), (
        f"a Tensor subclass that says == is always True must arrive as a plain tensor that tells the truth: {lie!r}")
    with pytest.raises(TypeError, match="Anything objects cannot be passed"):
        call(peer, "lying_object", torch.ones(2))
    assert call(peer, "uses_parameter", torch.ones(2)).requires_grad, (
        "a result that depends on a parameter created in the learner's function must still require grad")


def test_errors_arrive_as_data(kernel):
    peer, _, _ = kernel
    with pytest.raises(ValueError, match="shapes do not match"):
        call(peer, "raises_value_error", 1)
    with pytest.raises(LearnerError, match="Custom: mine"):
        call(peer, "raises_custom", 1)
    with pytest.raises(NameError):
        call(peer, "not_defined", 1)
    assert call(peer, "clipped_surrogate", torch.ones(1), torch.ones(1)).item() == 1.0, "still serving"


def test_a_slow_learner_times_out(kernel):
    peer, _, _ = kernel
    peer.deadline = time.monotonic() + 0.3
    with pytest.raises(PeerTimeout):
        call(peer, "sleeps", 2)


def test_the_grader_answers_nothing_but_its_own_callables():
    """What a tampered kernel can send the grader: every request outside the contract is refused."""
    grader_end, kernel_end = socket.socketpair()
    peer = Peer(grader_end, accept={"call", "vjp"}, namespace={"secret": lambda: "hidden"})
    handle = peer.register(lambda x: x + 1)
    peer.revoke(handle)
    requests = [{"op": "call_name", "name": "secret",
                 "value": [{"$": "tuple", "items": []}, {"$": "dict", "items": []}], "tensors": []},
                {"op": "call", "handle": handle, "value": [], "tensors": []},
                {"op": "vjp", "graph": 12345, "value": [], "tensors": []},
                {"op": "swap", "name": "assert_close", "handle": 1}]
    for request in requests:
        bridge.send_frame(kernel_end, request, [])
        with pytest.raises(ProtocolError):
            peer.answer(*peer.reader.read(time.monotonic() + 5))
        reply = json.loads(_raw_frame(kernel_end)[0])
        assert reply["op"] == "raise" and reply["type"] == "ProtocolError", (
            f"the grader must refuse the kernel's {request['op']!r} request outside the contract with a "
            f"ProtocolError, not answer it: {reply}")


def _raw_frame(sock):
    reader = FrameReader(sock)
    header, buffers = reader.read(time.monotonic() + 5)
    return json.dumps(header), buffers


@pytest.mark.parametrize("frame", [
    struct.pack("!I", 2**31) + b"{}",                                   # a header larger than any allowed
    struct.pack("!I", 5) + b"nope!" + struct.pack("!I", 0),           # not JSON
    struct.pack("!I", 2) + b"[]" + struct.pack("!I", 0),              # JSON, not an object
    struct.pack("!I", 2) + b"{}" + struct.pack("!I", 10**7),          # too many buffers
    struct.pack("!I", 2) + b"{}" + struct.pack("!I", 1) + struct.pack("!Q", 2**40),  # a huge buffer
])
def test_malformed_frames_are_refused(frame):
    grader_end, kernel_end = socket.socketpair()
    kernel_end.sendall(frame)
    with pytest.raises(ProtocolError):
        FrameReader(grader_end).read(time.monotonic() + 5)


@pytest.mark.parametrize("meta", [
    {"dtype": "object", "shape": [1], "buf": 0},
    {"dtype": "float32", "shape": [3], "buf": 0},           # 8 bytes for 12 needed
    {"dtype": "float32", "shape": [-1], "buf": 0},
    {"dtype": "float32", "shape": "2", "buf": 0},
    {"dtype": "float32", "shape": [2], "buf": 7},
])
def test_tensors_that_do_not_add_up_are_refused(meta):
    with pytest.raises(ProtocolError):
        bridge_wire.decode_tensor(meta, [b"\0" * 8])


def test_values_that_are_not_plain_data_are_refused():
    decoder = bridge_wire.Decoder([], [], lambda handle: None)
    for tree in ({"$": "pickle", "data": "..."}, {"$": "tensor", "k": 3}, {"$": "ndarray", "dtype": "O", "shape": [1],
                 "buf": 0}, {"$": "float", "v": "1" * 100}, {"$": "dict", "items": [[[1], 2]]}):
        with pytest.raises(ProtocolError):
            decoder.decode(tree)
    deep = []
    for _ in range(100):
        deep = [deep]
    with pytest.raises(ProtocolError):
        decoder.decode(deep)


def test_an_interrupted_learner_is_not_an_exception_a_test_can_catch():
    with pytest.raises(Interrupted):
        try:
            bridge.raise_remote({"op": "raise", "type": "KeyboardInterrupt", "message": ""})
        except Exception:  # noqa: BLE001 - what a test might do
            pytest.fail("a time-out must not be catchable as an Exception")
