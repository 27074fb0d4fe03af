"""The numbers lesson 04 quotes about its pitfall ablations are those of its precomputed ablations.json.

Regenerate both together: ``python -m ppo_course.ablations solutions/04-ppo-cartpole/ablations.json``,
then update the "How to read them" cell and re-release lesson 04.
"""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import numpy as np

from ppo_course import ablations

LESSON = Path(__file__).resolve().parents[1] / "solutions" / "04-ppo-cartpole"
LABELS = {"default": "default", "eps": "eps = 0.5", "epochs": "K = 30", "c2": "c2 = 0"}


def _curves() -> dict[str, dict]:
    curves = json.loads((LESSON / "ablations.json").read_text())
    return {key: next(c for label, c in curves.items() if label.startswith(prefix)) for key, prefix in LABELS.items()}


def _reading_cell() -> str:
    nb = nbformat.read(LESSON / "04-ppo-cartpole.ipynb", as_version=4)
    return next(c.source for c in nb.cells if c.cell_type == "markdown" and c.source.startswith("How to read them"))


def _entropy_20k_60k(curve: dict) -> float:
    steps = np.array(curve["log_steps"])
    return float(np.array(curve["entropy"])[:, (steps >= 20_000) & (steps < 60_000)].mean())


def test_quoted_ablation_numbers_come_from_the_precomputed_runs():
    curves, text = _curves(), " ".join(_reading_cell().split())
    kl = {k: np.median(c["approx_kl"]) for k, c in curves.items()}
    assert f"({kl['eps']:.3f} against {kl['default']:.3f})" in text
    assert f"about {kl['eps'] / kl['default']:.0f} times the default's" in text
    assert f"(median {kl['epochs']:.3f})" in text
    assert f"spikes above {np.floor(np.max(curves['eps']['approx_kl'])):.0f}" in text
    lowest_eps = min(np.min(np.array(m)[np.argmax(np.array(m) >= 475):]) for m in curves["eps"]["means"])
    assert f"seed down to {lowest_eps:.0f}" in text
    stays = {k: float(np.mean(ablations.solved_stats(c)[1])) for k, c in curves.items()}
    assert f"Only {stays['eps']:.0%} of the evaluations" in text and f"against {stays['default']:.0%} for the" in text
    assert f"only {stays['epochs']:.0%} of the later evaluations" in text
    assert stays["epochs"] == min(stays.values()), "the text calls K = 30 the worst of the four"
    entropy = {k: _entropy_20k_60k(c) for k, c in curves.items()}
    assert f"({entropy['eps']:.2f} nats on average between 20k and 60k steps, against {entropy['default']:.2f})" in text
    assert f"({entropy['c2']:.2f} against {entropy['default']:.2f} nats)" in text
    assert f"about {100 * (1 - entropy['c2'] / entropy['default']):.0f}% below" in text
    assert all(np.array(c["means"])[:, -1].min() >= 475 for c in curves.values()), "the text says all four end near 500"
