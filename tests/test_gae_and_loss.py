"""Lesson 04's exercises: the package references are right, and the notebook's tests (visible and
hidden) accept the reference answers and reject the wrong answers learners really write.

The answers are data, in tests/answers/04-ppo-cartpole.toml; tests/exercise_checks.py runs the checks.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ppo_course.gae import compute_gae
from ppo_course.losses import ppo_loss

from exercise_checks import LessonExerciseChecks, run_tests_against

LESSON = "04-ppo-cartpole"

EXERCISES = ("compute_gae", "ppo_loss", "ppo_update")


class TestExercises(LessonExerciseChecks, lesson=LESSON):
    """Lesson 04's graded exercises against the lesson's own test cells."""


@pytest.mark.parametrize("exercise", EXERCISES)
def test_package_reference_passes_the_notebook_tests(exercise):
    import inspect

    import ppo_course.gae
    import ppo_course.losses
    import ppo_course.update

    source = inspect.getsource({"compute_gae": ppo_course.gae.compute_gae, "ppo_loss": ppo_course.losses.ppo_loss,
                                "ppo_update": ppo_course.update.ppo_update}[exercise])
    run_tests_against(LESSON, exercise, source)


def test_gae_known_values_and_batched_envs():
    rewards = torch.tensor([1.0, 1.0, 1.0, 1.0])
    values = torch.tensor([2.0, 1.0, 3.0, 2.5])
    dones = torch.tensor([0.0, 1.0, 0.0, 0.0])
    adv, ret = compute_gae(rewards, values, dones, torch.tensor(2.0), gamma=0.9, lam=0.5)
    np.testing.assert_allclose(adv.numpy(), [-0.1, 0.0, 0.385, 0.3], atol=1e-6)
    np.testing.assert_allclose(ret.numpy(), [1.9, 1.0, 3.385, 2.8], atol=1e-6)
    # Two envs side by side equal two separate single-env calls.
    gen = torch.Generator().manual_seed(0)
    r, v = torch.rand(9, 2, generator=gen), torch.randn(9, 2, generator=gen)
    d, last = (torch.rand(9, 2, generator=gen) < 0.3), torch.randn(2, generator=gen)
    both, _ = compute_gae(r, v, d, last, 0.99, 0.95)
    for i in range(2):
        single, _ = compute_gae(r[:, i], v[:, i], d[:, i], last[i], 0.99, 0.95)
        torch.testing.assert_close(both[:, i], single)


def test_loss_gradients_have_the_right_signs():
    logp = torch.log(torch.tensor([0.2, 0.5, 0.3]))
    values = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    entropy = torch.tensor([0.6, 0.3, 0.3], requires_grad=True)
    loss = ppo_loss(logp, logp, torch.tensor([1.0, -2.0, 0.5]), values, torch.tensor([2.0, 2.0, 1.0]), entropy)
    loss.backward()
    assert torch.allclose(loss, torch.tensor(1 / 6 + 0.5 * 5 / 3 - 0.01 * 0.4)), (
        f"ppo_loss = -mean(adv) (ratio 1) + c1 * MSE(V, R) - c2 * mean(entropy) = 1/6 + 0.5 * 5/3 - 0.01 * 0.4, "
        f"got {loss.item()}")
    assert (entropy.grad < 0).all() and values.grad[0] < 0 < values.grad[2], (
        f"descending the loss must raise the entropy (grad < 0) and pull V towards R (V=1 < R=2: grad < 0; "
        f"V=3 > R=1: grad > 0): entropy.grad={entropy.grad}, values.grad={values.grad}")
