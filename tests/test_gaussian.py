"""Lesson 06's references (ppo_course.gaussian) against torch.distributions, and its slider widget."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ppo_course import gaussian
from ppo_course.widgets import GaussianExplorer


def test_log_prob_and_entropy_match_torch_distributions():
    gen = torch.Generator().manual_seed(0)
    mean, log_std = torch.randn(6, 3, generator=gen, dtype=torch.float64), 0.4 * torch.randn(3, dtype=torch.float64)
    actions = torch.randn(6, 3, generator=gen, dtype=torch.float64)
    normal = torch.distributions.Normal(mean, log_std.exp())
    torch.testing.assert_close(gaussian.gaussian_log_prob(mean, log_std, actions), normal.log_prob(actions).sum(-1))
    torch.testing.assert_close(gaussian.gaussian_entropy(log_std.expand(6, 3)), normal.entropy().sum(-1))


def test_tanh_squashed_log_prob_matches_torch_and_stays_finite():
    gen = torch.Generator().manual_seed(1)
    mean, log_std = torch.randn(5, 2, generator=gen, dtype=torch.float64), torch.zeros(2, dtype=torch.float64)
    u = torch.randn(5, 2, generator=gen, dtype=torch.float64)
    squashed = torch.distributions.TransformedDistribution(torch.distributions.Normal(mean, log_std.exp()),
                                                           [torch.distributions.transforms.TanhTransform()])
    torch.testing.assert_close(gaussian.tanh_squashed_log_prob(mean, log_std, u),
                               squashed.log_prob(torch.tanh(u)).sum(-1))
    far = gaussian.tanh_squashed_log_prob(torch.zeros(1, 1), torch.zeros(1), torch.tensor([[30.0]]))
    assert torch.isfinite(far).all(), f"the stable form must stay finite at u = 30 in float32, got {far}"


@pytest.mark.parametrize("shift,sigma", [(0.2, 1.0), (0.2, 0.25), (-0.5, 0.7), (0.0, 1.0)])
def test_share_outside_clip_matches_sampling(shift, sigma):
    a = np.random.default_rng(0).normal(0.0, sigma, 400_000)
    ratio = np.exp((shift * a - shift ** 2 / 2) / sigma ** 2)
    sampled = np.mean(np.abs(ratio - 1) > 0.2)
    assert math.isclose(gaussian.share_outside_clip(shift, sigma, 0.2), sampled, abs_tol=3e-3), (
        f"exact share {gaussian.share_outside_clip(shift, sigma, 0.2):.4f} vs sampled {sampled:.4f}")


def test_explorer_readout_and_figure_follow_the_sliders():
    explorer = GaussianExplorer(mean=0.0, log_std=0.0, action=1.5)
    assert "r = exp(difference) = 1.000" in explorer.readout.value, "equal policies: r = 1"
    frame = explorer.figure.widget.value
    explorer.mean.value = 1.0
    assert "outside the clip band" in explorer.readout.value and explorer.figure.widget.value != frame
    frame = explorer.figure.widget.value
    explorer.action.value = -1.0
    assert f"{math.exp(-1.0 - 0.5):.3f}" in explorer.readout.value, "r(a) = exp(mu * a - mu^2 / 2) for sigma = 1"
    assert explorer.figure.widget.value != frame, "moving the action must redraw the marker"


def test_explorer_shows_the_learners_function_or_what_went_wrong():
    def unfinished(mean, log_std, actions):
        raise NotImplementedError

    assert "not written yet" in GaussianExplorer(learner_log_prob=unfinished).readout.value
    explorer = GaussianExplorer(learner_log_prob=gaussian.gaussian_log_prob)
    assert explorer.learner_curve.get_visible() and not explorer.learner_problem
