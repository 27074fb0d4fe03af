"""check_prediction: the verdict the predict-then-run cells print."""
from __future__ import annotations

import pytest

from ppo_course.checks import check_prediction, prediction_made


@pytest.mark.parametrize("guess, measured, kwargs, verdict", [
    (0.5, 0.55, {}, "right"),                       # within the default 15%
    (0.5, 0.7, {}, "not quite"),
    ("B", "b", {}, "right"),                        # letters ignore case and spaces
    (" c", "b", {}, "not quite"),
    ([1, 2, 6], [1, 2, 6], {"rel_tol": 0}, "right"),
    ([1, 2, 5], [1, 2, 6], {"rel_tol": 0}, "not quite"),
    ([1, 2], [1, 2, 6], {}, "not quite"),           # a sequence of the wrong length is wrong, not an error
    (1, 2, {"rel_tol": 0, "abs_tol": 0}, "not quite"),
])
def test_the_verdict(capsys, guess, measured, kwargs, verdict):
    assert check_prediction(guess, measured, "the thing", why="the reason", **kwargs) is None, (
        "check_prediction must return None, so that a cell ending with it shows no stray True/False")
    out = capsys.readouterr().out
    assert f": {verdict}." in out and out.rstrip().endswith("the reason"), out


def test_no_guess_withholds_the_answer_and_its_reason(capsys, monkeypatch):
    monkeypatch.delenv("PPO_COURSE_REVEAL", raising=False)
    assert not prediction_made(None) and prediction_made("a") and prediction_made(0)
    check_prediction(None, [1.0, 2.0, 6.0], "the counts", why="the reason")
    out = capsys.readouterr().out
    assert "no guess yet" in out, out
    assert "6" not in out and "the reason" not in out and "measured" not in out, (
        f"without a guess neither the measurement nor why may be shown: {out}")


def test_readers_who_cannot_guess_see_the_answer(capsys, monkeypatch):
    monkeypatch.setenv("PPO_COURSE_REVEAL", "1")   # the website, the tests that read every output
    assert prediction_made(None)
    check_prediction(None, [1.0, 2.0, 6.0], "the counts", why="the reason")
    out = capsys.readouterr().out
    assert "measured [1, 2, 6]" in out and out.rstrip().endswith("the reason"), f"counts print as integers: {out}"
    assert "right" not in out and "not quite" not in out, out
