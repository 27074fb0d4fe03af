"""The bridge between the grader's trusted tests and the learner's sandboxed kernel: calls as plain data.

``wire`` is the format (frames; values as dtype + shape + bytes, never pickle), ``peer`` the protocol
(calls both ways, callbacks, gradients across the socket) and ``serve``, which the kernel runs while a
test cell calls into it. Light on purpose (NumPy and torch only): the kernel imports it, and so may a
course's own test helpers (``LEARNER_KERNEL``).
"""

LEARNER_KERNEL = "__learner_kernel__"   # in a test namespace the grader made: the kernel the learner's code runs in
