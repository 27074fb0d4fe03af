"""Helpers for the tests inside the notebooks: assertions whose messages teach.

nbgrader facts these respect: a test cell must ``assert`` (a bare expression that evaluates False
still gets full credit) and must write nothing to stderr (a warning scores the cell 0).
"""
from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator

import numpy as np
import torch


def _as_array(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().double().numpy()
    return np.asarray(value, dtype=float)


SHOWN_VALUES = 8   # arrays up to this size are printed whole in a failure message


def assert_close(actual: Any, expected: Any, what: str, hint: str = "", atol: float = 1e-6,
                 rtol: float = 1e-5) -> None:
    """Assert ``actual`` equals ``expected`` elementwise, saying what was expected and what came back."""
    got, want = _as_array(actual), _as_array(expected)
    assert got.shape == want.shape, f"{what}: expected shape {want.shape}, got {got.shape}. {hint}".strip()
    if not np.allclose(got, want, atol=atol, rtol=rtol):
        bad = np.argwhere(~np.isclose(got, want, atol=atol, rtol=rtol))
        first = tuple(int(i) for i in bad[0]) if bad.size else ()
        if want.size <= SHOWN_VALUES:
            found = f"expected {np.round(want, 4).tolist()}, got {np.round(got, 4).tolist()}" + (
                f" (first mismatch at index {first})" if first else "")
        else:   # a long array would bury the hint: show the first mismatch only
            found = (f"{len(bad)} of {want.size} entries differ; at index {first} expected "
                     f"{want[first]:.4g}, got {got[first]:.4g}")
        raise AssertionError(f"{what}: {found}" + (f". {hint}" if hint else ""))


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


REVEAL_ENV = "PPO_COURSE_REVEAL"   # "1": answers shown without a guess, for readers who cannot type one


def answers_revealed() -> bool:
    """True where predictions show their answers without a guess: the course's website and the tests
    that read every output (``PPO_COURSE_REVEAL=1``). A learner's notebook never sets it."""
    return os.environ.get(REVEAL_ENV) == "1"


def prediction_made(guess: Any) -> bool:
    """True once the learner has written a guess (or where answers are revealed to readers anyway).

    A predict-then-run cell shows what gives its answer away (a table, a plot, a printed number) only
    under ``if prediction_made(my_guess):``, so that running it before guessing spoils nothing.
    """
    return not (guess is None or guess is Ellipsis) or answers_revealed()


def check_prediction(guess: Any, measured: Any, what: str, *, rel_tol: float = 0.15, abs_tol: float = 0.0,
                     why: str = "") -> None:
    """Compare a learner's prediction with what the code measured, and print the verdict.

    Used by the lessons' predict-then-run cells: the learner commits to ``guess`` before running,
    then this prints whether it was close and ``why`` (the idea to take away). Without a guess
    (``None``) it withholds both the measurement and ``why`` and asks for a guess first (except where
    ``answers_revealed()``). A number is close within ``rel_tol`` (relative) or ``abs_tol``; a string
    (the letter of a multiple-choice answer) must match ignoring case; a sequence is compared entry by
    entry. It never raises: a prediction is for learning, not for grading, and it returns nothing, so
    a cell that ends with it shows only the verdict (no stray ``True``/``False``).
    """
    shown = _format(measured)
    if guess is None or guess is Ellipsis:
        if not answers_revealed():
            print(f"{what}: no guess yet. Write yours in the cell above and run this cell again; the answer "
                  "appears once you have committed to a guess (that is what makes the result stick).")
            return
        print(f"{what}: measured {shown}.")
        if why:
            print(why)
        return
    if isinstance(measured, str):
        right = str(guess).strip().lower() == measured.strip().lower()
    else:
        want, got = _as_array(measured), _as_array(guess)
        right = want.shape == got.shape and bool(np.allclose(got, want, rtol=rel_tol, atol=abs_tol))
    verdict = "right" if right else "not quite"
    print(f"{what}: you predicted {_format(guess)}, measured {shown}: {verdict}.")
    if why:
        print(why)


def _format(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    array = _as_array(value)
    if np.all(np.isfinite(array)) and np.all(array == np.round(array)):
        array = array.astype(np.int64)   # counts print as counts: [1, 2, 6], not [1.0, 2.0, 6.0]
        return str(array.tolist())
    return f"{float(array):.4g}" if array.ndim == 0 else str(np.round(array, 3).tolist())
