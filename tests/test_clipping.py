"""The package's reference implementations for lesson 03 and the helpers the notebooks' tests use."""
from __future__ import annotations

import pytest
import torch

from ppo_course.checks import assert_close, assert_tensor, reference_for
from ppo_course.clipping import clip_is_active, clipped_surrogate, ppo_policy_loss


def test_clipped_surrogate_reproduces_both_worked_tables():
    r = torch.tensor([0.5, 0.8, 1.0, 1.1, 1.2, 1.5, 2.0])
    assert clipped_surrogate(r, torch.ones(7)).tolist() == pytest.approx([0.5, 0.8, 1.0, 1.1, 1.2, 1.2, 1.2]), (
        f"with advantage 1 the clipped surrogate must cap the ratio at 1.2, got"
        f" {clipped_surrogate(r, torch.ones(7)).tolist()}")
    r = torch.tensor([0.5, 0.7, 0.8, 1.0, 1.2, 1.5, 2.0])
    assert clipped_surrogate(r, -torch.ones(7)).tolist() == pytest.approx([-0.8, -0.8, -0.8, -1.0, -1.2, -1.5, -2.0]), (
        f"with advantage -1 the clipped surrogate must floor the ratio at 0.8, got"
        f" {clipped_surrogate(r, -torch.ones(7)).tolist()}")


def test_clip_is_active_matches_autograd_zeros():
    gen = torch.Generator().manual_seed(0)
    ratio = (torch.rand(1000, generator=gen) * 3).requires_grad_(True)
    adv = torch.randn(1000, generator=gen)
    clipped_surrogate(ratio, adv).sum().backward()
    assert torch.equal(clip_is_active(ratio.detach(), adv), ratio.grad == 0), (
        f"clip_is_active must be True exactly where autograd gives a zero gradient; they disagree on"
        f" {int((clip_is_active(ratio.detach(), adv) != (ratio.grad == 0)).sum())} of 1000 samples")


def test_ppo_policy_loss_is_minus_mean_advantage_at_the_old_policy():
    logp = torch.log(torch.tensor([0.1, 0.6, 0.3]))
    adv = torch.tensor([2.0, -1.0, 0.5])
    assert ppo_policy_loss(logp, logp, adv).item() == pytest.approx(-adv.mean().item()), (
        f"at the old policy the loss must be -mean(advantage) = {-adv.mean().item():.4f},"
        f" got {ppo_policy_loss(logp, logp, adv).item():.4f}")


def test_assert_close_says_what_was_expected_and_what_came_back():
    with pytest.raises(AssertionError, match=r"the thing: expected \[1.0, 2.0\], got \[1.0, 3.0\].*check it"):
        assert_close(torch.tensor([1.0, 3.0]), [1.0, 2.0], "the thing", "check it")
    with pytest.raises(AssertionError, match="expected shape"):
        assert_close(torch.zeros(2), torch.zeros(3), "shapes")
    with pytest.raises(AssertionError, match="must return a torch.Tensor"):
        assert_tensor([1.0], "f")


def test_reference_for_restores_the_learners_names():
    namespace = {"f": "learner's"}
    with reference_for(namespace, f="reference", g="added"):
        assert namespace == {"f": "reference", "g": "added"}, (
            f"inside reference_for the namespace must hold the reference and the added name, got {namespace}")
    assert namespace == {"f": "learner's"}, f"reference_for must restore the learner's names on exit, got {namespace}"
