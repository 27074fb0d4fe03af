"""Helpers for the tests inside the notebooks: assertions whose messages teach.

nbgrader facts these respect: a test cell must ``assert`` (a bare expression that evaluates False
still gets full credit) and must write nothing to stderr (a warning scores the cell 0).
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator

import numpy as np
import torch


def _as_array(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().double().numpy()
    return np.asarray(value, dtype=float)


def assert_close(actual: Any, expected: Any, what: str, hint: str = "", atol: float = 1e-6,
                 rtol: float = 1e-5) -> None:
    """Assert ``actual`` equals ``expected`` elementwise, saying what was expected and what came back."""
    got, want = _as_array(actual), _as_array(expected)
    assert got.shape == want.shape, f"{what}: expected shape {want.shape}, got {got.shape}. {hint}".strip()
    if not np.allclose(got, want, atol=atol, rtol=rtol):
        bad = np.argwhere(~np.isclose(got, want, atol=atol, rtol=rtol))
        first = tuple(int(i) for i in bad[0]) if bad.size else ()
        raise AssertionError(
            f"{what}: expected {np.round(want, 4).tolist()}, got {np.round(got, 4).tolist()}"
            + (f" (first mismatch at index {first})" if first else "") + (f". {hint}" if hint else "")
        )


def assert_tensor(value: Any, what: str, shape: tuple | None = None, dtype: torch.dtype | None = None) -> None:
    """Assert ``value`` is a torch tensor (of ``shape`` and ``dtype`` when given)."""
    assert isinstance(value, torch.Tensor), f"{what} must return a torch.Tensor, got {type(value).__name__}"
    if shape is not None:
        assert tuple(value.shape) == tuple(shape), f"{what}: expected shape {tuple(shape)}, got {tuple(value.shape)}"
    if dtype is not None:
        assert value.dtype == dtype, f"{what}: expected dtype {dtype}, got {value.dtype}"


LEARNER_KERNEL = "__learner_kernel__"   # in a namespace the autograder made: the kernel the learner's code runs in


@contextlib.contextmanager
def reference_for(namespace: dict, **references: Any) -> Iterator[None]:
    """Temporarily replace names in ``namespace`` (a notebook's ``globals()``) by reference versions.

    A test of one exercise uses it so that a mistake in an earlier exercise the learner's code calls
    is not charged twice: each graded cell grades one concept. When the autograder runs the test,
    the learner's code lives in another process (``namespace[LEARNER_KERNEL]``), and the names are
    replaced there too, by callables that run the references in the grader.
    """
    missing = object()
    saved = {name: namespace.get(name, missing) for name in references}
    namespace.update(references)
    try:
        with (namespace[LEARNER_KERNEL].swapped(references) if LEARNER_KERNEL in namespace
              else contextlib.nullcontext()):
            yield
    finally:
        for name, value in saved.items():
            if value is missing:
                namespace.pop(name, None)
            else:
                namespace[name] = value
